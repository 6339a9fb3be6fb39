// Entry point: wires every section of the dashboard. Each section shows its own inline error,
// so one failing endpoint never blanks the page.
//
// Nothing moves while the page loads (README "Dashboard"): the header is the only part whose
// height depends on the data (the profile, the now-watching banner), so what lies under it stays
// hidden until both are in (or SETTLE_MS have passed); every section below reserves its size
// with placeholders. Sections below the first screen are fetched and built as the reader nears them.

import { renderProfile } from "./profile.js";
import { NowWatching } from "./watching.js";
import { renderStats } from "./stats.js";
import { setupSearch } from "./search.js";
import { replace } from "./dom.js";
import { errorBox, reportError, whenNear } from "./ui.js";
import "./signin.js"; // the header says when the Trakt sign-in must be renewed
import { startLiveData } from "./live-data.js";

const SETTLE_MS = 2500;

/** Show what is under the header once `ready` settles, at the latest after SETTLE_MS. */
function reveal(ready) {
  const late = new Promise((resolve) => { setTimeout(resolve, SETTLE_MS); });
  return Promise.race([ready, late]).then(() => document.documentElement.classList.remove("is-settling"));
}

/**
 * Build a section when it nears the viewport, its code fetched only then (the first screen
 * parses less script); `data-loaded` says when its first data is shown.
 */
function lazySection(id, render) {
  const section = document.getElementById(id);
  const run = () => render().then(() => { section.dataset.loaded = "true"; }, (err) => {
    // Its script could not be fetched (the section's own data errors are shown by the section).
    replace(section.querySelector(".section-body"), errorBox(err, run));
    reportError(err);
  });
  return whenNear(section, run);
}

const collections = () => import("./collections.js");

/** A lazy section reloads on new data only once it was built (until then, nearing it builds it). */
function whenBuilt(id, load) {
  return () => (document.getElementById(id).dataset.loaded === "true" ? load() : Promise.resolve());
}

async function main() {
  // After a sync, the sections showing a changed collection reload (README "Now watching and the
  // WebSocket protocol"); a lazy section's body is emptied first, as its loader appends.
  startLiveData([
    { collections: ["profile"], containers: [], load: renderProfile },
    { collections: ["stats", "history", "ratings"], containers: [], load: renderStats },
    ...["history", "watchlist", "watched"].map((id) => ({
      collections: [id], containers: [`${id}-body`],
      load: whenBuilt(id, async () => (await collections()).renderCollections(id, renderProfile())),
    })),
    { collections: ["lists"], containers: [],
      load: whenBuilt("lists", async () => (await import("./lists.js")).renderLists()) },
    { collections: ["comments"], containers: [],
      load: whenBuilt("comments", async () => (await import("./comments.js")).renderComments()) },
  ]);
  const watching = new NowWatching();
  watching.start();
  setupSearch();
  const index = renderProfile();
  const stats = renderStats();
  const shown = reveal(Promise.allSettled([index, watching.settled]));
  // Watched for only once the header has its final height: while it settles, the sections sit
  // higher than they will, and one below the first screen would look near and be built for nothing.
  shown.then(() => {
    for (const id of ["history", "watchlist", "watched"]) {
      lazySection(id, async () => (await collections()).renderCollections(id, index));
    }
    lazySection("upnext", async () => (await import("./upnext.js")).renderUpNext(index));
    lazySection("lists", async () => (await import("./lists.js")).renderLists());
    lazySection("comments", async () => (await import("./comments.js")).renderComments());
  });
  await Promise.allSettled([index, stats, shown]);
  // The first screen has its data (or its inline errors): tests and the benchmark wait for this.
  performance.mark("dashboard-ready");
  document.documentElement.dataset.ready = "true";
}

main();
