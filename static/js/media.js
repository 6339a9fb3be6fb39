// Posters and outbound links: the pieces every title card shares.

import { h } from "./dom.js";
import { query } from "./api.js";

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
  if (src) {
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
  } else {
    frame.classList.add("is-missing");
  }
  return frame;
}

/** The Trakt/IMDb/TMDB/Letterboxd links of a movie or show (whichever ids exist). */
export function titleLinks(kind, ids = {}) {
  const movie = kind === "movie" || kind === "movies";
  const links = [];
  if (ids.slug || ids.trakt) {
    links.push(["Trakt", `https://trakt.tv/${movie ? "movies" : "shows"}/${encodeURIComponent(ids.slug || ids.trakt)}`]);
  }
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
  const ids = (item && item.ids) || {};
  const movie = kind === "movie" || kind === "movies";
  const label = text || item?.title || "Untitled";
  if (!(ids.slug || ids.trakt)) return h("span", { class: "title-text" }, label);
  return h("a", {
    class: "title-link",
    href: `https://trakt.tv/${movie ? "movies" : "shows"}/${encodeURIComponent(ids.slug || ids.trakt)}`,
    target: "_blank", rel: "noopener noreferrer",
  }, label);
}

/** A small badge (source, review, spoiler…). */
export function badge(text, variant = "") {
  return h("span", { class: `badge${variant ? ` badge-${variant}` : ""}` }, text);
}

