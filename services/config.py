"""Configuration: command-line flags, then the environment, then a `.env` file.

Every name is fixed by README "Configuration". A bad value stops start-up with one line that names
the variable (`ConfigError`), never a traceback.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv.parser import parse_stream

from services.watching.demo_schedule import DEFAULT_SCHEDULE, parse_schedule


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

IMAGE_PROXIES = ("none", "wsrv")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Config:
    trakt_api_key: str = ""
    trakt_username: str = ""
    tmdb_api_key: str = ""
    trakt_api_url: str = "https://api.trakt.tv"
    tmdb_api_url: str = "https://api.themoviedb.org/3"
    tmdb_image_url: str = "https://image.tmdb.org/t/p"
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 8888
    image_base_url: str = ""
    image_proxy: str = "none"
    admin_token: str = field(default="", repr=False)
    watching_poll_seconds: float = 15.0
    watching_tick_seconds: float = 5.0
    watching_max_clients: int = 500  # open /ws/watching connections; more are closed with 1013
    sync_interval_hours: float = 24.0
    sync_check_minutes: float = 15.0  # the cheap incremental check (README "Sync"); 0 = off
    sync_full_interval_hours: float = 168.0  # a full re-mirror at most this far apart; 0 = only on demand
    image_index_refresh_hours: float = 24.0
    timezone: str = ""
    trakt_client_secret: str = field(default="", repr=False)  # OAuth only (README "Signing in")
    calendar_token: str = field(default="", repr=False)  # /calendar.ics?token=… (empty: the feed is off)
    trakt_auth_url: str = "https://auth.trakt.tv"
    # Beyond the contract's table: operational knobs a self-hoster may need.
    trust_proxy: bool = False
    log_format: str = "text"
    log_level: str = "INFO"
    allowed_origins: tuple[str, ...] = ()
    # GET requests per 5 minutes: Trakt allows 500 since September 2026 (README "Configuration");
    # 400 leaves headroom for OAuth requests and another client using the same key.
    trakt_rate_limit: int = 400
    sync_timeout_minutes: float = 60.0
    data_check_seconds: float = 5.0  # how often the store looks for a new snapshot on disk
    demo: bool = False  # --demo: serve the bundled demo account whatever else is there
    # What the demo account "watches": kind:seconds phases (see services/demo_schedule.py).
    demo_watching_schedule: str = DEFAULT_SCHEDULE

    @property
    def has_trakt(self) -> bool:
        return bool(self.trakt_api_key and self.trakt_username)

    def secrets(self) -> list[str]:
        """Values that must never appear in a response or a log line."""
        return [s for s in (self.trakt_api_key, self.tmdb_api_key, self.admin_token, self.trakt_client_secret,
                            self.calendar_token) if s]


# variable name -> (Config field, parser)
def _parse_str(name: str, raw: str) -> str:
    return raw.strip()


def _parse_port(name: str, raw: str) -> int:
    try:
        port = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a port number between 1 and 65535, got {raw!r}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a port number between 1 and 65535, got {raw!r}")
    return port


def _positive_number(minimum: float, allow_zero: bool = False) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        if allow_zero and value == 0:
            return 0.0
        if value < minimum:
            hint = f"0 (off) or at least {minimum:g}" if allow_zero else f"at least {minimum:g}"
            raise ConfigError(f"{name} must be {hint}, got {raw!r}")
        return value

    return parse


def _parse_int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
        return value

    return parse


def _parse_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return value


def _parse_optional_url(name: str, raw: str) -> str:
    return _parse_url(name, raw) if raw.strip() else ""


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1/true/yes or 0/false/no, got {raw!r}")


def _parse_host(name: str, raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise ConfigError(f"{name} must be a host name or IP address, got {raw!r}")
    return value


def _parse_timezone(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be an IANA time zone such as Europe/Berlin, got {raw!r}") from None
    return value


def _parse_username(name: str, raw: str) -> str:
    value = raw.strip()
    # Trakt slugs are letters, digits, '-', '_' and '.'; anything else would be spliced into a URL.
    if value and not all(c.isalnum() or c in "-_." for c in value):
        raise ConfigError(f"{name} must be a Trakt username (letters, digits, '-', '_', '.'), got {raw!r}")
    return value


def _parse_origins(name: str, raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not urlsplit(origin).scheme:
            raise ConfigError(f"{name} must be a comma-separated list of origins like https://tv.example.org, got {raw!r}")
    return origins


def _parse_log_level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{name} must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return value


def _parse_demo_schedule(name: str, raw: str) -> str:
    value = raw.strip()
    try:
        parse_schedule(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must look like 'episode:1800,idle:600,movie:3600': {exc}") from None
    return value


VARIABLES: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "TRAKT_API_KEY": ("trakt_api_key", _parse_str),
    "TRAKT_USERNAME": ("trakt_username", _parse_username),
    "TMDB_API_KEY": ("tmdb_api_key", _parse_str),
    "TRAKT_API_URL": ("trakt_api_url", _parse_url),
    "TMDB_API_URL": ("tmdb_api_url", _parse_url),
    "TMDB_IMAGE_URL": ("tmdb_image_url", _parse_url),
    "DATA_DIR": ("data_dir", lambda name, raw: Path(raw.strip()).expanduser()),
    "HOST": ("host", _parse_host),
    "PORT": ("port", _parse_port),
    "IMAGE_BASE_URL": ("image_base_url", _parse_optional_url),
    "IMAGE_PROXY": ("image_proxy", _choice(IMAGE_PROXIES)),
    "ADMIN_TOKEN": ("admin_token", _parse_str),
    # Below 1 s only makes sense against a fake Trakt (tests); Trakt's limit is 500 GETs / 5 min.
    "WATCHING_POLL_SECONDS": ("watching_poll_seconds", _positive_number(0.05)),
    "WATCHING_TICK_SECONDS": ("watching_tick_seconds", _positive_number(0.1)),
    "WATCHING_MAX_CLIENTS": ("watching_max_clients", _parse_int_at_least(1)),
    "SYNC_INTERVAL_HOURS": ("sync_interval_hours", _positive_number(0.01, allow_zero=True)),
    # Below a minute only makes sense against a fake Trakt (tests).
    "SYNC_CHECK_MINUTES": ("sync_check_minutes", _positive_number(0.001, allow_zero=True)),
    "SYNC_FULL_INTERVAL_HOURS": ("sync_full_interval_hours", _positive_number(0.0001, allow_zero=True)),
    "IMAGE_INDEX_REFRESH_HOURS": ("image_index_refresh_hours", _positive_number(0.0001, allow_zero=True)),
    "TIMEZONE": ("timezone", _parse_timezone),
    "TRAKT_CLIENT_SECRET": ("trakt_client_secret", _parse_str),
    "CALENDAR_TOKEN": ("calendar_token", _parse_str),
    "TRAKT_AUTH_URL": ("trakt_auth_url", _parse_url),
    "TRUST_PROXY": ("trust_proxy", _parse_bool),
    "LOG_FORMAT": ("log_format", _choice(LOG_FORMATS)),
    "LOG_LEVEL": ("log_level", _parse_log_level),
    "ALLOWED_ORIGINS": ("allowed_origins", _parse_origins),
    "TRAKT_RATE_LIMIT": ("trakt_rate_limit", _parse_int_at_least(1)),
    "SYNC_TIMEOUT_MINUTES": ("sync_timeout_minutes", _positive_number(0.01)),
    "DATA_CHECK_SECONDS": ("data_check_seconds", _positive_number(0.05)),
    "DEMO_WATCHING_SCHEDULE": ("demo_watching_schedule", _parse_demo_schedule),
}

_FIELD_TO_VARIABLE = {field_name: var for var, (field_name, _) in VARIABLES.items()}


def read_env_file(path: Path) -> dict[str, tuple[str, int]]:
    """Parse a `.env` file with python-dotenv's parser (quotes, `export`, inline `#` comments and
    escapes as python-dotenv reads them; no `${VAR}` expansion): {KEY: (value, line number)}."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror}") from None
    values: dict[str, tuple[str, int]] = {}
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # A binding's text starts with the blank lines before it; its own line comes after them.
        line = binding.original.line + original[:len(original) - len(original.lstrip())].count("\n")
        if binding.key is None and not binding.error:
            continue  # a blank or comment line
        if binding.error or binding.value is None or not _ENV_KEY.match(binding.key or ""):
            raise ConfigError(f"{path}:{line}: expected KEY=VALUE, got {original.strip()!r}")
        values[binding.key] = (binding.value, line)
    return values


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Config:
    """Build the configuration.

    `overrides` are command-line values keyed by Config field name (None means "not given").
    The environment wins over the `.env` file (default: `./.env`), flags win over both.
    """
    environ = os.environ if environ is None else environ
    explicit_env_file = env_file is not None
    env_file = env_file if explicit_env_file else Path(".env")
    if explicit_env_file and not env_file.is_file():
        raise ConfigError(f"--env-file {env_file} does not exist")
    file_values = read_env_file(env_file)

    values: dict[str, Any] = {}
    for variable, (field_name, parse) in VARIABLES.items():
        raw = environ.get(variable)
        if raw is not None:
            values[field_name] = parse(variable, raw)
        elif variable in file_values:
            raw, line = file_values[variable]
            try:
                values[field_name] = parse(variable, raw)
            except ConfigError as exc:
                raise ConfigError(f"{env_file}:{line}: {exc}") from None

    known = {f.name for f in fields(Config)}
    for field_name, value in (overrides or {}).items():
        if value is None:
            continue
        if field_name not in known:
            raise ConfigError(f"unknown setting {field_name!r}")
        variable = _FIELD_TO_VARIABLE.get(field_name)
        if variable and isinstance(value, str) and field_name != "data_dir":
            value = VARIABLES[variable][1](f"--{field_name.replace('_', '-')}", value)
        values[field_name] = Path(value) if field_name == "data_dir" else value
    if "port" in values and not isinstance(values["port"], int):
        values["port"] = _parse_port("--port", str(values["port"]))
    return replace(Config(), **values)


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (also IPv4-mapped loopback)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback
