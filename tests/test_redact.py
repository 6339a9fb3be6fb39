"""services/redact.py: secrets, and the cut-off starts and ends of long ones, never survive."""

from __future__ import annotations

from services.redact import REDACTED, Redactor

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"  # 64 characters, like a Trakt client id


def test_a_secret_is_replaced_wherever_it_appears():
    redact = Redactor([KEY, "s3cret-token"])
    assert redact(f"key={KEY}; token s3cret-token and {KEY}") == f"key={REDACTED}; token {REDACTED} and {REDACTED}"


def test_the_first_or_last_twelve_characters_or_more_of_a_secret_are_replaced():
    redact = Redactor([KEY])
    assert redact(f"header is not a number: {KEY[:40]!r}") == f"header is not a number: '{REDACTED}'"
    assert redact(f"...{KEY[-12:]} end") == f"...{REDACTED} end"
    assert redact(f"start {KEY[:12]}") == f"start {REDACTED}"
    # Eleven characters are not enough to call it a piece of the key.
    assert redact(f"a {KEY[:11]} b") == f"a {KEY[:11]} b"


def test_a_secret_that_contains_another_is_replaced_whole():
    redact = Redactor(["abc", "abcdef"])
    assert redact("x abcdef y abc") == f"x {REDACTED} y {REDACTED}"


def test_no_secrets_leaves_text_alone():
    redact = Redactor(["", ""])
    assert not redact
    assert redact("nothing to hide") == "nothing to hide"
