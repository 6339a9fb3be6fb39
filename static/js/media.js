// Posters and outbound links: the pieces every title card shares.

import { h } from "./dom.js";
import { getJSON, query } from "./api.js";

/**
 * Which pictures the image index holds (GET /api/images/available), fetched once. The page asks
 * for a poster only when it exists, so a title without artwork costs no request and no 404.
 * If the list cannot be had, every poster is requested and a 404 falls back to the text.
 */
export const imageAvailability = getJSON("/api/images/available").then((listing) => ({
  movies: { posters: new Set(listing.movies.posters), backdrops: new Set(listing.movies.backdrops) },
  shows: {
    posters: new Set(listing.shows.posters),
    backdrops: new Set(listing.shows.backdrops),
    seasons: new Map(Object.entries(listing.shows.seasons).map(([id, seasons]) => [Number(id), new Set(seasons)])),
  },
}), () => null);

/** Whether the index can serve this picture (a season poster falls back to the show poster). */
export function isIndexed(available, kind, category, tmdbId, season) {
  if (!available) return true; // unknown: let the server decide
  const table = available[kind];
  if (!table) return false;
  const id = Number(tmdbId);
  if (table[category]?.has(id)) return true;
  return kind === "shows" && category === "posters" && season != null && !!table.seasons.get(id)?.has(Number(season));
}

/** The /api/images URL of a poster or backdrop; null without a TMDB id. */
function imageUrl(kind, category, tmdbId, season) {
  if (!tmdbId) return null;
  return `/api/images${query({ type: kind, category, tmdb_id: tmdbId, season })}`;
}

/**
 * A fixed 2:3 poster frame: the text fallback is always underneath, the lazy image covers it
 * once loaded, and is removed on error so the fallback shows. The frame never changes size.
 */
export function poster({ kind, tmdbId, season, title, subtitle, size = "md", category = "posters" }) {
  const fallback = h("span", { class: "poster-fallback", "aria-hidden": "true" },
    h("span", { class: "poster-fallback-title" }, title || "Untitled"),
    subtitle ? h("span", { class: "poster-fallback-sub" }, subtitle) : null);
  const frame = h("div", { class: `poster poster-${size}${category === "backdrops" ? " poster-wide" : ""}` }, fallback);
  const src = imageUrl(kind, category, tmdbId, season);
  if (!src) {
    frame.classList.add("is-missing");
    return frame;
  }
  imageAvailability.then((available) => {
    if (!isIndexed(available, kind, category, tmdbId, season)) {
      frame.classList.add("is-missing");
      return;
    }
    const alt = season ? `${title} season ${season} poster` : `${title} poster`;
    const img = h("img", {
      src, alt, loading: "lazy", decoding: "async",
      width: category === "backdrops" ? 300 : 200, height: category === "backdrops" ? 169 : 300,
    });
    img.addEventListener("load", () => frame.classList.add("is-loaded"));
    img.addEventListener("error", () => {
      img.remove();
      frame.classList.add("is-missing");
    });
    frame.append(img);
  });
  return frame;
}

/** A page on trakt.tv from its path segments (each URL-encoded): the one place that knows Trakt's URLs. */
export function traktUrl(...segments) {
  return `https://trakt.tv/${segments.map((segment) => encodeURIComponent(segment)).join("/")}`;
}

/** The Trakt page of a movie or show; null without a slug or Trakt id. */
export function traktTitleUrl(kind, ids = {}) {
  const key = ids.slug || ids.trakt;
  return key ? traktUrl(kind === "movie" || kind === "movies" ? "movies" : "shows", String(key)) : null;
}

/** The Trakt/IMDb/TMDB/Letterboxd links of a movie or show (whichever ids exist). */
export function titleLinks(kind, ids = {}) {
  const movie = kind === "movie" || kind === "movies";
  const links = [];
  const trakt = traktTitleUrl(kind, ids);
  if (trakt) links.push(["Trakt", trakt]);
  if (ids.imdb) links.push(["IMDb", `https://www.imdb.com/title/${encodeURIComponent(ids.imdb)}/`]);
  if (ids.tmdb) links.push(["TMDB", `https://www.themoviedb.org/${movie ? "movie" : "tv"}/${encodeURIComponent(ids.tmdb)}`]);
  // Letterboxd only catalogues films; its /imdb/<id>/ route resolves the IMDb id.
  if (movie && ids.imdb) links.push(["Letterboxd", `https://letterboxd.com/imdb/${encodeURIComponent(ids.imdb)}/`]);
  if (!links.length) return null;
  return h("ul", { class: "ext-links", "aria-label": "External links" },
    links.map(([label, href]) => h("li", {},
      h("a", { href, target: "_blank", rel: "noopener noreferrer", class: `ext ext-${label.toLowerCase()}` }, label))));
}

/** The main link of a title (to Trakt when possible). */
export function titleLink(kind, item, text) {
  const label = text || item?.title || "Untitled";
  const href = traktTitleUrl(kind, (item && item.ids) || {});
  if (!href) return h("span", { class: "title-text" }, label);
  return h("a", { class: "title-link", href, target: "_blank", rel: "noopener noreferrer" }, label);
}

/** A small badge (source, review, spoiler…). */
export function badge(text, variant = "") {
  return h("span", { class: `badge${variant ? ` badge-${variant}` : ""}` }, text);
}

