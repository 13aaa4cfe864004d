"""The names a destination folder already holds, listed once per delivery run.

Why: a delivery looked at each final name (one ``stat``, a round trip and ~0.3 ms of the
loop's CPU) before writing it, so that ``skip-existing`` does not fetch an object whose
file is already there. A run of many objects into one folder now lists the folder once
(rclone lists the destination the same way) and looks only at names the listing holds.

Only what a stale listing cannot get wrong is taken from it: a name it does not hold. A
file that lands after the listing is still never replaced under ``skip-existing``: that
policy publishes with the plain rename (or a hard link), which refuses a taken name. The
first object of a folder still looks at its own name (a run of one object into a
partner's folder of 100,000 files does not list them all), and a folder with more than
``limit`` entries is not kept (each name is looked at, as before).
"""

from __future__ import annotations

import asyncio
import logging

import asyncssh

log = logging.getLogger(__name__)

#: Entries above which a folder's listing is dropped (names are looked at one by one).
LISTING_LIMIT = 100_000


class FolderNames:
    """Per run: each destination folder listed at most once, on its second object."""

    def __init__(self, limit: int = LISTING_LIMIT) -> None:
        self.limit = limit
        self._looked: set[str] = set()  # folders whose first object looked for itself
        self._listings: dict[str, asyncio.Future[frozenset[str] | None]] = {}

    async def absent(
        self, client: asyncssh.SFTPClient, folder: str, name: str, timeout: float
    ) -> bool:
        """True when the folder's listing shows ``name`` is not there; False when it is,
        or nothing is known (the caller looks at the name itself)."""
        if folder not in self._looked:
            self._looked.add(folder)
            return False  # the folder's first object: one look, no listing
        listing = self._listings.get(folder)
        if listing is None:
            listing = self._listings[folder] = asyncio.ensure_future(
                self._list(client, folder, timeout)
            )
        names = await asyncio.shield(listing)
        return names is not None and name not in names

    async def _list(
        self, client: asyncssh.SFTPClient, folder: str, timeout: float
    ) -> frozenset[str] | None:
        names: set[str] = set()
        try:
            async with asyncio.timeout(timeout):
                async for entry in client.scandir(folder):
                    filename = entry.filename
                    if isinstance(filename, bytes):
                        filename = filename.decode("utf-8", "surrogateescape")
                    names.add(filename)
                    if len(names) > self.limit:
                        return None
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return frozenset()  # made by the first write: nothing is there yet
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            log.debug("listing %s failed (%s): each name is looked at", folder, exc)
            return None
        return frozenset(names)

    def close(self) -> None:
        """Stop a listing still under way (the run is over)."""
        for listing in self._listings.values():
            listing.cancel()
