"""Generated artwork for the demo account: small deterministic SVG posters and backdrops.

Each picture is a gradient with a few shapes in colours derived from the title's TMDB id, and
the title in large type, so the dashboard shows something recognisable with no network. The
`width`/`height` attributes are explicit so browsers report a natural size for the <img>.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

POSTER_SIZE = (500, 750)
BACKDROP_SIZE = (1280, 720)

_FONT = "Georgia,'Times New Roman',serif"


def _palette(seed: int) -> tuple[str, str, str]:
    """Three related colours (dark top, darker bottom, bright accent) chosen by the id."""
    mixed = (seed * 2654435761) & 0xFFFFFFFF
    hue = mixed % 360
    accent_hue = (hue + 150 + (mixed >> 9) % 60) % 360
    saturation = 35 + (mixed >> 17) % 30
    return (f"hsl({hue},{saturation}%,34%)", f"hsl({(hue + 25) % 360},{saturation}%,12%)",
            f"hsl({accent_hue},70%,62%)")


def _wrap_title(title: str, max_chars: int, max_lines: int) -> list[str]:
    """Greedy word wrap; the last line is cut with an ellipsis when the title is too long."""
    lines: list[str] = []
    current = ""
    for word in title.split():
        candidate = f"{current} {word}".strip()
        if len(candidate) <= max_chars or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max_chars - 1].rstrip() + "…"
    return lines


def _shapes(seed: int, width: int, height: int, accent: str) -> str:
    """A sun-like disc and a ridge of hills, placed by the id."""
    mixed = (seed * 40503 + 12345) & 0xFFFFFF
    cx = width * (20 + mixed % 60) // 100
    cy = height * (18 + (mixed >> 6) % 22) // 100
    radius = min(width, height) * (12 + (mixed >> 12) % 14) // 100
    base = height * 62 // 100
    peaks = []
    steps = 6
    for i in range(steps + 1):
        x = width * i // steps
        lift = height * (4 + ((mixed >> (i * 3)) % 16)) // 100
        peaks.append(f"{x},{base - lift}")
    ridge = " ".join([f"0,{height}", *peaks, f"{width},{height}"])
    return (f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{accent}" fill-opacity=".55"/>'
            f'<polygon points="{ridge}" fill="#000" fill-opacity=".28"/>')


def _svg(width: int, height: int, seed: int, body: str) -> str:
    top, bottom, accent = _palette(seed)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        '</linearGradient></defs>'
        f'<rect width="{width}" height="{height}" fill="url(#g)"/>'
        f"{_shapes(seed, width, height, accent)}{body}</svg>\n"
    )


def poster_svg(title: str, year: int | None, seed: int, label: str) -> str:
    """A 500x750 poster: title centred in the lower third, year and label below."""
    width, height = POSTER_SIZE
    lines = _wrap_title(title, 16, 3)
    size = 50 if max(len(line) for line in lines) <= 12 else 40
    first_y = 600 - (len(lines) - 1) * (size + 8) // 2
    text = "".join(
        f'<tspan x="{width // 2}" y="{first_y + i * (size + 8)}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    caption = escape(" · ".join(part for part in (str(year) if year else "", label) if part))
    body = (
        f'<rect y="{height - 250}" width="{width}" height="250" fill="#000" fill-opacity=".35"/>'
        f'<text font-family="{_FONT}" font-size="{size}" font-weight="bold" fill="#fff" '
        f'text-anchor="middle">{text}</text>'
        f'<text x="{width // 2}" y="{height - 36}" font-family="{_FONT}" font-size="24" '
        f'fill="#fff" fill-opacity=".8" text-anchor="middle">{caption}</text>'
    )
    return _svg(width, height, seed, body)


def backdrop_svg(title: str, year: int | None, seed: int) -> str:
    """A 1280x720 backdrop: wide scene with the title bottom-left."""
    width, height = BACKDROP_SIZE
    (line,) = _wrap_title(title, 34, 1)
    caption = escape(str(year) if year else "")
    body = (
        f'<rect y="{height - 200}" width="{width}" height="200" fill="#000" fill-opacity=".4"/>'
        f'<text x="64" y="{height - 90}" font-family="{_FONT}" font-size="64" font-weight="bold" '
        f'fill="#fff">{escape(line)}</text>'
        f'<text x="66" y="{height - 44}" font-family="{_FONT}" font-size="28" fill="#fff" '
        f'fill-opacity=".75">{caption}</text>'
    )
    return _svg(width, height, seed, body)
