// Entry point: wires every section of the dashboard. All sections load in parallel and each
// shows its own inline error, so one failing endpoint never blanks the page.

import { renderProfile } from "./profile.js";
import { NowWatching } from "./watching.js";
import { renderStats } from "./stats.js";
import { renderCollections } from "./collections.js";
import { renderLists } from "./lists.js";
import { renderComments } from "./comments.js";
import { setupSearch } from "./search.js";
import { renderUpNext } from "./upnext.js";

async function main() {
  new NowWatching().start();
  setupSearch();
  const index = renderProfile();
  await Promise.allSettled([
    index,
    renderStats(),
    renderCollections(index),
    renderLists(),
    renderComments(),
    renderUpNext(index),
  ]);
  // Every section has its first data (or its inline error): tests and the benchmark wait for this.
  performance.mark("dashboard-ready");
  document.documentElement.dataset.ready = "true";
}

main();
