// Now-watching banner fed by WS /ws/watching. Progress moves with every tick and smoothly in
// between (interpolated from the last known elapsed/remaining seconds). When the socket drops
// it reconnects with exponential backoff and polls GET /api/watching until it is back.

import { h, replace, fmtRemaining } from "./dom.js";
import { getJSON } from "./api.js";
import { titleLinks } from "./media.js";

const PING_MS = 20000;
const POLL_MS = 10000;
const FRAME_MS = 250;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;

const $ = (id) => document.getElementById(id);

export class NowWatching {
  constructor() {
    this.banner = $("now-watching");
    this.progress = $("nw-progress");
    this.fill = $("nw-progress-fill");
    this.indicator = $("live-indicator");
    this.socket = null;
    this.attempts = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pollTimer = null;
    this.frameTimer = null;
    this.key = null;
    // Playback clock: elapsed seconds known at `at` (performance.now() ms), total length.
    this.clock = null;
    // Resolves once the first state is known (or the socket failed): the page's header then has its height.
    this.settled = new Promise((resolve) => { this.markSettled = resolve; });
  }

  start() {
    this.connect();
    // Browsers drop sockets of suspended tabs; reconnect at once when the page is visible again.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !this.socket) this.reconnectNow();
    });
    window.addEventListener("online", () => { if (!this.socket) this.reconnectNow(); });
  }

  // --- connection ------------------------------------------------------------------
  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.setIndicator("connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/ws/watching`);
    } catch {
      this.onDisconnected();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempts = 0;
      this.setIndicator("live");
      this.stopPolling();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_MS);
    });
    socket.addEventListener("message", (event) => this.onMessage(event.data));
    socket.addEventListener("close", () => {
      if (this.socket === socket) this.onDisconnected();
    });
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  onMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    document.dispatchEvent(new CustomEvent("trakt-watch:message", { detail: message })); // live-data.js
    if (message.type === "watching") this.apply(message.data);
    else if (message.type === "tick") this.applyTick(message.data);
  }

  onDisconnected() {
    this.markSettled();
    this.socket = null;
    clearInterval(this.pingTimer);
    this.setIndicator("offline");
    this.startPolling();
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
    this.attempts += 1;
    // Jitter so that many dashboards do not reconnect in lock-step after a restart.
    this.reconnectTimer = setTimeout(() => this.connect(), delay * (0.75 + Math.random() * 0.5));
  }

  reconnectNow() {
    this.attempts = 0;
    this.connect();
  }

  startPolling() {
    if (this.pollTimer) return;
    const poll = async () => {
      try {
        this.apply(await getJSON("/api/watching"));
      } catch {
        // Server unreachable as well: keep the last state; the indicator already says offline.
      }
    };
    poll();
    this.pollTimer = setInterval(poll, POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  setIndicator(state) {
    const labels = { live: "Live", connecting: "Connecting…", offline: "Offline — retrying" };
    this.indicator.dataset.state = state;
    this.indicator.querySelector(".live-label").textContent = labels[state];
    this.indicator.title = state === "live"
      ? "Connected: now-watching updates live"
      : state === "offline" ? "Connection lost: checking every few seconds and reconnecting" : "Connecting…";
  }

  // --- state -----------------------------------------------------------------------
  apply(data) {
    this.markSettled();
    if (!data || !data.isWatching || !data.content) {
      this.hide();
      return;
    }
    const content = data.content;
    const key = JSON.stringify([content.type, content.title, content.subtitle, content.progress?.started_at]);
    if (key !== this.key) {
      this.key = key;
      this.render(content);
    }
    this.banner.classList.toggle("is-stale", Boolean(content.stale));
    this.setClock(content.progress || {});
    this.show();
  }

  applyTick(tick) {
    if (!this.clock || !tick) return;
    const elapsed = Number(tick.elapsed_seconds);
    const remaining = Number(tick.remaining_seconds);
    if (Number.isFinite(elapsed) && Number.isFinite(remaining)) {
      this.clock = { elapsed, total: Math.max(1, elapsed + remaining), at: performance.now() };
    } else if (Number.isFinite(Number(tick.percentage))) {
      this.clock = { ...this.clock, elapsed: (this.clock.total * Number(tick.percentage)) / 100, at: performance.now() };
    }
    this.updateProgress();
  }

  setClock(progress) {
    let elapsed = Number(progress.elapsed_seconds);
    let remaining = Number(progress.remaining_seconds);
    if (!(Number.isFinite(elapsed) && Number.isFinite(remaining))) {
      const started = Date.parse(progress.started_at);
      const expires = Date.parse(progress.expires_at);
      if (Number.isFinite(started) && Number.isFinite(expires) && expires > started) {
        elapsed = Math.max(0, (Date.now() - started) / 1000);
        remaining = Math.max(0, (expires - Date.now()) / 1000);
      } else {
        const total = 3600;
        elapsed = (total * (Number(progress.percentage) || 0)) / 100;
        remaining = total - elapsed;
      }
    }
    this.clock = { elapsed, total: Math.max(1, elapsed + remaining), at: performance.now() };
    this.updateProgress();
  }

  render(content) {
    $("nw-title").textContent = content.title || "Untitled";
    $("nw-year").textContent = content.year ? `(${content.year})` : "";
    // A movie's subtitle may just repeat the year shown beside the title.
    const subtitle = content.subtitle && content.subtitle !== String(content.year) ? content.subtitle : "";
    $("nw-subtitle").textContent = subtitle || (content.type === "movie" ? "Movie" : "");
    const kind = content.type === "movie" ? "movie" : "show";
    replace($("nw-links"), titleLinks(kind, content.ids || {}));
    const backdrop = $("nw-backdrop");
    const images = content.images || {};
    const url = window.matchMedia("(max-width: 640px)").matches
      ? images.backdrop_small || images.backdrop_medium || images.backdrop
      : images.backdrop || images.backdrop_medium || images.backdrop_small;
    backdrop.replaceChildren();
    backdrop.classList.remove("is-loaded");
    if (url) {
      const img = h("img", { src: url, alt: "", decoding: "async" });
      img.addEventListener("load", () => backdrop.classList.add("is-loaded"));
      img.addEventListener("error", () => img.remove());
      backdrop.append(img);
    }
  }

  show() {
    if (this.banner.hidden) this.banner.hidden = false;
    if (!this.frameTimer) this.frameTimer = setInterval(() => this.updateProgress(), FRAME_MS);
  }

  hide() {
    this.key = null;
    this.clock = null;
    this.banner.hidden = true;
    clearInterval(this.frameTimer);
    this.frameTimer = null;
  }

  updateProgress() {
    if (!this.clock) return;
    const { total } = this.clock;
    const elapsed = Math.min(total, this.clock.elapsed + (performance.now() - this.clock.at) / 1000);
    const percent = Math.min(100, Math.max(0, (elapsed / total) * 100));
    const value = percent.toFixed(1);
    if (this.progress.getAttribute("aria-valuenow") === value) return;
    const text = `${Math.floor(percent)}% — ${fmtRemaining(total - elapsed)}`;
    this.progress.setAttribute("aria-valuenow", value);
    this.progress.setAttribute("aria-valuetext", text);
    this.fill.style.transform = `scaleX(${percent / 100})`;
    $("nw-percent").textContent = `${Math.floor(percent)}%`;
    $("nw-left").textContent = fmtRemaining(total - elapsed);
  }
}
