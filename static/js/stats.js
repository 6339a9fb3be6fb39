// "At a glance": stat cards from /api/trakt/user/stats, a ratings distribution, plays per month
// over the last 24 months and a day-of-week × hour heatmap from /api/trakt/user/activity.
// Charts are plain DOM (sized through CSS custom properties), each with a hidden data table
// for screen readers.

import { h, fmtNumber, fmtDuration, formatter, replace } from "./dom.js";
import { getJSON, shared } from "./api.js";
import { runSection, empty, whenNear } from "./ui.js";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const HOURS = Array.from({ length: 24 }, (_, i) => i);

/**
 * Every card and chart first shows a placeholder of its final size (the same cards with "–",
 * an empty heatmap, fixed chart boxes), so nothing below moves when the numbers arrive.
 */
export function renderStats() {
  const cards = document.getElementById("stats-cards");
  const ratings = document.getElementById("chart-ratings-body");
  replace(cards, statCards(null));
  const stats = shared(() => getJSON("/api/trakt/user/stats"));
  return Promise.all([
    runSection(cards, stats, (doc) => statCards(doc.data || {}), { keep: true }),
    runSection(ratings, stats, (doc) => ratingsChart(doc.data?.ratings || {})),
    renderActivity(),
  ]);
}

function renderActivity() {
  const months = document.getElementById("chart-months-body");
  const heatmap = document.getElementById("chart-heatmap-body");
  replace(heatmap, heatmapChart({ counts: [] }, "Loading…"));
  const activity = shared(() => getJSON("/api/trakt/user/activity"));
  return Promise.all([
    runSection(months, activity, (doc) => {
      replace(document.getElementById("chart-months-years"), yearLinks(doc.months || []));
      return monthsChart(doc.months || []);
    }),
    runSection(heatmap, activity, (doc) => {
      document.getElementById("heatmap-zone").textContent = doc.timezone ? `day × hour, ${doc.timezone}` : "day × hour";
      return heatmapChart(doc.heatmap || {});
    }, { keep: true }),
  ]);
}

// --- cards -------------------------------------------------------------------------
function statCard(label, value, detail, variant) {
  // The detail line is always there (blank when there is nothing to say): every card keeps its height.
  return h("li", { class: `stat-card stat-${variant}` },
    h("span", { class: "stat-label" }, label),
    h("span", { class: "stat-value", dataset: { stat: variant } }, value),
    h("span", { class: "stat-detail" }, detail || "\u00a0"));
}

function averageRating(distribution) {
  let sum = 0;
  let count = 0;
  for (const [rating, n] of Object.entries(distribution || {})) {
    sum += Number(rating) * Number(n);
    count += Number(n);
  }
  return count ? sum / count : null;
}

/** The six cards; `stats` null gives the placeholder cards shown while the numbers load. */
function statCards(stats) {
  if (!stats) {
    return h("ul", { class: "stat-cards", "aria-label": "Totals", "aria-busy": "true" },
      [["Movies", "movies"], ["Shows", "shows"], ["Episodes", "episodes"], ["Plays", "plays"],
        ["Time watched", "time"], ["Ratings", "ratings"]].map(([label, variant]) => statCard(label, "–", null, variant)));
  }
  const movies = stats.movies || {};
  const shows = stats.shows || {};
  const episodes = stats.episodes || {};
  const ratings = stats.ratings || {};
  const plays = (movies.plays || 0) + (episodes.plays || 0);
  const minutes = (movies.minutes || 0) + (episodes.minutes || 0);
  const average = averageRating(ratings.distribution);
  return h("ul", { class: "stat-cards", "aria-label": "Totals" },
    statCard("Movies", fmtNumber(movies.watched), `${fmtNumber(movies.plays)} plays`, "movies"),
    statCard("Shows", fmtNumber(shows.watched), stats.seasons?.watched ? `${fmtNumber(stats.seasons.watched)} seasons` : null, "shows"),
    statCard("Episodes", fmtNumber(episodes.watched), `${fmtNumber(episodes.plays)} plays`, "episodes"),
    statCard("Plays", fmtNumber(plays), "movies + episodes", "plays"),
    statCard("Time watched", fmtDuration(minutes),
      `movies ${fmtDuration(movies.minutes)} · TV ${fmtDuration(episodes.minutes)}`, "time"),
    statCard("Ratings", fmtNumber(ratings.total), average !== null ? `average ${average.toFixed(1)} / 10` : null, "ratings"));
}

// --- ratings distribution ------------------------------------------------------------
function ratingsChart(ratings) {
  const distribution = ratings.distribution || {};
  const values = Array.from({ length: 10 }, (_, i) => Number(distribution[String(i + 1)] || 0));
  const max = Math.max(...values);
  if (!max) return empty("No ratings yet.");
  const bars = values.map((count, i) => h("div", {
    class: "bar-col", title: `${count} rated ${i + 1}/10`,
  },
  h("span", { class: "bar-value" }, fmtNumber(count)),
  h("span", { class: "bar-track" },
    h("span", { class: `bar bar-r${i + 1}`, style: { "--h": `${(count / max) * 100}%` } })),
  h("span", { class: "bar-label" }, String(i + 1))));
  return [
    h("div", { class: "bar-chart", "aria-hidden": "true" }, bars),
    lazyTable(() => dataTable("Ratings distribution", ["Rating", "Titles"], values.map((count, i) => [String(i + 1), fmtNumber(count)]))),
  ];
}

// --- plays per month -------------------------------------------------------------------
const monthLabel = formatter(() => new Intl.DateTimeFormat(undefined, { month: "short" }));
const monthLong = formatter(() => new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric" }));

function monthDate(key) {
  const [year, month] = String(key).split("-").map(Number);
  return new Date(year, (month || 1) - 1, 1);
}

function niceMax(value) {
  if (value <= 5) return 5;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

function monthsChart(months) {
  if (!months.length) return empty("No plays in the last two years.");
  const totals = months.map((m) => (m.movies || 0) + (m.episodes || 0));
  const top = niceMax(Math.max(1, ...totals));
  const grid = h("div", { class: "mc-grid", "aria-hidden": "true" },
    [1, 0.5, 0].map((f) => h("span", { class: "mc-gridline", style: { "--y": `${(1 - f) * 100}%` } },
      h("span", { class: "mc-gridlabel" }, fmtNumber(Math.round(top * f))))));
  const dates = months.map((m) => monthDate(m.month));
  // Month names every 3rd (6th on phones) column, never right beside a year label.
  const nearYear = (i) => [i - 1, i + 1].some((j) => dates[j] && dates[j].getMonth() === 0);
  const columns = months.map((m, i) => {
    const date = dates[i];
    const label = monthLabel().format(date);
    const january = date.getMonth() === 0;
    const major = i % 3 === 0 && !nearYear(i);
    const six = i % 6 === 0 && !nearYear(i);
    const tip = `${monthLong().format(date)}: ${fmtNumber(m.movies || 0)} movies, ${fmtNumber(m.episodes || 0)} episodes, ${fmtDuration(m.minutes || 0)}`;
    return h("div", { class: `mc-col${major ? " mc-major" : ""}${six ? " mc-six" : ""}${january ? " mc-year" : ""}`, title: tip },
      h("span", { class: "mc-stack" },
        h("span", { class: "mc-seg mc-episodes", style: { "--h": `${((m.episodes || 0) / top) * 100}%` } }),
        h("span", { class: "mc-seg mc-movies", style: { "--h": `${((m.movies || 0) / top) * 100}%` } })),
      h("span", { class: "mc-label" }, january ? String(date.getFullYear()) : label));
  });
  const sum = (key) => months.reduce((acc, m) => acc + (m[key] || 0), 0);
  return [
    h("div", { class: "legend", "aria-hidden": "true" },
      h("span", { class: "legend-item" }, h("span", { class: "swatch swatch-episodes" }), "Episodes"),
      h("span", { class: "legend-item" }, h("span", { class: "swatch swatch-movies" }), "Movies"),
      h("span", { class: "legend-total" }, `${fmtNumber(sum("movies") + sum("episodes"))} plays · ${fmtDuration(sum("minutes"))}`)),
    h("div", { class: "months-chart", "aria-hidden": "true" }, grid, h("div", { class: "mc-cols" }, columns)),
    lazyTable(() => dataTable("Plays per month", ["Month", "Movies", "Episodes", "Time"],
      months.map((m) => [monthLong().format(monthDate(m.month)), fmtNumber(m.movies || 0), fmtNumber(m.episodes || 0), fmtDuration(m.minutes || 0)]))),
  ];
}

/** A link to the year view (/year/#YYYY) for each year with plays in the chart. */
function yearLinks(months) {
  const years = [...new Set(months.filter((m) => (m.movies || 0) + (m.episodes || 0) > 0)
    .map((m) => String(m.month).slice(0, 4)))];
  if (!years.length) return [];
  return [
    h("span", { class: "chart-years-label", "aria-hidden": "true" }, "Year in review"),
    years.map((year) => h("a", { class: "chart-year", href: `/year/#${year}`, title: `${year} in review` },
      year, h("span", { class: "visually-hidden" }, " in review"))),
  ];
}

// --- heatmap -----------------------------------------------------------------------------
/** The day × hour grid; without plays (or while `note` says it loads) the same grid, empty. */
function heatmapChart(heatmap, note = null) {
  const days = heatmap.days || DAYS;
  const hours = heatmap.hours || HOURS;
  const counts = heatmap.counts || [];
  const max = Math.max(0, ...counts.flat().map(Number));
  const cells = [h("span", { class: "hm-corner" })];
  hours.forEach((hour) => cells.push(h("span", { class: `hm-hour${hour % 6 === 0 ? " hm-hour-major" : ""}` }, hour % 3 === 0 ? String(hour) : "")));
  days.forEach((day, d) => {
    cells.push(h("span", { class: "hm-day" }, day));
    hours.forEach((hour, i) => {
      const count = Number(counts[d]?.[i] || 0);
      // A square-root scale keeps quiet hours visible next to a busy evening.
      const level = count ? 0.15 + 0.85 * Math.sqrt(count / max) : 0;
      cells.push(h("span", {
        class: "hm-cell", title: max ? `${day} ${String(hour).padStart(2, "0")}:00 — ${fmtNumber(count)} plays` : null,
        style: level ? { "--level": level.toFixed(3) } : null,
      }));
    });
  });
  const busiest = findBusiest(days, hours, counts);
  const grid = h("div", { class: "heatmap", "aria-hidden": "true" }, cells);
  const legend = h("div", { class: "hm-legend" },
    h("span", { class: "hm-busiest" }, note || (busiest ? `Busiest: ${busiest}` : "No history to chart yet.")),
    h("span", { class: "hm-scale", "aria-hidden": "true" }, "Less",
      [0, 0.3, 0.55, 0.8, 1].map((level) => h("span", { class: "hm-cell hm-swatch", style: { "--level": String(level) } })),
      "More"));
  if (!max) return [grid, legend];
  return [grid, legend, lazyTable(() => dataTable("Plays by day and hour", ["Day", ...hours.map((hh) => `${hh}:00`)],
    days.map((day, d) => [day, ...hours.map((_, i) => fmtNumber(counts[d]?.[i] || 0))])))];
}

function findBusiest(days, hours, counts) {
  let best = null;
  days.forEach((day, d) => hours.forEach((hour, i) => {
    const count = Number(counts[d]?.[i] || 0);
    if (count && (!best || count > best.count)) best = { day, hour, count };
  }));
  return best ? `${best.day} ${String(best.hour).padStart(2, "0")}:00 (${fmtNumber(best.count)})` : null;
}

/** A slot that gets its hidden data table once the chart nears the viewport (fewer nodes at first paint). */
function lazyTable(build) {
  const slot = h("div", { class: "visually-hidden" });
  whenNear(slot, () => slot.replaceWith(build()));
  return slot;
}

/** A visually hidden table with the numbers behind a chart. */
function dataTable(caption, headings, rows) {
  // The wrapper hides it: a table ignores the 1px width of the visually-hidden pattern.
  return h("div", { class: "visually-hidden" }, h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell))))))));
}

