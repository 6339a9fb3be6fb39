"""One aiohttp session per API client: opened by `start()`, closed by `close()`, or both around
`async with client:` (README "Sync", "Images"). The client says how its session is made."""

from __future__ import annotations

from typing import Self

import aiohttp


class SessionOwner:
    """Base of the Trakt, OAuth and TMDB clients; subclasses implement `_new_session()`."""

    _session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    async def start(self) -> None:
        """Open the HTTP session (idempotent)."""
        if self._session is None or self._session.closed:
            self._session = self._new_session()

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
