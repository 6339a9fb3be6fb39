// As-you-type search over watched, watchlist, history and list items (GET /api/trakt/search),
// debounced, with a type filter and badges saying where each title was found.

import { h, replace, fmtNumber, debounce, timeEl } from "./dom.js";
import { getJSON, query } from "./api.js";
import { errorBox, loading } from "./ui.js";
import { poster, titleLink, titleLinks, badge } from "./media.js";

const DEBOUNCE_MS = 220;
const LIMIT = 40;

export function setupSearch() {
  const form = document.getElementById("search-form");
  const input = document.getElementById("search-input");
  const type = document.getElementById("search-type");
  const panel = document.getElementById("search-results");
  let controller = null;
  let lastKey = "";

  async function run() {
    const q = input.value.trim();
    const key = `${type.value}\u0000${q}`;
    if (key === lastKey) return;
    lastKey = key;
    if (controller) controller.abort();
    if (!q) {
      panel.hidden = true;
      replace(panel);
      return;
    }
    controller = new AbortController();
    panel.hidden = false;
    panel.setAttribute("aria-busy", "true");
    if (!panel.firstChild) replace(panel, loading("Searching…"));
    try {
      const result = await getJSON(`/api/trakt/search${query({ q, type: type.value, limit: LIMIT })}`, { signal: controller.signal });
      replace(panel, resultsView(result, q));
    } catch (err) {
      if (err.name === "AbortError") return;
      lastKey = "";
      replace(panel, errorBox(err, run));
    } finally {
      panel.removeAttribute("aria-busy");
    }
  }

  const debounced = debounce(run, DEBOUNCE_MS);
  input.addEventListener("input", debounced);
  type.addEventListener("change", run);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    debounced.cancel();
    run();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      input.value = "";
      debounced.cancel();
      run();
    }
  });
}

function resultsView(result, q) {
  const movies = result.results?.movies || [];
  const shows = result.results?.shows || [];
  const total = result.total_results ?? movies.length + shows.length;
  const shown = movies.length + shows.length;
  const more = shown < total ? ` · showing the best ${fmtNumber(shown)}` : "";
  const summary = h("p", { class: "search-summary", role: "status" },
    total ? `${fmtNumber(total)} result${total === 1 ? "" : "s"} for “${q}”${more}` : `Nothing found for “${q}”.`);
  const groups = [];
  if (movies.length) groups.push(group("Movies", movies));
  if (shows.length) groups.push(group("Shows", shows));
  return [summary, groups];
}

function group(label, rows) {
  return h("section", { class: "search-group", "aria-label": label },
    h("h3", { class: "search-group-title" }, label, h("span", { class: "tab-count" }, fmtNumber(rows.length))),
    h("ul", { class: "search-list" }, rows.map((row) => h("li", {}, resultRow(row)))));
}

const SOURCE_LABELS = { watched: "Watched", watchlist: "Watchlist", history: "History", list: "List" };

function resultRow(row) {
  const kind = row.type === "movie" || row.movie ? "movie" : "show";
  const media = row[kind] || {};
  const sources = Array.isArray(row.sources) && row.sources.length ? row.sources : row.source ? [row.source] : [];
  const lists = Array.isArray(row.lists) ? row.lists : [];
  const facts = [];
  if (row.plays) facts.push(`${fmtNumber(row.plays)} play${row.plays === 1 ? "" : "s"}`);
  const last = timeEl(row.last_watched_at, { relative: true });
  if (last) facts.push(["last watched ", last]);
  if (row.rank !== undefined && row.rank !== null) facts.push(`watchlist #${row.rank}`);
  const added = timeEl(row.listed_at);
  if (added) facts.push(["added ", added]);
  return h("article", { class: "search-row" },
    poster({ kind: kind === "movie" ? "movies" : "shows", tmdbId: media.ids?.tmdb, title: media.title, size: "xs" }),
    h("div", { class: "search-row-body" },
      h("h4", { class: "search-row-title" }, titleLink(kind, media), media.year ? h("span", { class: "card-year" }, ` ${media.year}`) : null),
      h("p", { class: "search-sources" },
        // List names say more than a generic "List" badge.
        sources.filter((source) => source !== "list" || !lists.length)
          .map((source) => badge(SOURCE_LABELS[source] || source, `src-${source}`)),
        lists.map((list) => badge(list.name || list.slug, "list"))),
      facts.length ? h("p", { class: "card-meta" }, facts.flatMap((fact, i) => (i ? [" · ", fact] : [fact]))) : null,
      titleLinks(kind, media.ids || {})));
}
