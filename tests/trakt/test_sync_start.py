"""The sync service starts whatever state the data folder is in (README "Security and reliability")."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt.sync import SyncService


@pytest.mark.gen_test(timeout=10)
async def test_an_unreadable_data_folder_does_not_stop_the_sync_service_from_starting(tmp_path, monkeypatch, caplog):
    config = replace(Config(), trakt_api_key="key", trakt_username="someone", data_dir=tmp_path / "data",
                     sync_interval_hours=0, sync_check_minutes=0)
    (tmp_path / "data" / "snapshots").mkdir(parents=True)
    real_is_dir = Path.is_dir

    def refused(path: Path) -> bool:  # what a folder of another user, mode 0700, answers (tests run as root)
        if str(path).startswith(str(config.data_dir)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_is_dir(path)

    monkeypatch.setattr(Path, "is_dir", refused)
    service = SyncService(config, DataFolder(config.data_dir))
    with caplog.at_level(logging.WARNING):
        await service.start()  # raised PermissionError before: the whole server failed to start
    await service.stop()
    assert "cannot read the sync state" in caplog.text and "Permission denied" in caplog.text
