"""Small file helpers several test modules share."""

from __future__ import annotations

import shutil
from pathlib import Path


def touch(root: Path, relative: str, data: bytes = b"img") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def copy_demo(demo_account: Path, target: Path) -> Path:
    shutil.copytree(demo_account, target)
    return target
