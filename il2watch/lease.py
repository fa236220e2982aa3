"""One worker at a time: the poller lease, held while polling, renewed by a heartbeat, taken over when it lapses.

Each backend keeps the lease with its own primitive (``Library.acquire_lease`` and friends): on SQLite a row
renewed by the heartbeat, taken over when it lapses or when its holder's process on this host is gone; on
PostgreSQL a session advisory lock, which a killed process loses at once. Workers on separate disks each
have their own SQLite file and cannot see each other's lease: that is what PostgreSQL is for.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from il2watch.library import LEASE_NAME, LeaseInfo, Library, LibraryError

__all__ = ["LEASE_NAME", "HeldLease", "Lease", "LeaseInfo", "holder_is_dead", "make_holder_id"]

log = logging.getLogger("il2watch.lease")


def make_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def holder_is_dead(holder: str) -> bool:
    """True when the holder ran on this host and its process is gone (killed, crashed): no need to wait."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    def __init__(
        self,
        library: Library,
        holder: str,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
        name: str = LEASE_NAME,
    ):
        self.library, self.holder, self.ttl, self.name = library, holder, ttl, name
        self._clock = clock

    def acquire(self) -> bool:
        """Take the lease if it is free, lapsed, already ours, or its holder is gone."""
        return self.library.acquire_lease(self.name, self.holder, now=self._clock(), ttl=self.ttl)

    def renew(self) -> bool:
        """Heartbeat: extend our lease; False when another worker has taken it over."""
        return self.library.renew_lease(self.name, self.holder, now=self._clock(), ttl=self.ttl)

    def release(self) -> None:
        self.library.release_lease(self.name, self.holder)

    def info(self) -> LeaseInfo | None:
        """Who holds the lease now, if anyone does."""
        return self.library.lease_info(self.name, now=self._clock())


def live_holder(library: Library, *, clock: Callable[[], float] = time.time, name: str = LEASE_NAME) -> str:
    """Who holds the lease and is alive: "" when it is free, lapsed, or held by a dead process on this host."""
    info = Lease(library, "", clock=clock, name=name).info()
    return info.holder if info is not None and not holder_is_dead(info.holder) else ""


def lease_problem(
    library: Library, holder: str, *, clock: Callable[[], float] = time.time, name: str = LEASE_NAME
) -> str:
    """Why ``holder`` must stop posting ("" while it still holds the lease): another worker took it over,
    or its renewals failed until it expired."""
    try:
        return library.lease_problem(name, holder, now=clock())
    except LibraryError as error:
        return f"the poller lease cannot be read ({error}), so another worker may be polling"


class HeldLease:
    """Hold the lease for the length of a ``with`` block, renewing it from a thread of its own."""

    def __init__(self, db_path: Path | str, holder: str, ttl: float):
        self.db_path, self.holder, self.ttl = db_path, holder, ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.other: LeaseInfo | None = None

    def __enter__(self) -> bool:
        with Library(self.db_path) as library:
            lease = Lease(library, self.holder, ttl=self.ttl)
            if not lease.acquire():
                self.other = lease.info()
                return False
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        with Library(self.db_path) as library:
            lease = Lease(library, self.holder, ttl=self.ttl)
            while not self._stop.wait(self.ttl / 3):
                try:
                    if not lease.renew():
                        log.warning(
                            "lost the poller lease; the poll stops posting (%s)", lease_problem(library, self.holder)
                        )
                        return
                except LibraryError as error:
                    # the poll checks the lease before every post and stops once it has expired
                    log.warning("could not renew the poller lease: %s", error)

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        with Library(self.db_path) as library:
            Lease(library, self.holder, ttl=self.ttl).release()
