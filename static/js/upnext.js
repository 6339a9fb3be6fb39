// Up next and upcoming (README "Up next and the calendar"): the shows in progress with their next
// episode, and the coming fortnight grouped by day in the server's TIMEZONE.

import { h, fmtNumber, episodeCode, formatter } from "./dom.js";
import { getJSON } from "./api.js";
import { runSection, empty } from "./ui.js";
import { poster, titleLink, badge } from "./media.js";

const UPCOMING_DAYS = 14;
const DAY_MS = 86400000;
const weekdayFormat = formatter(() => new Intl.DateTimeFormat(undefined, { weekday: "long", timeZone: "UTC" }));
const dateFormat = formatter(() => new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" }));

export function renderUpNext(index) {
  return Promise.allSettled([
    runSection(document.getElementById("upnext-body"), () => getJSON("/api/trakt/user/up-next"), upNextRow),
    runSection(document.getElementById("upcoming-body"),
      () => Promise.all([getJSON(`/api/trakt/user/calendar?days=${UPCOMING_DAYS}`), Promise.resolve(index).catch(() => null)]),
      ([calendar, indexDoc]) => upcomingView(calendar, indexDoc)),
  ]);
}

function upNextRow(doc) {
  const rows = Array.isArray(doc.data) ? doc.data : [];
  if (!rows.length) return empty("Nothing in progress: every aired episode is watched.");
  return h("ol", { class: "upnext-row", "aria-label": "Up next" }, rows.map(upNextCard));
}

function upNextCard(row) {
  const show = row.show || {};
  const next = row.next_episode || {};
  const watched = Number(row.watched) || 0;
  const aired = Math.max(Number(row.aired) || 0, watched);
  const percent = aired ? Math.round((watched / aired) * 100) : 0;
  const left = Number(row.aired_left) || 0;
  return h("li", { class: "upnext-card" },
    poster({ kind: "shows", tmdbId: show.ids?.tmdb, title: show.title, subtitle: episodeCode(next.season, next.number), size: "sm" }),
    h("div", { class: "upnext-text" },
      h("h3", { class: "upnext-title" }, titleLink("show", show, show.title || "Untitled")),
      h("p", { class: "upnext-episode" },
        h("span", { class: "upnext-code" }, episodeCode(next.season, next.number)), " ", next.title || ""),
      h("p", { class: "upnext-left" }, `${fmtNumber(left)} episode${left === 1 ? "" : "s"} left`),
      h("div", {
        class: "upnext-bar", role: "progressbar", "aria-label": `${show.title || "Show"}: watched of aired`,
        "aria-valuemin": "0", "aria-valuemax": String(aired), "aria-valuenow": String(watched),
        title: `${fmtNumber(watched)} of ${fmtNumber(aired)} aired episodes watched`,
      }, h("span", { class: "upnext-bar-fill", style: { "--w": `${percent}%` } }))));
}

/** "Today", "Tomorrow", a weekday name within the week, then the date; `start` is today in TIMEZONE. */
export function dayLabel(date, start) {
  const days = Math.round((Date.parse(`${date}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / DAY_MS);
  const moment = new Date(`${date}T00:00:00Z`);
  if (days === 0) return "Today";
  if (days === 1) return "Tomorrow";
  if (days > 1 && days < 7) return weekdayFormat().format(moment);
  return dateFormat().format(moment);
}

function upcomingView(calendar, indexDoc) {
  const rows = Array.isArray(calendar.data) ? calendar.data : [];
  const start = calendar.metadata?.start_date;
  const feed = indexDoc?.metadata?.calendar_feed
    ? h("p", { class: "upcoming-feed" }, "Subscribe from a phone or calendar app: ",
      h("code", {}, `${location.origin}/calendar.ics?token=<CALENDAR_TOKEN>`))
    : null;
  if (!rows.length) return [empty(`Nothing airs in the next ${UPCOMING_DAYS} days.`), feed].filter(Boolean);
  const days = new Map();
  for (const row of rows) {
    if (!days.has(row.date)) days.set(row.date, []);
    days.get(row.date).push(row);
  }
  const list = h("div", { class: "upcoming" }, [...days].map(([date, items]) =>
    h("section", { class: "upcoming-day", "aria-label": dayLabel(date, start || date) },
      h("h3", { class: "upcoming-day-title" }, dayLabel(date, start || date)),
      h("ul", { class: "upcoming-items" }, items.map(upcomingItem)))));
  return [list, feed].filter(Boolean);
}

function upcomingItem(row) {
  if (row.type === "movie") {
    return h("li", { class: "upcoming-item is-movie" },
      h("span", { class: "upcoming-time" }, "Release"),
      h("span", { class: "upcoming-what" }, titleLink("movie", row.movie || {}, row.title || "Movie")));
  }
  const flags = [row.premiere ? badge("Premiere", "premiere") : null, row.finale ? badge("Finale", "finale") : null];
  return h("li", { class: "upcoming-item" },
    h("span", { class: "upcoming-time" }, row.local_time || ""),
    h("span", { class: "upcoming-what" },
      titleLink("show", row.show || {}, row.show?.title || "Show"), " ",
      h("span", { class: "upnext-code" }, episodeCode(row.season, row.number)), " ",
      row.title || "", ...flags));
}
