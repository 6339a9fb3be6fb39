// Recently watched, watchlist and watched: poster cards fetched a page at a time from the API
// (`?type=…&page=N&limit=M`), so a 50,000-title account renders as fast as a small one.

import { h, fmtNumber, timeEl, episodeCode } from "./dom.js";
import { getPage } from "./api.js";
import { pagedGrid, tabs, localPages } from "./ui.js";
import { poster, titleLinks, titleLink } from "./media.js";

const PAGE_SIZE = 24;

/**
 * A paged grid's `fetchPage` for any paged route (collections, comments, list items): page N of
 * `path` with `size` items, so no view ever fetches a whole large file; when the server ignores
 * paging (it answered the whole file), the array is paged locally.
 */
export function pager(path, { params = {}, size = PAGE_SIZE } = {}) {
  let local = null;
  return async (page) => {
    if (local) return local(page);
    const doc = await getPage(path, page, size, params);
    const meta = doc.metadata || {};
    const data = Array.isArray(doc.data) ? doc.data : [];
    if (meta.page_count === undefined) {
      local = localPages(data, size);
      return local(page);
    }
    return { items: data, total: meta.total ?? data.length, pageCount: meta.page_count };
  };
}

/** The Trakt item kind and the movie/show object carrying title, year and ids. */
function subject(item) {
  if (item.movie) return { kind: "movie", media: item.movie };
  // Season and episode entries carry their show, which gives the poster and the links.
  if (item.show) return { kind: "show", media: item.show };
  return { kind: item.type || "item", media: item[item.type] || {} };
}

/** One poster card; `extra` adds lines under the title, `corner` a badge on the poster. */
export function mediaCard(item, { season, subtitle, lines = [], corner } = {}) {
  const { kind, media } = subject(item);
  const title = media.title || media.name || "Untitled";
  const posterKind = kind === "movie" ? "movies" : "shows";
  return h("article", { class: `card card-${kind}` },
    h("div", { class: "card-poster" },
      poster({ kind: posterKind, tmdbId: kind === "movie" || kind === "show" ? media.ids?.tmdb : null, season, title, subtitle: media.year }),
      corner ? h("span", { class: "card-corner" }, corner) : null),
    h("div", { class: "card-body" },
      h("h3", { class: "card-title" }, titleLink(kind, media, title),
        media.year ? h("span", { class: "card-year" }, ` ${media.year}`) : null),
      subtitle ? h("p", { class: "card-sub" }, subtitle) : null,
      lines.filter(Boolean).map((line) => h("p", { class: "card-meta" }, line)),
      titleLinks(kind, media.ids || {})));
}

// --- recently watched ------------------------------------------------------------------
function historyMovie(item) {
  return mediaCard(item, { lines: [watchedLine(item.watched_at)] });
}

const BINGE_GAP_MS = 3 * 86400 * 1000;

/** Episodes of one show and season watched one after another (days apart at most) share a card. */
function sameBinge(previous, item) {
  const a = previous.show?.ids?.trakt;
  return a !== undefined && a === item.show?.ids?.trakt
    && previous.episode?.season === item.episode?.season
    && Math.abs(Date.parse(previous.watched_at) - Date.parse(item.watched_at)) <= BINGE_GAP_MS;
}

/** One card for a run of episodes (newest first): "S02E03 · Title" or "S02E01–E09 · 9 episodes". */
function historyEpisodes(rows) {
  const newest = rows[0];
  const episode = newest.episode || {};
  let subtitle;
  if (rows.length === 1) {
    const code = episodeCode(episode.season, episode.number);
    subtitle = episode.title ? `${code} · ${episode.title}` : code;
  } else {
    const numbers = rows.map((row) => row.episode?.number ?? 0);
    const first = episodeCode(episode.season, Math.min(...numbers));
    const last = `E${String(Math.max(...numbers)).padStart(2, "0")}`;
    subtitle = `${first}–${last} · ${rows.length} episodes`;
  }
  const card = mediaCard(newest, {
    season: episode.season,
    subtitle,
    corner: rows.length > 1 ? h("span", { class: "plays", title: `${rows.length} episodes in a row` }, `${rows.length} ep`) : null,
    lines: [watchedLine(newest.watched_at)],
  });
  card.dataset.episodes = String(rows.length);
  return card;
}

function watchedLine(when) {
  const time = timeEl(when, { relative: true });
  return time ? h("span", {}, "Watched ", time) : null;
}

// --- watchlist -----------------------------------------------------------------------------
function watchlistCard(item) {
  const added = timeEl(item.listed_at);
  return mediaCard(item, {
    corner: item.rank !== undefined ? h("span", { class: "rank", title: `Rank ${item.rank}` }, `#${item.rank}`) : null,
    lines: [
      added ? h("span", {}, "Added ", added) : null,
      item.notes ? h("q", { class: "card-notes" }, item.notes) : null,
    ],
  });
}

// --- watched -------------------------------------------------------------------------------
function watchedMovie(item) {
  const last = timeEl(item.last_watched_at, { relative: true });
  return mediaCard(item, {
    corner: playsBadge(item.plays),
    lines: [last ? h("span", {}, "Last watched ", last) : null],
  });
}

function watchedShow(item) {
  const seasons = Array.isArray(item.seasons) ? item.seasons : [];
  const episodes = seasons.reduce((sum, season) => sum + (season.episodes?.length || 0), 0);
  const last = timeEl(item.last_watched_at, { relative: true });
  const counts = seasons.length
    ? `${fmtNumber(episodes)} episode${episodes === 1 ? "" : "s"} · ${seasons.length} season${seasons.length === 1 ? "" : "s"}`
    : null;
  return mediaCard(item, {
    corner: playsBadge(item.plays),
    subtitle: counts,
    lines: [last ? h("span", {}, "Last watched ", last) : null],
  });
}

function playsBadge(plays) {
  if (!plays) return null;
  return h("span", { class: "plays", title: `${plays} play${plays === 1 ? "" : "s"}` }, `${fmtNumber(plays)}×`);
}

// --- sections ------------------------------------------------------------------------------
const SECTIONS = {
  history: ["Recently watched", [
    ["episodes", "Episodes", "history", "shows", historyEpisodes, "No episodes watched yet.", sameBinge],
    ["movies", "Movies", "history", "movies", historyMovie, "No movies watched yet."]]],
  watchlist: ["Watchlist", [
    ["movies", "Movies", "watchlist", "movies", watchlistCard, "No movies on the watchlist."],
    ["shows", "Shows", "watchlist", "shows", watchlistCard, "No shows on the watchlist."]]],
  watched: ["Watched", [
    ["movies", "Movies", "watched", "movies", watchedMovie, "No watched movies."],
    ["shows", "Shows", "watched", "shows", watchedShow, "No watched shows."]]],
};

/**
 * Fill the history, watchlist or watched section: tabs whose counts come from the index's
 * per-file counts (known before the tabs are drawn, so they never change width), then the first
 * page of the first tab; resolves when that page is in.
 */
export async function renderCollections(section, indexPromise) {
  const [name, entries] = SECTIONS[section];
  const index = await indexPromise.catch(() => null);
  const files = index?.data?.files || {};
  const view = tabs(name, entries.map(([tab, label, collection, type, renderItem, emptyText, groupWith]) => ({
    id: tab, label, count: files[`user/${collection}/${type}.json`] ?? null,
    render: () => pagedGrid({
      fetchPage: pager(`/api/trakt/user/${collection}`, { params: { type } }), renderItem, label: `${name}: ${label}`, emptyText, groupWith,
      unit: groupWith ? "plays" : "",
    }),
  })));
  document.getElementById(`${section}-body`).append(view);
  return view.ready;
}
