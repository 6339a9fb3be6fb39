"""Secret values out of text: what the log filter and the sync report both apply (README "Security").

A secret is replaced by `[REDACTED]`, and so is a long enough piece of one that starts or ends it:
messages often quote an upstream value cut to a few dozen characters (`raw[:40]`), and such a cut
still leaks most of a 64-character key.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"
MIN_FRAGMENT = 12  # a secret's first or last characters, this many or more, are redacted too


class Redactor:
    """`redactor(text)` is `text` with every secret (or a cut-off start or end of one) replaced."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        if not self._secrets:
            return text
        spans = [span for secret in self._secrets for span in _spans(text, secret)]
        if not spans:
            return text
        pieces, end = [], 0
        for start, stop in _merged(spans):
            pieces += [text[end:start], REDACTED]
            end = stop
        pieces.append(text[end:])
        return "".join(pieces)


def _spans(text: str, secret: str) -> list[tuple[int, int]]:
    """Where `secret` is in `text`, whole or as a start or end of at least MIN_FRAGMENT characters."""
    length = len(secret)
    if length <= MIN_FRAGMENT:
        return [(p, p + length) for p in _find_all(text, secret)]
    spans = []
    for p in _find_all(text, secret[:MIN_FRAGMENT]):  # a start, as long as it goes on matching
        stop = p + MIN_FRAGMENT
        while stop < len(text) and stop - p < length and text[stop] == secret[stop - p]:
            stop += 1
        spans.append((p, stop))
    for p in _find_all(text, secret[-MIN_FRAGMENT:]):  # an end, as far back as it matches
        start, stop = p, p + MIN_FRAGMENT
        while start > 0 and stop - start < length and text[start - 1] == secret[length - (stop - start) - 1]:
            start -= 1
        spans.append((start, stop))
    return spans


def _find_all(text: str, needle: str) -> list[int]:
    found, p = [], text.find(needle)
    while p >= 0:
        found.append(p)
        p = text.find(needle, p + 1)
    return found


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged
