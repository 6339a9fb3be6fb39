"""Where a running sync is (`SyncProgress`), and how `trakt-watch sync` shows it on a terminal.

The bar is tqdm's. While it is shown, `logging_redirect_tqdm` routes log records through
`tqdm.write`, which clears the bar, prints the record on its own line and redraws the bar below
it, so a warning never lands on the bar's line (README "Sync").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


@dataclass(frozen=True)
class SyncProgress:
    """Where a running sync is: `files_done` of `files_total` (grows once the lists are known)."""

    stage: str  # fetch | write | images | done
    files_done: int
    files_total: int
    requests: int
    items: int
    current: str = ""


class _Bar(tqdm):
    monitor_interval = 0  # no monitor thread: the bar is redrawn by the sync's own progress calls


BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}]{postfix}"


class TerminalProgress:
    """The sync's progress bar on a terminal; a context manager, and the sync's progress callback.

    Leaving the context removes the bar (the command prints its summary line after it).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bar: _Bar | None = None
        self._stage = ""
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> TerminalProgress:
        self._bar = self._exit.enter_context(
            _Bar(total=None, file=self.stream, desc="sync", unit="files", bar_format=BAR_FORMAT,
                 leave=False, dynamic_ncols=True, mininterval=0.1))
        self._exit.enter_context(logging_redirect_tqdm(tqdm_class=_Bar))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._exit.close()
        self._bar = None

    def __call__(self, p: SyncProgress) -> None:
        bar = self._bar
        if bar is None:
            return
        if p.stage == "images" and self._stage != "images":
            bar.reset(total=p.files_total)  # the bar now counts images, from 0
            bar.unit = "images"
        self._stage = p.stage
        if bar.total != p.files_total:
            bar.total = p.files_total
        bar.set_postfix_str(f"{p.requests} requests, {p.items:,} items, {p.stage}"
                            + (f": {p.current}" if p.current else ""), refresh=False)
        bar.update(p.files_done - bar.n)  # redraws at most every `mininterval`
