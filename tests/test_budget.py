"""One Preservica budget for the whole app: each process's share follows the live instances, counted by
heartbeat rows (with each one's claim) in the reconcile table of real Azurite."""
import os
import signal
import time

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


class Counting:
    """The real TableClient, with the calls the heartbeat makes counted."""

    def __init__(self, table):
        self.table, self.calls = table, []

    def __getattr__(self, name):
        real = getattr(self.table, name)
        if name in ("upsert_entity", "query_entities", "create_table"):
            def counted(*a, **kw):
                self.calls.append(name)
                return real(*a, **kw)
            return counted
        return real


def beat(name: str, ttl: float = ratelimit.TTL_SECONDS) -> heartbeat.Heartbeat:
    return heartbeat.Heartbeat(storage.default().table(settings.RECONCILE_TABLE), name, ttl)


def budget(hb, total: float = 12, clock=None, max_instances: int = 100) -> ratelimit.SharedBudget:
    clock = clock or Clock()
    return ratelimit.SharedBudget(total, max_instances, hb, clock=clock, sleep=clock.sleep, watch=False)


def wanted_meanwhile(budget_, hb, write: str) -> None:
    """While the watcher's `write` (hb.rest, hb.leave) is on its way to storage, a request is wanted: it must
    not wait for that write, and the write goes on after it."""
    import threading
    real = getattr(hb, write)

    def meanwhile(*args):
        came_back = []
        caller = threading.Thread(target=lambda: came_back.append(budget_.take()))
        caller.start()
        caller.join(60)
        assert came_back, f"the caller waited for the watcher's {write}"
        return real(*args)
    setattr(hb, write, meanwhile)


def quiet_process(quiet: float, write: str) -> ratelimit.SharedBudget:
    """Process "p" at 10/s, quiet for `quiet` s since its one request, with a request wanted while its watcher's
    `write` is on its way (wanted_meanwhile)."""
    clock, hb = Clock(), beat("p")
    p = budget(hb, 10, clock)
    p.take()
    clock.now += quiet
    wanted_meanwhile(p, hb, write)
    return p


def test_instance_id_is_the_hosts_then_random_and_per_process():
    pid = os.getpid()
    assert heartbeat.instance_id({"CONTAINER_NAME": "c1"}) == f"c1-{pid}"
    assert heartbeat.instance_id({"WEBSITE_POD_NAME": "pod", "CONTAINER_NAME": "c1"}) == f"pod-{pid}"
    assert heartbeat.instance_id({"WEBSITE_INSTANCE_ID": "w", "WEBSITE_POD_NAME": "pod"}) == f"w-{pid}"
    assert heartbeat.instance_id({}) == heartbeat.instance_id({}) != heartbeat.instance_id({"CONTAINER_NAME": "x"})


def test_a_lone_newcomer_takes_the_whole_budget_at_once_for_two_writes_and_two_queries(app_env):
    """The regression of the first wiring: a new process sat at a hundredth of the budget for its first seconds.
    It registers at 0, then claims its fair share of those it saw (alone: all of it)."""
    table = storage.default().table(settings.RECONCILE_TABLE)
    table.create_table()
    counted = Counting(table)
    mine = budget(heartbeat.Heartbeat(counted, "me", ratelimit.TTL_SECONDS), 10)
    assert mine.take() == 0.0
    assert (mine.live, mine.rate) == (1, 10.0)
    assert counted.calls == ["upsert_entity", "query_entities"] * 2
    paced = int(ratelimit.BEAT_SECONDS * 10) - 1          # then paced at the whole budget, no count within a beat
    waits = [mine.take() for _ in range(paced)]
    assert waits == pytest.approx([0.1] * paced) and counted.calls == ["upsert_entity", "query_entities"] * 2
    assert beat("other").beat(0) == {"me": 10.0}       # what the others read: its row and its claim


def settle(budgets, clock, rounds=15):
    """Each counts in turn, as their beats would; the shares in use never sum above the budget meanwhile."""
    for _ in range(rounds):
        for x in budgets:
            clock.now += ratelimit.STARVED_SECONDS
            x._count(clock())
            assert sum(y.rate for y in budgets) <= x.budget, [y.rate for y in budgets]
    return [x.rate for x in budgets]


def test_shares_follow_the_live_count_and_never_sum_above_the_budget(app_env):
    clock = Clock()
    a = budget(beat("a"), 12, clock)
    a.take()
    assert a.rate == 12.0
    b = budget(beat("b"), 12, clock)
    b._count(clock())           # b joins while a holds all 12: nothing is free for it yet
    assert (b.live, b.rate) == (2, 0.0) and a.rate == 12.0
    assert settle([a, b], clock) == [6.0, 6.0]
    c = budget(beat("c"), 12, clock)
    assert settle([c, a, b], clock) == [4.0, 4.0, 4.0]
    x = [budget(beat(n), 10, clock) for n in "abcd"]   # 10 over 4 does not divide: whole shares 3, 3, 2, 2 by id
    assert settle(x, clock) == [3.0, 3.0, 2.0, 2.0]


def test_a_process_without_a_share_waits_for_one_rather_than_send(app_env):
    clock = Clock()
    a = budget(beat("a"), 10, clock)
    a.take()
    b = budget(beat("b"), 10, clock)
    waited = b.take()           # nothing free until a counts b and cuts its share: b waits, counting again
    assert waited > 0 and b.rate > 0 and (a.rate == 10.0 or a.rate + b.rate <= 10)


def test_a_dead_instances_share_returns_after_its_heartbeat_expires(app_env):
    dead, me = beat("dead", ttl=1), beat("me", ttl=1)
    dead.beat(10)
    assert me.beat(0) == {"dead": 10.0}
    deadline = time.monotonic() + 30
    while me.beat(0):           # the service's Timestamp moves on; the dead one's row does not
        assert time.monotonic() < deadline, "the dead instance is still counted"
        time.sleep(0.2)
    mine = budget(me, 10)
    mine.take()
    assert (mine.live, mine.rate) == (1, 10.0)


def test_an_idle_process_counts_again_before_using_a_share_it_no_longer_holds(app_env):
    table = storage.default().table(settings.RECONCILE_TABLE)
    table.create_table()
    counted = Counting(table)
    clock = Clock()
    mine = budget(heartbeat.Heartbeat(counted, "me", 1), 10, clock)   # rows live 1 s here
    mine.take()
    assert len(counted.calls) == 4
    beat("other").beat(10)      # another process took the whole budget while this one was idle
    clock.now += ratelimit.TTL_SECONDS   # our row has lapsed in the others' count: the share is not ours
    started = time.monotonic()
    mine.take()                 # it counts before sending, and sends only once the other's row has lapsed
    assert counted.calls[4:6] == ["upsert_entity", "query_entities"] and len(counted.calls) > 6
    assert time.monotonic() - started >= 0.5 and mine.live == 1 and mine.rate > 0
    clock.now += ratelimit.BEAT_SECONDS
    mine.take()                 # a raise is claimed in its row before it is used: the whole budget a beat later
    assert mine.rate == 10.0


def test_a_clean_stop_returns_the_share_at_once(app_env):
    a, b = beat("a"), beat("b")
    a.beat(6)
    assert b.beat(6) == {"a": 6.0}
    a.leave()
    assert b.beat(6) == {}


@pytest.mark.parametrize("claim", ["lots", None, -1.0, float("nan"), float("inf")])
def test_a_careless_claim_in_a_row_holds_the_others_back_rather_than_let_them_exceed(app_env, claim):
    table = storage.default().table(settings.RECONCILE_TABLE)
    table.create_table()
    table.upsert_entity({"PartitionKey": heartbeat.PARTITION, "RowKey": "odd", "claim": claim})
    clock = Clock()
    mine = budget(beat("me"), 10, clock)
    mine._count(clock())
    assert (mine.live, mine.rate) == (2, 0.0)


def test_a_storage_outage_falls_back_to_the_floor_never_unlimited(tmp_path, monkeypatch, app_env):
    store = az.start_on_free_ports(tmp_path / "azurite")
    try:
        monkeypatch.setenv("AzureWebJobsStorage", store.connection_string)
        monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "1")
        me = heartbeat.Heartbeat(storage.default().table(settings.RECONCILE_TABLE), "me", 15)
        clock = Clock()
        mine = budget(me, 10, clock, max_instances=20)
        mine.take()
        assert (mine.live, mine.rate) == (1, 10.0)      # alone: the whole budget from the first call
        os.kill(store.proc.pid, signal.SIGSTOP)        # storage stops answering
        try:
            clock.now += ratelimit.BEAT_SECONDS
            mine.take()
            assert mine.live is None and mine.rate == mine.floor == 0.5   # 10 / 20 instances
            waits = [mine.take() for _ in range(2)]    # paced at the floor: 2 s apart
            assert waits[-1] == pytest.approx(2.0, rel=0.01)
        finally:
            os.kill(store.proc.pid, signal.SIGCONT)
        clock.now += ratelimit.BEAT_SECONDS
        mine.take()
        assert (mine.live, mine.rate) == (1, 10.0)      # storage back: counted, the whole budget again
    finally:
        os.kill(store.proc.pid, signal.SIGCONT) if store.proc and store.proc.poll() is None else None
        store.stop()


def test_any_failure_counting_gives_the_floor():
    class Broken:
        def beat(self, claim):
            raise RuntimeError("refused")
    mine = budget(Broken(), 10)
    mine.take()
    assert mine.live is None and mine.rate == mine.floor == 0.1


def test_no_app_storage_is_a_lone_process_at_the_whole_budget(monkeypatch):
    """The operator's CLI or a local run without storage: not an instance of the app (the Functions host
    cannot start without AzureWebJobsStorage), so the whole budget, not the floor."""
    for name in storage._STORAGE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    storage._default.reset()
    mine = budget(None, 10)
    mine.take()
    assert (mine.live, mine.rate) == (1, 10.0)


def test_the_app_takes_its_share_on_its_first_preservica_call(app_env, monkeypatch):
    """Wired: the client's bucket is the shared budget, with the deployment's instance count as its floor."""
    from handlers.clients import preservica
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "7")
    monkeypatch.setenv("MAXIMUM_INSTANCE_COUNT", "70")
    shared = preservica._bucket.get()
    assert isinstance(shared, ratelimit.SharedBudget) and shared.floor == 0.1
    preservica._take()
    assert (shared.live, shared.rate) == (1, 7.0)
    rows = list(storage.default().table(settings.RECONCILE_TABLE).query_entities(
        f"PartitionKey eq '{heartbeat.PARTITION}'"))
    assert [(r["RowKey"], r["claim"]) for r in rows] == [(heartbeat.instance_id(), 7.0)]


def test_a_cut_holds_from_the_next_request_however_many_callers_wait():
    """A token bucket reserves each waiting caller's slot ahead: cut with twenty callers queued, it ran on at
    the old rate for a second, while the others raised into the share this row now said was free."""
    import threading

    class Others:
        rank, others = 0, {}

        def beat(self, claim):
            return dict(self.others)
    hb, slots = Others(), []
    mine = ratelimit.SharedBudget(20, 100, hb)
    mine.take()
    take = mine.bucket.take

    def booked(*args, **kw):   # called with the budget's gate held: one at a time
        went = take(*args, **kw)
        if went is not None:
            slots.append((mine.bucket.last, mine.rate))   # when the bucket let this caller go, at which rate
        return went
    mine.bucket.take = booked
    callers = [threading.Thread(target=mine.take) for _ in range(20)]
    for c in callers:
        c.start()
    deadline = time.monotonic() + 60
    while len(slots) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    hb.others = {"other": 10.0}  # another process now claims half
    mine._due = 0.0              # and this one counts at its next request
    for c in callers:
        c.join(60)
    cut = next((i for i, (_, rate) in enumerate(slots) if rate == 10.0), None)
    assert len(slots) == 20 and cut is not None and cut <= 6, slots   # booked at the cut share soon after it
    after = [t for t, _ in slots[cut:]]
    assert max(sum(1 for t in after if s <= t < s + 1) for s in after) <= 10, slots   # no second above the cut


def test_a_failing_count_is_tried_again_a_second_after_it_ended_not_at_every_request():
    """A count that fails slowly (the storage SDK retrying a refused connection for seconds) set the next count
    due a second after it *began*: already past, so every request, and urllib3's every re-send, counted again,
    each as slowly (a Preservica call through a dead proxy took over 300 s to fail)."""
    clock = Clock()

    class Failing:
        rank, calls = 0, 0

        def beat(self, claim):
            self.calls += 1
            clock.now += 2.0           # the SDK's retries
            raise ConnectionError("storage unreachable")
    hb = Failing()
    mine = budget(hb, 100, clock, max_instances=10)   # the floor: 10/s, a slot every 0.1 s
    for _ in range(5):
        mine.take()
    assert mine.rate == mine.floor == 10.0 and hb.calls == 1
