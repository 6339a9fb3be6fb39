// Lists: one card per list; choosing a card shows its items below, fetched a page at a time
// (`?page=N&limit=24`).

import { h, replace, fmtNumber, timeEl, episodeCode } from "./dom.js";
import { getJSON } from "./api.js";
import { runSection, pagedGrid, empty } from "./ui.js";
import { mediaCard, pager } from "./collections.js";
import { traktUrl } from "./media.js";

const ITEMS_PAGE = 24;

/** Fill the lists section; resolves once the cards and the first list's items are shown. */
export function renderLists() {
  const body = document.getElementById("lists-body");
  return runSection(body, () => getJSON("/api/trakt/user/lists"), (doc) => listsView(Array.isArray(doc.data) ? doc.data : []));
}

function listsView(lists) {
  if (!lists.length) return empty("No lists yet.");
  const items = h("div", { class: "list-items", id: "list-items", "aria-live": "polite" });
  const cards = lists.map((list) => listCard(list, () => openList(list, cards, items)));
  const view = h("div", {}, h("ul", { class: "list-cards", "aria-label": "Lists" }, cards.map((card) => h("li", {}, card))), items);
  view.ready = openList(lists[0], cards, items);
  return view;
}

function listCard(list, open) {
  const ids = list.ids || {};
  const facts = [
    `${fmtNumber(list.item_count ?? 0)} item${list.item_count === 1 ? "" : "s"}`,
    list.likes ?? list.like_count ? `${fmtNumber(list.likes ?? list.like_count)} likes` : null,
    list.privacy && list.privacy !== "public" ? list.privacy : null,
  ].filter(Boolean).join(" · ");
  const updated = timeEl(list.updated_at);
  return h("button", {
    type: "button", class: "list-card", "aria-pressed": "false",
    dataset: { slug: ids.slug || String(ids.trakt || "") },
    on: { click: open },
  },
  h("span", { class: "list-name" }, list.name || ids.slug || "Untitled list"),
  list.description ? h("span", { class: "list-desc" }, list.description) : null,
  h("span", { class: "list-facts" }, facts, updated ? [" · updated ", updated] : null));
}

function openList(list, cards, container) {
  const id = list.ids?.slug || list.ids?.trakt;
  for (const card of cards) card.setAttribute("aria-pressed", card.dataset.slug === String(id) ? "true" : "false");
  const heading = h("div", { class: "list-head" },
    h("h3", { class: "list-title" }, list.name || String(id)),
    list.ids?.slug && list.user?.ids?.slug
      ? h("a", { href: traktUrl("users", list.user.ids.slug, "lists", list.ids.slug), target: "_blank", rel: "noopener noreferrer", class: "ext" }, "Open on Trakt")
      : null);
  const grid = pagedGrid({
    fetchPage: pager(`/api/trakt/user/lists/${encodeURIComponent(id)}`, { size: ITEMS_PAGE }),
    renderItem: listItemCard, label: `Items of ${list.name || id}`, emptyText: "This list is empty.",
  });
  replace(container, heading, grid);
  return grid.ready;
}

function listItemCard(item) {
  let subtitle = null;
  let season;
  if (item.type === "episode" && item.episode) {
    const code = episodeCode(item.episode.season, item.episode.number);
    subtitle = item.episode.title ? `${code} · ${item.episode.title}` : code;
    season = item.episode.season;
  } else if (item.type === "season" && item.season) {
    subtitle = `Season ${item.season.number}`;
    season = item.season.number;
  } else if (item.type === "person" && item.person) {
    subtitle = "Person";
  }
  return mediaCard(item, {
    season, subtitle,
    corner: item.rank !== undefined ? h("span", { class: "rank", title: `Rank ${item.rank}` }, `#${item.rank}`) : null,
    lines: [item.notes ? h("q", { class: "card-notes" }, item.notes) : null],
  });
}
