"""The poller lease on a real SQLite file, as two workers see it through their own connections."""

import socket
import subprocess
import sys

from il2watch.lease import Lease, lease_problem, live_holder
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


def exited_process_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path):
    clock = Clock()
    dead = f"{socket.gethostname()}:{exited_process_pid()}:0dead0"
    with Library(tmp_path / "lib.db") as db:
        assert Lease(db, dead, ttl=600, clock=clock).acquire()  # killed ten minutes before its lease ends
        assert live_holder(db, clock=clock) == ""
        assert Lease(db, "worker-b", ttl=600, clock=clock).acquire()
        assert Lease(db, "worker-b", clock=clock).info().holder == "worker-b"


def test_a_live_holder_on_this_host_or_elsewhere_keeps_its_lease(tmp_path):
    clock = Clock()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for holder in (f"{socket.gethostname()}:{sleeper.pid}:a1ive0", f"another-host:{exited_process_pid()}:x"):
            with Library(tmp_path / f"{holder[:3]}.db") as db:
                assert Lease(db, holder, ttl=600, clock=clock).acquire()
                assert live_holder(db, clock=clock) == holder
                assert not Lease(db, "worker-b", ttl=600, clock=clock).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lease_problem_says_why_a_holder_must_stop(tmp_path):
    clock = Clock()
    with Library(tmp_path / "lib.db") as db:
        assert lease_problem(db, "a", clock=clock) == "this process no longer holds the poller lease"
        assert Lease(db, "a", ttl=30, clock=clock).acquire()
        assert lease_problem(db, "a", clock=clock) == ""
        clock.now += 31
        assert lease_problem(db, "a", clock=clock).startswith("the poller lease expired")
        assert Lease(db, "b", ttl=30, clock=clock).acquire()
        assert lease_problem(db, "a", clock=clock) == "worker b took over the poller lease; the rest is left to it"
