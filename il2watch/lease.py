"""One worker at a time: a lease row in the library, renewed by a heartbeat, taken over when it lapses.

Each change is a single SQL statement, so two processes racing for the lease cannot both win.
Workers on separate disks cannot see each other's lease; there the channel-history check in
``deliver`` keeps doubles out, and the docs say to run one worker.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from il2watch.library import Library, utcnow

LEASE_NAME = "poller"


def make_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    expires_in: float  # seconds; negative when lapsed


class Lease:
    def __init__(self, library: Library, holder: str, *, ttl: float = 60.0,
                 clock: Callable[[], float] = time.time, name: str = LEASE_NAME):
        self.library, self.holder, self.ttl, self.name = library, holder, ttl, name
        self._clock = clock

    def acquire(self) -> bool:
        """Take the lease if it is free, lapsed, or already ours; renews it when ours."""
        now = self._clock()
        with self.library.transaction():
            self.library.db.execute(
                "insert or ignore into lease (name, holder, acquired_at, heartbeat_at, expires_at) "
                "values (?, '', '', 0, 0)", [self.name])
            cursor = self.library.db.conn.execute(
                "update lease set holder = ?, acquired_at = case when holder = ? then acquired_at else ? end, "
                "heartbeat_at = ?, expires_at = ? where name = ? and (holder = ? or holder = '' or expires_at < ?)",
                [self.holder, self.holder, utcnow(), now, now + self.ttl, self.name, self.holder, now])
            return cursor.rowcount == 1

    def renew(self) -> bool:
        """Heartbeat: extend our lease; False when another worker has taken it over."""
        now = self._clock()
        with self.library.transaction():
            cursor = self.library.db.conn.execute(
                "update lease set heartbeat_at = ?, expires_at = ? where name = ? and holder = ?",
                [now, now + self.ttl, self.name, self.holder])
            return cursor.rowcount == 1

    def release(self) -> None:
        with self.library.transaction():
            self.library.db.conn.execute("update lease set holder = '', expires_at = 0 where name = ? and holder = ?",
                                         [self.name, self.holder])

    def info(self) -> LeaseInfo | None:
        """Who holds the lease now, if anyone does."""
        row = self.library.db.execute("select holder, expires_at from lease where name = ?", [self.name]).fetchone()
        if not row or not row[0]:
            return None
        expires_in = float(row[1]) - self._clock()
        return LeaseInfo(row[0], expires_in) if expires_in > 0 else None
