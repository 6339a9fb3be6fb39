"""The dashboard header says when the Trakt sign-in was lost, as /healthz does (README "Signing in")."""

from __future__ import annotations

import json
import os

from tests.helpers.browser import start_server

SIGN_IN_AGAIN = "sign in again: trakt-watch login"


def test_a_lost_sign_in_shows_sign_in_again_in_the_header(tmp_path, open_page):
    data = tmp_path / "data"
    (data / "auth").mkdir(parents=True, mode=0o700)
    token = data / "auth" / "token.json"
    # What the server writes when Trakt refuses the refresh token (invalid_grant).
    token.write_text(json.dumps({"state": "lost", "username": "sam", "slug": "sam",
                                 "lost_at": "2026-12-01T20:00:00Z",
                                 "reason": "Trakt refused the refresh token (400 invalid_grant)"}))
    os.chmod(token, 0o600)
    server = start_server(tmp_path / "work", args=["--demo", "--data-dir", str(data)], env={})
    try:
        assert server.get_json("/healthz")["sign_in"]["message"] == SIGN_IN_AGAIN
        watched = open_page(server.url)
        notice = watched.page.locator("header #signin-notice")
        notice.wait_for(state="visible")
        assert notice.inner_text() == f"Trakt: {SIGN_IN_AGAIN}"
        watched.assert_clean()
    finally:
        server.stop()


def test_signed_out_the_header_shows_no_sign_in_notice(dashboard, open_page):
    page = open_page(dashboard.url).page
    page.wait_for_function("() => { const n = document.getElementById('signin-notice'); return n && n.hidden; }")
    assert not page.locator("#signin-notice").is_visible()


def test_a_token_file_others_can_read_shows_its_fix_in_the_header(tmp_path, open_page):
    data = tmp_path / "data"
    (data / "auth").mkdir(parents=True, mode=0o700)
    token = data / "auth" / "token.json"
    token.write_text(json.dumps({"access_token": "a" * 64, "refresh_token": "r" * 64, "created_at": 1764000000,
                                 "expires_in": 86400 * 90, "username": "sam", "slug": "sam"}))
    os.chmod(token, 0o644)  # readable by others: refused, never used
    server = start_server(tmp_path / "work", args=["--demo", "--data-dir", str(data)], env={})
    try:
        assert server.get_json("/healthz")["sign_in"]["state"] == "refused"
        watched = open_page(server.url)
        notice = watched.page.locator("header #signin-notice")
        notice.wait_for(state="visible")
        text = notice.inner_text()
        assert f"chmod 600 {token.resolve()}" in text
        assert "a" * 64 not in text and "r" * 64 not in text
        watched.assert_clean()
    finally:
        server.stop()
