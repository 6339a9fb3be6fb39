// Comments and reviews, fetched a page at a time (`?page=N&limit=12`): reviews are marked,
// spoilers (whole comments or [spoiler] parts) stay blurred until their "show" button is pressed,
// long reviews fold.

import { h, replace, fmtNumber, timeEl, icon, ICONS, episodeCode } from "./dom.js";
import { pagedGrid } from "./ui.js";
import { pager } from "./collections.js";
import { titleLink, titleLinks, badge } from "./media.js";

const PAGE = 12;
const FOLD_CHARS = 420;

/** Fill the comments section; resolves once the first page is shown (or its inline error). */
export function renderComments() {
  const grid = pagedGrid({
    fetchPage: pager("/api/trakt/user/comments", { size: PAGE }), renderItem: commentCard,
    label: "Comments", emptyText: "No comments yet.", gridClass: "comment-grid",
  });
  replace(document.getElementById("comments-body"), grid);
  return grid.ready;
}

/** What a comment is about: {kind, media, label}. */
function target(item) {
  if (item.episode && item.show) {
    return { kind: "show", media: item.show, label: `${item.show.title} · ${episodeCode(item.episode.season, item.episode.number)}` };
  }
  if (item.season && item.show) return { kind: "show", media: item.show, label: `${item.show.title} · Season ${item.season.number}` };
  if (item.movie) return { kind: "movie", media: item.movie, label: item.movie.title };
  if (item.show) return { kind: "show", media: item.show, label: item.show.title };
  if (item.list) return { kind: "list", media: item.list, label: item.list.name };
  return { kind: "item", media: {}, label: "Comment" };
}

function commentCard(item) {
  const comment = item.comment && typeof item.comment === "object" ? item.comment : item;
  const about = target(item);
  const text = String(comment.comment || "");
  const rating = comment.user_rating ?? comment.user_stats?.rating;
  const badges = [
    comment.review ? badge("Review", "review") : null,
    comment.spoiler ? badge("Spoiler", "spoiler") : null,
    rating ? h("span", { class: "rating", title: `Rated ${rating}/10` }, icon(ICONS.star), `${rating}/10`) : null,
  ];
  const titleNode = about.kind === "movie" || about.kind === "show"
    ? titleLink(about.kind, about.media, about.label)
    : h("span", { class: "title-text" }, about.label || "Untitled");
  return h("article", { class: `comment${comment.review ? " is-review" : ""}` },
    h("header", { class: "comment-head" },
      h("h3", { class: "comment-title" }, titleNode, about.media.year ? h("span", { class: "card-year" }, ` ${about.media.year}`) : null),
      h("span", { class: "badges" }, badges)),
    commentBody(text, Boolean(comment.spoiler)),
    h("footer", { class: "comment-foot" },
      timeEl(comment.created_at),
      comment.likes ? h("span", {}, icon(ICONS.heart), fmtNumber(comment.likes)) : null,
      comment.replies ? h("span", {}, icon(ICONS.comment), `${fmtNumber(comment.replies)} repl${comment.replies === 1 ? "y" : "ies"}`) : null,
      about.kind === "movie" || about.kind === "show" ? titleLinks(about.kind, about.media.ids || {}) : null));
}

function commentBody(text, wholeSpoiler) {
  const paragraph = h("div", { class: "comment-text" }, textWithSpoilers(text));
  const body = wholeSpoiler ? spoiler(paragraph, "This comment contains spoilers") : paragraph;
  if (text.length <= FOLD_CHARS) return body;
  paragraph.classList.add("is-folded");
  const toggle = h("button", { type: "button", class: "btn-link", "aria-expanded": "false" }, "Read more");
  toggle.addEventListener("click", () => {
    const folded = paragraph.classList.toggle("is-folded");
    toggle.setAttribute("aria-expanded", folded ? "false" : "true");
    toggle.textContent = folded ? "Read more" : "Show less";
  });
  return h("div", {}, body, toggle);
}

/** Plain text where [spoiler]…[/spoiler] parts become blurred, revealable spans. */
function textWithSpoilers(text) {
  const parts = [];
  const pattern = /\[spoiler\]([\s\S]*?)\[\/spoiler\]/gi;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parts.push(text.slice(last, match.index));
    parts.push(spoiler(h("span", {}, match[1]), "Spoiler", true));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

/**
 * Blur `content` until the reader asks: a real button beside the hidden text (never wrapped
 * around it), and the text `inert` meanwhile, so neither its words nor a control inside it
 * reaches the keyboard or a screen reader before it is revealed.
 */
function spoiler(content, label, inline = false) {
  content.classList.add("spoiler-text");
  content.inert = true;
  const button = h("button", {
    type: "button", class: `spoiler-button${inline ? " spoiler-button-inline" : ""}`,
  }, inline ? "Show spoiler" : `${label} — show`);
  const wrapper = h(inline ? "span" : "div", { class: `spoiler${inline ? " spoiler-inline" : ""}` }, button, content);
  button.addEventListener("click", () => {
    wrapper.classList.add("is-revealed");
    content.inert = false;
    // The button goes; the revealed text takes the focus so the keyboard stays in place.
    content.tabIndex = -1;
    button.remove();
    content.focus({ preventScroll: true });
  });
  return wrapper;
}
