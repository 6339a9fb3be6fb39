// Profile header: avatar or initials, name, @username linking to Trakt, location, joined date,
// bio, and the "data as of" line with demo/stale/sync badges from the index metadata.

import { h, replace, icon, ICONS, fmtDateTime, fmtRelative, fmtMonthYear, initials } from "./dom.js";
import { getJSON } from "./api.js";
import { errorBox, reportError } from "./ui.js";
import { badge, imageAvailability, traktUrl } from "./media.js";

/** Load /api/trakt and the profile into the header; returns the index document (or null). */
export async function renderProfile() {
  const body = document.getElementById("profile-body");
  try {
    const [index, profile] = await Promise.all([
      getJSON("/api/trakt"),
      getJSON("/api/trakt/user/profile"),
    ]);
    replace(body, profileView(profile.data || {}, index.metadata || {}, index.data || {}));
    body.removeAttribute("aria-busy");
    document.title = `${profile.data?.name || profile.data?.username || "Trakt"} · Trakt Watch Dashboard`;
    return index;
  } catch (err) {
    replace(body, errorBox(err, renderProfile));
    if (err?.name !== "ApiError") reportError(err);
    return null;
  } finally {
    loadHeroBackdrop();
  }
}

function avatarView(profile) {
  const name = profile.name || profile.username || "";
  const fallback = h("span", { class: "avatar-initials", "aria-hidden": "true" }, initials(name));
  const frame = h("div", { class: "avatar" }, fallback);
  const url = profile.avatar?.full || profile.images?.avatar?.full;
  if (url) {
    imageAllowed(url).then((allowed) => {
      if (!allowed) return;
      const img = h("img", { src: url, alt: `${name} avatar`, width: 96, height: 96, decoding: "async" });
      img.addEventListener("error", () => img.remove());
      frame.append(img);
    });
  }
  return frame;
}

/**
 * Whether the page's Content-Security-Policy lets it show an image from `url`. Trakt avatars
 * live on hosts the policy may not list; asking first keeps a refused load (a console error)
 * from happening: the initials stay instead.
 */
async function imageAllowed(url) {
  let target;
  try {
    target = new URL(url, location.href);
  } catch {
    return false;
  }
  if (target.protocol === "data:" || target.origin === location.origin) return true;
  try {
    const response = await fetch("/static/favicon.svg", { method: "HEAD" });
    const sources = imageSources(response.headers.get("Content-Security-Policy"));
    return sources === null || sources.some((source) => sourceMatches(source, target));
  } catch {
    return false;
  }
}

function profileView(profile, metadata, indexData) {
  const username = profile.username || metadata.username || indexData.username || "";
  const slug = profile.ids?.slug || username;
  const bio = profile.bio || profile.biography || profile.about;
  const badges = [];
  if (metadata.source === "demo") badges.push(badge("Demo account", "demo"));
  if (metadata.stale) badges.push(badge("Stale data", "stale"));
  if (profile.vip) badges.push(badge("VIP", "vip"));

  const facts = [];
  if (profile.location) facts.push(h("li", {}, icon(ICONS.pin), profile.location));
  if (profile.joined_at) facts.push(h("li", {}, icon(ICONS.calendar), `Joined ${fmtMonthYear(profile.joined_at)}`));
  if (/^https?:\/\//i.test(profile.website || "")) {
    facts.push(h("li", {}, icon(ICONS.link),
      h("a", { href: profile.website, target: "_blank", rel: "noopener noreferrer" }, profile.website.replace(/^https?:\/\//, ""))));
  }

  return h("div", { class: "profile-row" },
    avatarView(profile),
    h("div", { class: "profile-text" },
      h("h1", { class: "profile-name" }, profile.name || username || "Trakt user", badges.length ? h("span", { class: "badges" }, badges) : null),
      username ? h("p", { class: "profile-username" },
        h("a", { href: traktUrl("users", slug), target: "_blank", rel: "noopener noreferrer" }, `@${username}`)) : null,
      facts.length ? h("ul", { class: "profile-facts" }, facts) : null,
      bio ? h("p", { class: "profile-bio" }, bio) : null,
      dataAsOf(metadata, indexData)));
}

function dataAsOf(metadata, indexData) {
  const updated = metadata.last_updated || indexData.last_updated;
  const sync = metadata.sync;
  const parts = [];
  if (updated) {
    parts.push(icon(ICONS.clock), "Data as of ",
      h("time", { datetime: updated, title: fmtDateTime(updated), id: "data-as-of" }, `${fmtDateTime(updated)} (${fmtRelative(updated)})`));
  }
  if (sync && (sync.running || sync.last_attempt_outcome === "running")) {
    parts.push(" · ", h("span", { class: "sync-running" }, "sync in progress…"));
  } else if (sync && sync.last_attempt_outcome === "failed") {
    const when = sync.last_attempt_at ? ` ${fmtRelative(sync.last_attempt_at)}` : "";
    // The reason is in the tooltip and in the accessible description.
    parts.push(" · ", h("span", { class: "sync-failed", title: sync.last_error || "" },
      `last sync failed${when}`, sync.last_error ? h("span", { class: "visually-hidden" }, `: ${sync.last_error}`) : null));
  }
  return parts.length ? h("p", { class: "data-as-of" }, parts) : null;
}

/** The img-src (or default-src) sources of a policy; null when the policy does not limit images. */
function imageSources(policy) {
  if (!policy) return null;
  const directives = new Map(policy.split(";").map((part) => {
    const [name, ...sources] = part.trim().split(/\s+/);
    return [name.toLowerCase(), sources];
  }));
  return directives.get("img-src") || directives.get("default-src") || null;
}

function sourceMatches(source, target) {
  if (source === "*") return true;
  if (source === target.protocol) return true; // a scheme source such as "https:"
  if (source.startsWith(`${target.protocol}//*.`)) return target.host.endsWith(source.slice(target.protocol.length + 3));
  return source.replace(/\/$/, "") === target.origin;
}

/** A random indexed backdrop behind the header; quietly absent when none is indexed. */
async function loadHeroBackdrop() {
  const target = document.getElementById("hero-backdrop");
  try {
    const available = await imageAvailability;
    if (available && !available.movies.backdrops.size && !available.shows.backdrops.size) return;
    const result = await getJSON("/api/images/random-backdrop");
    if (!result || !result.url) return;
    const img = new Image();
    img.decoding = "async";
    img.alt = "";
    img.addEventListener("load", () => {
      target.replaceChildren(img);
      target.classList.add("is-loaded");
    });
    img.src = result.url;
  } catch {
    // No backdrop indexed: the gradient stays, which is the intended fallback.
  }
}
