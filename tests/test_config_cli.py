"""Configuration (README "Configuration") and the command line (README "Command line")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRAKT_", "TMDB_", "PORT", "IMAGE_"))}
    return subprocess.run([sys.executable, str(ROOT / "server.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env={**clean, **(env or {})})


@pytest.fixture
def empty_env_file(tmp_path) -> Path:
    """So a developer's own ./.env never leaks into these tests."""
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def test_defaults_match_the_contract(empty_env_file):
    config = load_config({}, environ={}, env_file=empty_env_file)
    assert (config.host, config.port, config.data_dir) == ("127.0.0.1", 8888, Path("./data"))
    assert config.trakt_api_url == "https://api.trakt.tv"
    assert config.tmdb_api_url == "https://api.themoviedb.org/3"
    assert config.tmdb_image_url == "https://image.tmdb.org/t/p"
    assert (config.watching_poll_seconds, config.watching_tick_seconds) == (15, 5)
    assert (config.sync_interval_hours, config.image_index_refresh_hours) == (24, 24)
    assert config.image_proxy == "none" and config.admin_token == "" and config.image_base_url == ""


def test_environment_wins_over_env_file_and_flags_win_over_both(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nexport TRAKT_USERNAME="from-file"\nPORT=9000\nTMDB_API_KEY=\'k\' \n'
                        "IMAGE_PROXY=wsrv # inline comment\n")
    config = load_config({}, environ={"PORT": "9100"}, env_file=env_file)
    assert config.trakt_username == "from-file" and config.port == 9100
    assert config.tmdb_api_key == "k" and config.image_proxy == "wsrv"
    flagged = load_config({"port": "9200", "data_dir": tmp_path}, environ={"PORT": "9100"}, env_file=env_file)
    assert flagged.port == 9200 and flagged.data_dir == tmp_path


@pytest.mark.parametrize("variable,value,fragment", [
    ("PORT", "abc", "PORT must be a port number"),
    ("PORT", "70000", "PORT must be a port number"),
    ("IMAGE_PROXY", "cloudinary", "IMAGE_PROXY must be one of none, wsrv"),
    ("TRAKT_API_URL", "ftp://x", "TRAKT_API_URL must be an http:// or https:// URL"),
    ("WATCHING_POLL_SECONDS", "-1", "WATCHING_POLL_SECONDS must be"),
    ("SYNC_INTERVAL_HOURS", "daily", "SYNC_INTERVAL_HOURS must be a number"),
    ("TIMEZONE", "Mars/Olympus", "TIMEZONE must be an IANA time zone"),
    ("TRAKT_USERNAME", "a/b", "TRAKT_USERNAME must be a Trakt username"),
    ("TRUST_PROXY", "maybe", "TRUST_PROXY must be"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json"),
])
def test_bad_values_name_the_variable(variable, value, fragment, empty_env_file):
    with pytest.raises(ConfigError) as raised:
        load_config({}, environ={variable: value}, env_file=empty_env_file)
    assert fragment in str(raised.value)


def test_env_file_syntax_error_names_the_line(tmp_path):
    env_file = tmp_path / "bad.env"
    env_file.write_text("PORT=1\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"bad.env:2: expected KEY=VALUE"):
        load_config({}, environ={}, env_file=env_file)


def env_config(tmp_path: Path, text: str):
    env_file = tmp_path / "settings.env"
    env_file.write_text(text)
    return load_config({}, environ={}, env_file=env_file)


def test_env_file_quoted_value_with_an_inline_comment_loses_its_quotes_and_the_comment(tmp_path):
    config = env_config(tmp_path, 'TRAKT_USERNAME="sam-w" # the account\nADMIN_TOKEN=\'a b\'   # note\n')
    assert config.trakt_username == "sam-w"
    assert config.admin_token == "a b"


def test_env_file_unquoted_value_ends_at_a_spaced_hash_but_keeps_an_attached_one(tmp_path):
    config = env_config(tmp_path, "ADMIN_TOKEN=abc#def # comment\nTMDB_API_KEY= # only a comment\n")
    assert config.admin_token == "abc#def"
    assert config.tmdb_api_key == ""


def test_env_file_escapes_are_decoded_in_double_quotes_and_kept_in_single_quotes(tmp_path):
    config = env_config(tmp_path, 'ADMIN_TOKEN="say \\"hi\\"\\tnow"\nTMDB_API_KEY=\'it\\\'s\\t\'\n')
    assert config.admin_token == 'say "hi"\tnow'
    assert config.tmdb_api_key == "it's\\t"


def test_env_file_value_may_span_lines_in_double_quotes(tmp_path):
    config = env_config(tmp_path, 'ADMIN_TOKEN="line one\nline two"\nPORT=9001\n')
    assert config.admin_token == "line one\nline two"
    assert config.port == 9001


def test_env_file_bad_value_names_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as raised:
        env_config(tmp_path, "# settings\n\nTRAKT_USERNAME=sam\n\n\nPORT=ninety # oops\n")
    assert str(raised.value) == (f"{tmp_path / 'settings.env'}:6: PORT must be a port number between 1 and 65535, "
                                 "got 'ninety'")


def test_env_file_syntax_error_after_blank_lines_names_its_own_line(tmp_path):
    with pytest.raises(ConfigError, match=r"settings.env:4: expected KEY=VALUE, got 'PORT'"):
        env_config(tmp_path, "HOST=0.0.0.0\n\n\nPORT\n")


def test_cli_configuration_error_is_one_line_and_exit_2(tmp_path):
    result = run_cli("serve", "--data-dir", str(tmp_path), env={"PORT": "abc"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "trakt-watch: configuration error: PORT must be a port number between 1 and 65535, got 'abc'"
    missing = run_cli("--env-file", str(tmp_path / "nope.env"), "serve")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_cli_demo_scale_is_validated(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path / "d"), "--scale", "500")
    assert result.returncode == 2 and "must be between 1 and 200" in result.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    refused = run_cli("demo", "--out", str(tmp_path / "taken"))
    assert refused.returncode == 2 and "refusing to overwrite" in refused.stderr
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_cli_sync_without_key_is_a_configuration_error(tmp_path):
    result = run_cli("sync", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 2
    assert "TRAKT_API_KEY" in result.stderr


def test_serve_on_a_busy_port_exits_1_with_a_clear_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--demo", "--port", str(port), "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
