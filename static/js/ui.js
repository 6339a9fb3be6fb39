// Building blocks the sections share: loading/error states with retry, a paged card grid
// with "Load more", and segmented tab controls.

import { h, replace, fmtNumber } from "./dom.js";
import { ApiError } from "./api.js";

/** A small "Loading…" placeholder that keeps the section from collapsing. */
export function loading(label = "Loading…") {
  return h("p", { class: "state state-loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), label);
}

/** An inline error with a Retry button; never a blank area. */
export function errorBox(err, retry) {
  const message = err instanceof ApiError ? err.message : "Something went wrong while loading this part.";
  return h("div", { class: "state state-error", role: "alert" },
    h("span", {}, `Could not load: ${message}`),
    retry ? h("button", { type: "button", class: "btn btn-small", on: { click: retry } }, "Retry") : null);
}

/** An empty-state line. */
export function empty(text) {
  return h("p", { class: "state state-empty" }, text);
}

/**
 * Run `load()` into `container`: a loading line first, then whatever `render(result)` returns,
 * or an inline error with a Retry that runs the whole thing again.
 */
export async function runSection(container, load, render, { keep = false } = {}) {
  // `keep`: the container already holds a placeholder of the final size (nothing moves).
  if (!keep) replace(container, loading());
  try {
    const result = await load();
    const view = render(result);
    replace(container, view);
    // A view that loads more on its own (a paged grid) says when its first page is in.
    await Promise.all([view].flat().map((node) => node?.ready));
    return result;
  } catch (err) {
    if (err && err.name === "AbortError") return null;
    replace(container, errorBox(err, () => runSection(container, load, render)));
    if (!(err instanceof ApiError)) reportError(err);
    return null;
  }
}

/**
 * Run `start()` once `element` is within a screen of the viewport: sections below the fold are
 * fetched and built only when the reader gets near them, so the first screen paints sooner.
 * Resolves with what `start()` resolves to.
 */
export function whenNear(element, start) {
  return new Promise((resolve) => {
    const observer = new IntersectionObserver((entries) => {
      if (!entries.some((entry) => entry.isIntersecting)) return;
      observer.disconnect();
      resolve(start());
    }, { rootMargin: "0px 0px 100% 0px" });
    observer.observe(element);
  });
}

/** Programming errors go to the console as warnings with context, never uncaught. */
export function reportError(err) {
  console.warn("dashboard:", err);
}

const MAX_PAGES_PER_CLICK = 6;

/**
 * A grid that fetches pages on demand. `fetchPage(page)` resolves to
 * {items, total, pageCount}; `renderItem(item)` returns one card. With `groupWith(previous,
 * item)`, consecutive items it accepts share one card (also across pages), `renderItem`
 * receives the array of them, and pages are fetched until `minCards` new cards are shown.
 */
export function pagedGrid({
  fetchPage, renderItem, emptyText, label, gridClass = "card-grid", groupWith = null, minCards = 12, unit = "",
}) {
  const grid = h("ul", { class: gridClass, "aria-label": label });
  const status = h("p", { class: "grid-status", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "btn btn-more", hidden: true }, "Load more");
  const slot = h("div", { class: "grid-slot" });
  const root = h("div", { class: "paged" }, grid, slot, h("div", { class: "grid-footer" }, status, more));
  let page = 0;
  let shown = 0;
  let busy = false;
  let lastGroup = null; // {items, cell} of the newest card when grouping
  const hasMore = (result) => page < (result.pageCount ?? 1) && shown < (result.total ?? shown);

  async function next() {
    if (busy) return;
    busy = true;
    more.disabled = true;
    replace(slot, page === 0 ? loading() : null);
    try {
      const fragment = document.createDocumentFragment();
      const touched = new Set();
      let cards = 0;
      let result;
      let pages = 0;
      // Grouping can fold a page into a few cards: keep fetching until a page's worth is shown.
      do {
        result = await fetchPage(page + 1);
        page += 1;
        pages += 1;
        for (const item of result.items) {
          if (!groupWith) {
            fragment.append(h("li", { class: "card-cell" }, renderItem(item)));
            cards += 1;
          } else if (lastGroup && groupWith(lastGroup.items[lastGroup.items.length - 1], item)) {
            lastGroup.items.push(item);
            touched.add(lastGroup);
          } else {
            lastGroup = { items: [item], cell: h("li", { class: "card-cell" }) };
            touched.add(lastGroup);
            fragment.append(lastGroup.cell);
            cards += 1;
          }
        }
        shown += result.items.length;
      } while (groupWith && cards < minCards && pages < MAX_PAGES_PER_CLICK && hasMore(result));
      for (const group of touched) group.cell.replaceChildren(renderItem(group.items));
      grid.append(fragment);
      replace(slot);
      if (shown === 0) replace(slot, empty(emptyText));
      const total = result.total ?? shown;
      status.textContent = shown ? `Showing ${fmtNumber(shown)} of ${fmtNumber(total)}${unit ? ` ${unit}` : ""}` : "";
      more.hidden = !hasMore(result);
    } catch (err) {
      replace(slot, errorBox(err, next));
      if (!(err instanceof ApiError)) reportError(err);
    } finally {
      busy = false;
      more.disabled = false;
    }
  }

  more.addEventListener("click", next);
  root.ready = next();
  return root;
}

/** Client-side paging for an array already in memory (a server that answered the whole file). */
export function localPages(items, size) {
  return async (page) => ({
    items: items.slice((page - 1) * size, page * size),
    total: items.length,
    pageCount: Math.max(1, Math.ceil(items.length / size)),
  });
}

/**
 * Segmented control: [{id, label, render()}]; renders the first tab's panel immediately and
 * each other panel lazily the first time it is chosen. Arrow keys move between tabs.
 */
export function tabs(name, entries) {
  const list = h("div", { class: "tabs", role: "tablist", "aria-label": name });
  const panels = h("div", { class: "tab-panels" });
  const built = new Map();
  const buttons = entries.map((entry, index) => {
    const id = `${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${entry.id}`;
    const button = h("button", {
      type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`,
      "aria-selected": index === 0 ? "true" : "false", tabindex: index === 0 ? "0" : "-1", class: "tab",
      dataset: { tab: entry.id },
    }, entry.label, entry.count !== undefined
      ? h("span", { class: "tab-count", hidden: entry.count === null }, entry.count === null ? "" : fmtNumber(entry.count))
      : null);
    const panel = h("div", { role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, class: "tab-panel", hidden: index !== 0 });
    panels.append(panel);
    button.addEventListener("click", () => select(index));
    button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const target = (index + step + entries.length) % entries.length;
      select(target);
      buttons[target].button.focus();
    });
    return { button, panel, entry };
  });
  buttons.forEach(({ button }) => list.append(button));

  function select(index) {
    buttons.forEach(({ button, panel }, i) => {
      const on = i === index;
      button.setAttribute("aria-selected", on ? "true" : "false");
      button.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
    });
    const { panel, entry } = buttons[index];
    if (!built.has(index)) {
      const view = entry.render();
      built.set(index, view);
      panel.append(view);
    }
    return built.get(index);
  }
  const first = select(0);
  const root = h("div", { class: "tabbed" }, list, panels);
  root.ready = first?.ready;
  return root;
}
