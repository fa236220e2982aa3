"""One worker at a time: a lease row in the library, renewed by a heartbeat, taken over when it lapses.

Each change is a single SQL statement, so two processes racing for the lease cannot both win.
Workers on separate disks cannot see each other's lease; there the channel-history check in
``deliver`` keeps doubles out, and the docs say to run one worker.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from il2watch.library import Library, LibraryError, utcnow

log = logging.getLogger("il2watch.lease")

LEASE_NAME = "poller"


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


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    expires_in: float  # seconds; negative when lapsed


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
        """Take the lease if it is free, lapsed, already ours, or held by a dead process on this host."""
        now = self._clock()
        current = self.library.db.execute("select holder from lease where name = ?", [self.name]).fetchone()
        if current and current[0] and current[0] != self.holder and holder_is_dead(current[0]):
            with self.library.transaction():
                self.library.db.conn.execute(
                    "update lease set expires_at = 0 where name = ? and holder = ?", [self.name, current[0]]
                )
        with self.library.transaction():
            self.library.db.execute(
                "insert or ignore into lease (name, holder, acquired_at, heartbeat_at, expires_at) "
                "values (?, '', '', 0, 0)",
                [self.name],
            )
            cursor = self.library.db.conn.execute(
                "update lease set holder = ?, acquired_at = case when holder = ? then acquired_at else ? end, "
                "heartbeat_at = ?, expires_at = ? where name = ? and (holder = ? or holder = '' or expires_at < ?)",
                [self.holder, self.holder, utcnow(), now, now + self.ttl, self.name, self.holder, now],
            )
            return cursor.rowcount == 1

    def renew(self) -> bool:
        """Heartbeat: extend our lease; False when another worker has taken it over."""
        now = self._clock()
        with self.library.transaction():
            cursor = self.library.db.conn.execute(
                "update lease set heartbeat_at = ?, expires_at = ? where name = ? and holder = ?",
                [now, now + self.ttl, self.name, self.holder],
            )
            return cursor.rowcount == 1

    def release(self) -> None:
        with self.library.transaction():
            self.library.db.conn.execute(
                "update lease set holder = '', expires_at = 0 where name = ? and holder = ?", [self.name, self.holder]
            )

    def info(self) -> LeaseInfo | None:
        """Who holds the lease now, if anyone does."""
        row = self.library.db.execute("select holder, expires_at from lease where name = ?", [self.name]).fetchone()
        if not row or not row[0]:
            return None
        expires_in = float(row[1]) - self._clock()
        return LeaseInfo(row[0], expires_in) if expires_in > 0 else None


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
        row = library.db.execute("select holder, expires_at from lease where name = ?", [name]).fetchone()
    except sqlite3.DatabaseError as error:
        return f"the poller lease cannot be read ({error}), so another worker may be polling"
    current = row[0] if row else ""
    if current != holder:
        if current:
            return f"worker {current} took over the poller lease; the rest is left to it"
        return "this process no longer holds the poller lease"
    if float(row[1]) <= clock():
        return "the poller lease expired because it could not be renewed; another worker may be polling"
    return ""


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
