"""The poller lease on a real SQLite file, as two workers see it through their own connections."""

from il2watch.lease import Lease
from il2watch.library import Library


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_one_holder_at_a_time_and_takeover_after_lapse(tmp_path):
    clock = Clock()
    with Library(tmp_path / "lib.db") as first_db, Library(tmp_path / "lib.db") as second_db:
        first = Lease(first_db, "worker-a", ttl=30, clock=clock)
        second = Lease(second_db, "worker-b", ttl=30, clock=clock)
        assert first.acquire()
        assert not second.acquire()
        assert second.info().holder == "worker-a"
        clock.now += 20
        assert first.renew()  # heartbeat keeps it
        clock.now += 20
        assert not second.acquire()
        clock.now += 31  # worker-a stopped beating: lapsed
        assert second.info() is None
        assert second.acquire()
        assert not first.renew()  # worker-a learns it lost the lease
        assert first.info().holder == "worker-b"


def test_release_frees_it_at_once(tmp_path):
    clock = Clock()
    with Library(tmp_path / "lib.db") as db:
        first, second = Lease(db, "a", clock=clock), Lease(db, "b", clock=clock)
        assert first.acquire()
        first.release()
        assert second.acquire()
        first.release()  # releasing someone else's lease does nothing
        assert second.info().holder == "b"


def test_acquire_is_idempotent_for_the_holder(tmp_path):
    clock = Clock()
    with Library(tmp_path / "lib.db") as db:
        lease = Lease(db, "a", ttl=10, clock=clock)
        assert lease.acquire() and lease.acquire()
        clock.now += 5
        assert lease.acquire()
        assert 9 < lease.info().expires_in <= 10
