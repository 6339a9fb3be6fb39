// The Trakt sign-in in the page header: when /healthz says the sign-in was lost (Trakt refused to
// refresh it) or its token file is refused (others can read it), the header says what the server
// says — "sign in again: trakt-watch login", "chmod 600 …" — until the next check finds it fixed
// (README "Signing in"). Nothing is shown otherwise.

import { getJSON } from "./api.js";

const CHECK_MS = 60000;
// States of the sign-in that only the person can fix (/healthz `sign_in.state`).
const NEEDS_YOU = new Set(["lost", "refused"]);

function notice() {
  let element = document.getElementById("signin-notice");
  if (!element) {
    element = document.createElement("p");
    element.id = "signin-notice";
    element.className = "signin-notice";
    element.setAttribute("role", "status");
    element.hidden = true;
    // Below the top bar of the header when there is one (the header's layout may change).
    const topbar = document.querySelector("header .topbar");
    if (topbar) topbar.after(element);
    else (document.querySelector("header") || document.body).prepend(element);
  }
  return element;
}

async function check() {
  let health;
  try {
    health = await getJSON("/healthz");
  } catch {
    return; // unreachable, or 503 (nothing served): keep what is shown until the next check
  }
  const signIn = health && health.sign_in;
  const element = notice();
  const lost = Boolean(signIn && NEEDS_YOU.has(signIn.state) && signIn.message);
  element.textContent = lost ? `Trakt: ${signIn.message}` : "";
  element.hidden = !lost;
}

// Imported by app.js for this: check now and every minute.
check();
setInterval(check, CHECK_MS);
