// Entry point: wires every section of the dashboard. Each section loads on its own and shows
// its own inline error, so one failing endpoint never blanks the page.

import { renderProfile } from "./profile.js";
import { NowWatching } from "./watching.js";
import { renderStats } from "./stats.js";
import { renderCollections } from "./collections.js";
import { renderLists } from "./lists.js";
import { renderComments } from "./comments.js";
import { setupSearch } from "./search.js";

async function main() {
  new NowWatching().start();
  setupSearch();
  const sections = [renderStats(), renderLists(), renderComments()];
  // The index carries the per-file counts the tabs show; collections render even if it failed.
  const index = await renderProfile();
  sections.push(renderCollections(index));
  await Promise.allSettled(sections);
  // Every section has its first data (or its inline error): tests and the benchmark wait for this.
  performance.mark("dashboard-ready");
  document.documentElement.dataset.ready = "true";
}

main();
