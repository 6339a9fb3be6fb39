// DOM and formatting helpers shared by every section. Elements are built with h() instead of
// markup strings, so titles coming from the API can never inject HTML and no inline style
// attribute is ever written (the page runs under a strict Content-Security-Policy).

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an element: h("a", {href, class: "x", on: {click}}, child, "text", [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Same as h() for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style") {
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    } else if (key === "text") {
      el.textContent = value;
    } else {
      el.setAttribute(key === "className" ? "class" : key, value === true ? "" : String(value));
    }
  }
}

/** Append children (nodes, strings, numbers, nested arrays; null/false are skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace every child of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * An Intl formatter made on first use. The first of each kind loads the locale's data, tens of
 * milliseconds on a slow phone: made at module evaluation they would lengthen the page's longest
 * task, so they are made in tasks of their own just after it (below), before the data arrives.
 */
export function formatter(make) {
  let made = null;
  return () => {
    made ??= make();
    return made;
  };
}

const numberFormat = formatter(() => new Intl.NumberFormat());

/** 1234 -> "1,234" in the reader's locale. */
export function fmtNumber(n) {
  return numberFormat().format(Number(n) || 0);
}

/** Minutes -> "74d 15h" (or "5h 20m" under a day). */
export function fmtDuration(minutes) {
  const total = Math.max(0, Math.round(Number(minutes) || 0));
  const days = Math.floor(total / 1440);
  const hours = Math.floor((total % 1440) / 60);
  const mins = total % 60;
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${mins}m`;
  return `${mins}m`;
}

/** Seconds left -> "20 min left" / "1 h 5 min left". */
export function fmtRemaining(seconds) {
  const mins = Math.max(0, Math.ceil((Number(seconds) || 0) / 60));
  if (mins >= 60) return `${Math.floor(mins / 60)} h ${mins % 60} min left`;
  return `${mins} min left`;
}

const dateFormat = formatter(() => new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" }));
const dateTimeFormat = formatter(() => new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
}));
const monthYearFormat = formatter(() => new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long" }));
const relativeFormat = formatter(() => new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }));
// One task per kind of locale data (numbers, dates, relative times).
setTimeout(() => {
  numberFormat();
  setTimeout(() => {
    dateTimeFormat();
    setTimeout(relativeFormat, 0);
  }, 0);
}, 0);

function toDate(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtDateTime(value) {
  const d = toDate(value);
  return d ? dateTimeFormat().format(d) : "";
}

export function fmtMonthYear(value) {
  const d = toDate(value);
  return d ? monthYearFormat().format(d) : "";
}

/** "3 hours ago", "yesterday", "in 2 days". */
export function fmtRelative(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return "";
  const seconds = (d.getTime() - now) / 1000;
  const steps = [
    [60, "second"], [3600, "minute"], [86400, "hour"], [86400 * 7, "day"],
    [86400 * 30, "week"], [86400 * 365, "month"], [Infinity, "year"],
  ];
  const sizes = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800, month: 2592000, year: 31536000 };
  for (const [limit, unit] of steps) {
    if (Math.abs(seconds) < limit) return relativeFormat().format(Math.round(seconds / sizes[unit]), unit);
  }
  return "";
}

/** <time datetime=…> showing a date, with the full timestamp as tooltip. */
export function timeEl(value, { relative = false } = {}) {
  const d = toDate(value);
  if (!d) return null;
  return h("time", { datetime: d.toISOString(), title: dateTimeFormat().format(d) },
    relative ? fmtRelative(d) : dateFormat().format(d));
}

/** "S03E10" style code for an episode. */
export function episodeCode(season, number) {
  const pad = (n) => String(n ?? 0).padStart(2, "0");
  return `S${pad(season)}E${pad(number)}`;
}

/** Initials of a display name, for an avatar placeholder. */
export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return (parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2)).toUpperCase();
}

/** Wait `ms` after the last call before running `fn` (as-you-type search). */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** Build an SVG icon from a 24x24 path. */
export function icon(path, label) {
  return s("svg", {
    class: "icon", viewBox: "0 0 24 24", width: 16, height: 16,
    "aria-hidden": label ? null : "true", role: label ? "img" : null, "aria-label": label || null,
  }, s("path", { d: path }));
}

export const ICONS = {
  pin: "M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5z",
  calendar: "M7 2v2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2h-2V2h-2v2H9V2H7zm-2 8h14v10H5V10z",
  clock: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 5v5.4l4 2.3-1 1.7-5-2.9V7h2z",
  link: "M10.6 13.4a1 1 0 0 1 0-1.4l3.5-3.5a3 3 0 1 1 4.2 4.2l-2 2-1.4-1.4 2-2a1 1 0 1 0-1.4-1.4l-3.5 3.5a1 1 0 0 1-1.4 0zm2.8-2.8a1 1 0 0 1 0 1.4l-3.5 3.5a3 3 0 1 1-4.2-4.2l2-2 1.4 1.4-2 2a1 1 0 1 0 1.4 1.4l3.5-3.5a1 1 0 0 1 1.4 0z",
  search: "M10 2a8 8 0 0 1 6.3 12.9l5.4 5.4-1.4 1.4-5.4-5.4A8 8 0 1 1 10 2zm0 2a6 6 0 1 0 0 12 6 6 0 0 0 0-12z",
  play: "M8 5v14l11-7z",
  star: "M12 2l3 6.9 7.5.6-5.7 4.9 1.7 7.3L12 17.8 5.5 21.7l1.7-7.3L1.5 9.5 9 8.9z",
  heart: "M12 21s-7.5-4.6-10-9.3C.4 8.4 2.3 4 6.4 4c2.3 0 3.8 1.3 5.6 3.2C13.8 5.3 15.3 4 17.6 4c4.1 0 6 4.4 4.4 7.7C19.5 16.4 12 21 12 21z",
  eye: "M12 5C6.5 5 2.7 9.3 1.5 12c1.2 2.7 5 7 10.5 7s9.3-4.3 10.5-7C21.3 9.3 17.5 5 12 5zm0 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8z",
  list: "M4 6h2v2H4V6zm4 0h12v2H8V6zm-4 5h2v2H4v-2zm4 0h12v2H8v-2zm-4 5h2v2H4v-2zm4 0h12v2H8v-2z",
  comment: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z",
};
