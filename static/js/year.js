// The year view (/year/#2025, /year/#all): GET /api/trakt/user/insights drawn as big numbers, a
// calendar, bars and posters. Every chart has its numbers in a table for screen readers, the
// same figures a sighted reader sees.

import { getJSON, query } from "./api.js";
import { fmtDuration, fmtNumber, formatter, h, replace } from "./dom.js";
import { poster } from "./media.js";
import { whenNear } from "./ui.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
// Dates in the answer are local dates of the server's TIMEZONE: shown as they are, never shifted.
const dayFormat = formatter(() => new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }));

function fmtDay(iso) {
  return iso ? dayFormat().format(new Date(`${iso}T00:00:00Z`)) : "—";
}

function fmtMonth(key) {
  const [year, month] = key.split("-");
  return `${MONTHS[Number(month) - 1]} ${year}`;
}

function card(title, ...children) {
  return h("section", { class: "year-card", "aria-label": title }, h("h2", { class: "year-card-title" }, title), children);
}

function table(caption, headers, rows) {
  return h("table", {}, h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell)))))));
}

/** A chart's numbers as a table for screen readers, built once it nears the viewport. */
function srTable(caption, headers, rows) {
  // The wrapper hides it: a table itself ignores the 1 px box and would stretch the page.
  const slot = h("div", { class: "visually-hidden" });
  whenNear(slot, () => slot.append(table(caption, headers, rows)));
  return slot;
}

/** The calendar's days as a table anyone can open (a phone cannot hover for a day's plays), built
 * on first opening: a row per day is hundreds of elements the first paint does not need. */
function dayTable(caption, rows) {
  const box = h("div", { class: "year-days-box", tabindex: "0", role: "region", "aria-label": caption });
  const details = h("details", { class: "year-days no-print" },
    h("summary", {}, `Every day as a table (${fmtNumber(rows.length)} days with plays)`), box);
  details.addEventListener("toggle", () => {
    if (details.open && !box.firstChild) box.append(table(caption, ["Day", "Plays"], rows));
  });
  return details;
}

/** Horizontal bars; `rows` are [label, value, detail]; `[what, unit]` head the table's two columns. */
function bars(caption, rows, [what, unit]) {
  const most = Math.max(1, ...rows.map((row) => row[1]));
  const list = h("ul", { class: "year-bars", "aria-hidden": "true" }, rows.map(([label, value, detail]) => {
    const fill = h("span", { class: "year-bar-fill" });
    fill.style.setProperty("--share", String(value / most));
    return h("li", { class: "year-bar" },
      h("span", { class: "year-bar-label" }, label),
      h("span", { class: "year-bar-track" }, fill),
      h("span", { class: "year-bar-value", "data-value": value }, detail || fmtNumber(value)));
  }));
  return [list, srTable(caption, [what, unit], rows.map(([label, value, detail]) => [label, detail || fmtNumber(value)]))];
}

function bigNumbers(doc) {
  const t = doc.totals;
  const items = [
    ["plays", fmtNumber(t.plays), "plays"],
    ["time", fmtDuration(t.minutes), "watched"],
    ["movies", fmtNumber(t.movies), "movies"],
    ["shows", fmtNumber(t.shows), "shows"],
    ["episodes", fmtNumber(t.episodes), "episodes"],
    ["rewatches", fmtNumber(t.rewatches), "rewatches"],
    ["streak", fmtNumber(doc.streaks.longest.days), "days in a row"],
  ];
  const list = h("dl", { class: "year-big" }, items.map(([key, value, label]) =>
    h("div", { class: "year-big-item", "data-total": key }, h("dt", {}, label), h("dd", {}, value))));
  const note = t.unknown_runtime_plays
    ? h("p", { class: "year-note" }, `${fmtNumber(t.unknown_runtime_plays)} plays without a known runtime count no minutes.`)
    : null;
  return h("section", { class: "year-card year-card-wide", "aria-label": "Totals" }, list, note);
}

/** The year's days as a GitHub-style calendar: one column per week, Monday on top. */
function calendar(doc) {
  const year = doc.year;
  const first = new Date(Date.UTC(year, 0, 1));
  const offset = (first.getUTCDay() + 6) % 7; // Monday = 0
  const days = doc.days;
  const most = Math.max(1, ...Object.values(days));
  const cells = [];
  for (let i = 0; i < offset; i += 1) cells.push(h("span", { class: "year-day is-outside" }));
  for (let d = new Date(first); d.getUTCFullYear() === year; d.setUTCDate(d.getUTCDate() + 1)) {
    const iso = d.toISOString().slice(0, 10);
    const plays = days[iso] || 0;
    const level = plays ? Math.min(4, Math.ceil((plays / most) * 4)) : 0;
    cells.push(h("span", { class: `year-day level-${level}`, title: `${fmtDay(iso)}: ${plays} plays`, "data-date": iso, "data-plays": plays }));
  }
  const grid = h("div", { class: "year-calendar", role: "img",
    "aria-label": `${Object.keys(days).length} days with plays in ${year}` }, cells);
  const weeks = Math.ceil(cells.length / 7);
  const monthRow = h("div", { class: "year-calendar-months", "aria-hidden": "true" }, MONTHS.map((name, month) => {
    const label = h("span", {}, name);
    const firstDay = Math.round((Date.UTC(year, month, 1) - first.getTime()) / 86400000);
    label.style.setProperty("grid-column", `${Math.floor((firstDay + offset) / 7) + 1} / span 4`);
    return label;
  }));
  monthRow.style.setProperty("--weeks", String(weeks));
  grid.style.setProperty("--weeks", String(weeks));
  const rows = Object.entries(days).map(([iso, plays]) => [fmtDay(iso), fmtNumber(plays)]);
  // On a phone the weeks do not fit at a readable size: the weeks scroll sideways (the weekday
  // names stay), starting at the latest week with plays.
  const weeksBox = h("div", { class: "year-calendar-body", tabindex: "0", role: "group", "aria-label": `Calendar of ${year}` },
    monthRow, grid);
  const lastPlayed = [...cells].reverse().find((cell) => Number(cell.dataset.plays) > 0);
  if (lastPlayed) {
    requestAnimationFrame(() => {
      if (weeksBox.scrollWidth > weeksBox.clientWidth) {
        weeksBox.scrollLeft = lastPlayed.offsetLeft + lastPlayed.offsetWidth - weeksBox.clientWidth + 24;
      }
    });
  }
  return card("Every day of the year",
    h("div", { class: "year-calendar-frame" },
      h("div", { class: "year-calendar-days", "aria-hidden": "true" }, WEEKDAYS.map((name, i) => h("span", {}, i % 2 ? "" : name))),
      weeksBox),
    dayTable(`Plays per day in ${year}`, rows));
}

function months(doc) {
  const rows = doc.by_month.map((m) => [fmtMonth(m.month), m.plays, `${fmtNumber(m.plays)} · ${fmtDuration(m.minutes)}`]);
  return card("Plays per month", bars("Plays per month", rows, ["Month", "Plays and time"]));
}

function topTitles(doc) {
  const shows = doc.top_shows.map((row) => h("li", { class: "year-top-item" },
    poster({ kind: "shows", tmdbId: row.show.ids?.tmdb, title: row.show.title, subtitle: row.show.year, size: "sm" }),
    h("span", { class: "year-top-text" }, h("strong", { class: "year-top-title" }, row.show.title),
      h("span", {}, `${fmtDuration(row.minutes)} · ${fmtNumber(row.episodes)} episodes · ${fmtNumber(row.plays)} plays`))));
  const movies = doc.top_movies.map((row) => h("li", { class: "year-top-item" },
    poster({ kind: "movies", tmdbId: row.movie.ids?.tmdb, title: row.movie.title, subtitle: row.movie.year, size: "sm" }),
    h("span", { class: "year-top-text" }, h("strong", { class: "year-top-title" }, row.movie.title),
      h("span", {}, `${fmtNumber(row.plays)} ${row.plays === 1 ? "play" : "plays"} · ${fmtDuration(row.minutes)}`))));
  const empty = h("p", { class: "state state-empty" }, "Nothing watched in this period.");
  return [
    card("Top shows", shows.length ? h("ol", { class: "year-top", id: "top-shows" }, shows) : empty),
    card("Top movies", movies.length ? h("ol", { class: "year-top", id: "top-movies" }, movies) : empty.cloneNode(true)),
  ];
}

function breakdowns(doc) {
  const genres = doc.genres.slice(0, 12).map((g) => [g.genre.replace(/-/g, " "), g.minutes, fmtDuration(g.minutes)]);
  const decades = doc.decades.map((d) => [`${d.decade}s`, d.plays]);
  const out = [
    card("Genres", genres.length ? bars("Time per genre", genres, ["Genre", "Time"]) : h("p", { class: "state state-empty" }, "No genres known.")),
    card("Decades", decades.length ? bars("Plays per decade of release", decades, ["Decade", "Plays"]) : h("p", { class: "state state-empty" }, "No release years known.")),
  ];
  if (doc.countries.length) {
    out.push(card("Countries", bars("Plays per country", doc.countries.slice(0, 8).map((c) => [c.country.toUpperCase(), c.plays]), ["Country", "Plays"])));
  }
  return out;
}

function facts(doc) {
  const { longest, current } = doc.streaks;
  const streak = (s) => {
    if (!s.days) return "—";
    const when = s.start === s.end ? fmtDay(s.start) : `${fmtDay(s.start)} – ${fmtDay(s.end)}`;
    return `${fmtNumber(s.days)} ${s.days === 1 ? "day" : "days"} (${when})`;
  };
  const play = (row) => {
    if (!row) return "—";
    const title = row.movie ? row.movie.title : `${row.show?.title} S${row.episode?.season}E${row.episode?.number}`;
    return `${title}, ${fmtDay(row.watched_at?.slice(0, 10))}`;
  };
  const busiest = (b, label) => (b ? `${label(b)}: ${fmtNumber(b.plays)} plays, ${fmtDuration(b.minutes)}` : "—");
  const rows = [
    ["Longest streak", streak(longest), "longest"],
    ["Current streak", streak(current), "current"],
    ["Busiest day", busiest(doc.busiest_day, (b) => fmtDay(b.date)), "busiest-day"],
    ["Busiest week", busiest(doc.busiest_week, (b) => `week of ${fmtDay(b.start)}`), "busiest-week"],
    ["Busiest month", busiest(doc.busiest_month, (b) => fmtMonth(b.month)), "busiest-month"],
    ["First play", play(doc.first_play), "first"],
    ["Last play", play(doc.last_play), "last"],
  ];
  return card("Streaks and records", h("dl", { class: "year-facts" },
    rows.map(([label, value, key]) => h("div", { "data-fact": key }, h("dt", {}, label), h("dd", {}, value)))));
}

function ratings(doc) {
  const r = doc.ratings;
  if (!r.count) return card("Ratings given", h("p", { class: "state state-empty" }, "No ratings given in this period."));
  const distribution = Object.entries(r.distribution).reverse().map(([score, count]) => [`${score} ★`, count]);
  const best = r.highest.slice(0, 5).map((row) => {
    const item = row.movie || row.show || row.episode || {};
    const title = row.episode && row.show ? `${row.show.title} ${row.episode.season}×${row.episode.number}` : item.title;
    return h("li", {}, h("strong", {}, `${row.rating}★ `), title || "Untitled");
  });
  return card("Ratings given",
    h("p", { class: "year-ratings-summary", "data-ratings": r.count },
      `${fmtNumber(r.count)} ratings, ${r.average.toFixed(1)} on average`),
    bars("Ratings given by score", distribution, ["Score", "Ratings"]),
    h("ol", { class: "year-best" }, best));
}

function render(doc) {
  const body = document.getElementById("year-body");
  const heading = doc.year === null ? "All time" : `${doc.year} in review`;
  document.getElementById("year-heading").textContent = heading;
  document.title = `${heading} — Trakt Watch Dashboard`;
  replace(body,
    bigNumbers(doc),
    doc.year !== null ? calendar(doc) : null,
    months(doc),
    topTitles(doc),
    breakdowns(doc),
    facts(doc),
    ratings(doc),
    h("p", { class: "year-footnote" }, `Counted in ${doc.timezone}.`));
  body.hidden = false;
}

function wantedYear(years) {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash === "all") return null;
  if (/^\d{4}$/.test(hash)) return Number(hash);
  return years.length ? years[0] : null;
}

// Kept here: it leaves the page once the first answer is in, and comes back to say why one failed.
const loadingState = document.getElementById("year-loading");

async function show(years) {
  const main = document.getElementById("main");
  const year = wantedYear(years);
  document.getElementById("year-select").value = year === null ? "all" : String(year);
  main.setAttribute("aria-busy", "true");
  try {
    render(await getJSON(`/api/trakt/user/insights${query({ year: year ?? undefined })}`));
    loadingState.remove();
  } catch (err) {
    loadingState.className = "state state-error";
    loadingState.textContent = `Could not load the insights: ${err.message}`;
    if (!loadingState.isConnected) main.prepend(loadingState);
  }
  main.setAttribute("aria-busy", "false");
  document.documentElement.dataset.ready = "true";
}

async function start() {
  let years = [];
  try {
    years = (await getJSON("/api/trakt/user/insights")).years;
  } catch {
    years = [];
  }
  const select = document.getElementById("year-select");
  replace(select, years.map((y) => h("option", { value: String(y) }, String(y))), h("option", { value: "all" }, "All time"));
  const wanted = wantedYear(years);
  if (wanted !== null && !years.includes(wanted)) select.prepend(h("option", { value: String(wanted) }, String(wanted)));
  select.addEventListener("change", () => { location.hash = select.value; });
  window.addEventListener("hashchange", () => show(years));
  await show(years);
}

start();
