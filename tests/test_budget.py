"""One Preservica budget for the whole app: each process's share follows the live instances, counted by
heartbeat rows in the reconcile table of real Azurite."""
import os
import signal

import pytest

from handlers.clients import heartbeat, ratelimit, storage
from handlers.core import settings
from hookops import azurite as az


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def beat(name: str, ttl: float = ratelimit.TTL_SECONDS) -> heartbeat.Heartbeat:
    return heartbeat.Heartbeat(storage.default().table(settings.RECONCILE_TABLE), name, ttl)


def budget(hb, total: float = 12, clock=None) -> ratelimit.SharedBudget:
    clock = clock or Clock()
    return ratelimit.SharedBudget(total, hb, clock=clock, sleep=clock.sleep)


def test_instance_id_is_the_hosts_then_random_and_per_process():
    pid = os.getpid()
    assert heartbeat.instance_id({"CONTAINER_NAME": "c1"}) == f"c1-{pid}"
    assert heartbeat.instance_id({"WEBSITE_POD_NAME": "pod", "CONTAINER_NAME": "c1"}) == f"pod-{pid}"
    assert heartbeat.instance_id({"WEBSITE_INSTANCE_ID": "w", "WEBSITE_POD_NAME": "pod"}) == f"w-{pid}"
    assert heartbeat.instance_id({}) == heartbeat.instance_id({}) != heartbeat.instance_id({"CONTAINER_NAME": "x"})


def test_each_process_takes_its_share_as_instances_come(app_env):
    a, b, c = beat("a"), beat("b"), beat("c")
    assert a.beat() == 1
    assert b.beat() == 2 and a.beat() == 2
    clock = Clock()
    mine = budget(a, 12, clock)
    mine.take()   # new: the floor until the others have counted it
    assert (mine.live, mine.rate) == (2, mine.floor)
    clock.now += ratelimit.PROBATION_SECONDS
    mine.take()
    assert (mine.live, mine.rate) == (2, 6.0)
    c.beat()
    clock.now += ratelimit.BEAT_SECONDS  # the next count is due
    mine.take()
    assert (mine.live, mine.rate) == (3, 4.0)
    d = beat("d")
    d.beat()
    clock.now += ratelimit.BEAT_SECONDS
    mine.take()   # 12 over 4 is 3 each; over 5 whole shares: 3, 3, 2, 2, 2 by id ("a" first)
    assert (mine.live, mine.rate) == (4, 3.0)
    e = beat("e")
    e.beat()
    shares = []
    for x in (a, b, c, d, e):
        x.beat()
        shares.append(budget(x, 12)._share(5))
    assert shares == [3.0, 3.0, 2.0, 2.0, 2.0] and sum(shares) == 12
    clock.now += ratelimit.TTL_SECONDS + 1  # idle past its heartbeat's life: counted afresh, on probation
    mine.take()
    assert mine.rate == mine.floor


def test_a_dead_instances_share_returns_after_its_heartbeat_expires(app_env):
    dead, me = beat("dead", ttl=1), beat("me", ttl=1)
    dead.beat()
    assert me.beat() == 2
    import time
    deadline = time.monotonic() + 30
    while me.beat() != 1:   # the service's Timestamp moves on; the dead one's row does not
        assert time.monotonic() < deadline, "the dead instance is still counted"
        time.sleep(0.2)
    clock = Clock()
    mine = budget(me, 10, clock)
    mine.take()
    clock.now += ratelimit.PROBATION_SECONDS
    mine.take()
    assert mine.rate == 10.0


def test_a_clean_stop_returns_the_share_at_once(app_env):
    a, b = beat("a"), beat("b")
    a.beat()
    assert b.beat() == 2
    a.leave()
    assert b.beat() == 1


def test_a_storage_outage_falls_back_to_the_floor_never_unlimited(tmp_path, monkeypatch, app_env):
    store = az.start_on_free_ports(tmp_path / "azurite")
    try:
        monkeypatch.setenv("AzureWebJobsStorage", store.connection_string)
        monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "1")
        me = heartbeat.Heartbeat(storage.default().table(settings.RECONCILE_TABLE), "me", 15)
        clock = Clock()
        mine = budget(me, 10, clock)
        assert mine.rate == mine.floor == 0.1          # before the first count: the floor
        mine.take()
        assert (mine.live, mine.rate) == (1, mine.floor)
        clock.now += ratelimit.PROBATION_SECONDS
        mine.take()
        assert (mine.live, mine.rate) == (1, 10.0)
        os.kill(store.proc.pid, signal.SIGSTOP)        # storage stops answering
        try:
            clock.now += ratelimit.BEAT_SECONDS
            mine.take()
            assert mine.live is None and mine.rate == 0.1
            waits = [mine.take() for _ in range(2)]    # paced at the floor: 10 s apart
            assert waits[-1] == pytest.approx(10.0, rel=0.01)
        finally:
            os.kill(store.proc.pid, signal.SIGCONT)
        clock.now += ratelimit.BEAT_SECONDS
        mine.take()
        assert (mine.live, mine.rate) == (1, mine.floor)   # storage back: counted, on probation
        clock.now += ratelimit.PROBATION_SECONDS
        mine.take()
        assert (mine.live, mine.rate) == (1, 10.0)
    finally:
        os.kill(store.proc.pid, signal.SIGCONT) if store.proc and store.proc.poll() is None else None
        store.stop()


def test_the_share_never_falls_below_the_floor():
    class Many:
        def beat(self):
            return 10_000
    clock = Clock()
    mine = budget(Many(), 10, clock)
    mine.take()
    clock.now += ratelimit.PROBATION_SECONDS
    mine.take()
    assert mine.rate == mine.floor == 10 / ratelimit.FLOOR_INSTANCES


def test_any_failure_counting_gives_the_floor():
    class Broken:
        def beat(self):
            raise RuntimeError("refused")
    mine = budget(Broken(), 10)
    mine.take()
    assert mine.live is None and mine.rate == mine.floor
