"""A gzip bomb for the fake upstreams: a small gzip body that inflates to a huge valid JSON value.

    body = gzip_bomb()   # about 1.2 MB that inflates to 1,200 MiB: `[` + spaces + `]`, valid JSON

Built once per process (zlib needs a few seconds for 1.2 GB) and served with
`Content-Encoding: gzip`, so the client's HTTP library inflates it while it reads.
"""

from __future__ import annotations

import functools
import zlib

BOMB_MIB = 1200  # the size seen in an attack test: 1.2 MB of gzip inflating to 1.2 GB


@functools.lru_cache(maxsize=4)
def gzip_bomb(inflated_mib: int = BOMB_MIB) -> bytes:
    """gzip of `[` + `inflated_mib` MiB of spaces + `]` (a JSON array with nothing in it)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: a gzip header
    spaces = b" " * (1 << 20)
    parts = [compressor.compress(b"[")]
    parts += [compressor.compress(spaces) for _ in range(inflated_mib)]
    parts += [compressor.compress(b"]"), compressor.flush()]
    return b"".join(parts)
