// Live data: after a sync commits, the server sends {"type": "data", "data": {"changed": [...],
// "last_updated"}} on /ws/watching (README "WebSocket protocol"); this re-runs the loaders of the
// sections that show a changed collection, without a page reload.
//
// The socket module (watching.js) re-dispatches every server message as a
// `trakt-watch:message` DOM event on `document`; app.js passes the sections:
//   startLiveData([{ collections: ["history", ...], containers: ["history-body", ...], load: fn }])
// `containers` are emptied before `load()` runs again (loaders that append would otherwise add a
// second copy). A refresh asked for while one runs is done once more when it ends.

export const MESSAGE_EVENT = "trakt-watch:message";

export function startLiveData(sections) {
  const running = new Map(); // section -> {again: bool}
  const refresh = async (section) => {
    const state = running.get(section);
    if (state) {
      state.again = true;
      return;
    }
    running.set(section, { again: false });
    try {
      do {
        running.get(section).again = false;
        for (const id of section.containers || []) {
          const el = document.getElementById(id);
          if (el) el.replaceChildren();
        }
        try {
          await section.load();
        } catch {
          // Each section shows its own inline error; the next data message tries again.
        }
      } while (running.get(section).again);
    } finally {
      running.delete(section);
    }
  };
  document.addEventListener(MESSAGE_EVENT, (event) => {
    const message = event.detail;
    if (!message || message.type !== "data" || !Array.isArray(message.data?.changed)) return;
    const changed = new Set(message.data.changed);
    for (const section of sections) {
      if (section.collections.some((name) => changed.has(name))) refresh(section);
    }
    document.documentElement.dataset.lastDataUpdate = message.data.last_updated || "";
  });
}
