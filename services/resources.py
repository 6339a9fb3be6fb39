"""Where the files that ship with the program live: `static/` and the bundled demo account.

In a checkout (or an editable install) they sit beside `server.py`; a regular install puts them
under `<prefix>/share/trakt-watch/` (see `data_files` in setup.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
_INSTALLED = Path(sys.prefix) / "share" / "trakt-watch"


def _first_existing(relative: str) -> Path:
    for base in (_CHECKOUT, _INSTALLED):
        candidate = base / relative
        if candidate.exists():
            return candidate
    return _CHECKOUT / relative


def static_dir() -> Path:
    return _first_existing("static")


def demo_data_dir() -> Path:
    return _first_existing("data/demo")
