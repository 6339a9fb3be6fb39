"""Security headers of the dashboard: a Content-Security-Policy that allows only this server and
the configured image hosts."""

from __future__ import annotations

from urllib.parse import urlsplit

from services.config import Config
from services.images import urls

TRAKT_AVATAR_ORIGINS = ("https://*.trakt.tv", "https://secure.gravatar.com")


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def image_origins(config: Config) -> list[str]:
    """Where the page may load pictures from besides itself: the CDN, the proxy, TMDB backdrops."""
    # Trakt serves avatars from its own image hosts (or Gravatar): the profile header shows them.
    origins = [_origin(config.image_base_url), _origin(config.tmdb_image_url), *TRAKT_AVATAR_ORIGINS]
    if config.image_proxy == "wsrv":
        origins.append(_origin(urls.WSRV))
    unique: list[str] = []
    for origin in origins:
        if origin and origin not in unique:
            unique.append(origin)
    return unique


def content_security_policy(config: Config) -> str:
    """The CSP header value: scripts, styles, fonts and connections only from 'self' (which covers
    the same-origin WebSocket), images also from `image_origins`, never framed."""
    images = " ".join(["'self'", "data:", *image_origins(config)])
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {images}",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "media-src 'none'",
        "object-src 'none'",
        "worker-src 'none'",
        "frame-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def dashboard_headers(config: Config) -> dict[str, str]:
    """Every header `GET /` and `/static/*` carry."""
    return {
        "Content-Security-Policy": content_security_policy(config),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
