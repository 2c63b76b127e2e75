"""Many processes sharing one budget: each count writes its row and reads every live row of the heartbeat
partition, so n processes counting every g seconds read n * n / g rows a second from one partition. Waiting for
a turn, 60 processes at a budget of 10 counted every 0.6 s: 6,000 rows a second, three times Azure's target for a
partition. Counts are now spread (ratelimit.PARTITION_ENTITIES), turns are as long as the spread, and the budget
still holds.

Simulated time (ratelimit's clock), real heartbeat rows in Azurite: the rows are kept live by a long TTL, so
every row counts in every read (the most there can be), whatever the machine's speed."""
from handlers.clients import heartbeat, ratelimit, storage
from handlers.clients.bucket import WINDOW_SECONDS
from handlers.core import settings
from tests.test_budget import Clock, budget
from tests.test_budget_arrivals import most_in_a_second


class RowsRead:
    """The real TableClient, with the rows the heartbeat's queries return counted."""

    def __init__(self, table, read: list):
        self.table, self.read = table, read

    def __getattr__(self, name):
        real = getattr(self.table, name)
        if name != "query_entities":
            return real

        def counted(*a, **kw):
            rows = list(real(*a, **kw))
            self.read.append(len(rows))
            return rows
        return counted


def due(b: ratelimit.SharedBudget, now: float) -> float:
    """When process `b` next acts: a request as soon as its share and window allow one (a caller always waiting),
    else its next count."""
    if b.share > 0 and not b._yielding(now):
        held, drops = b.bucket.occupancy(now, WINDOW_SECONDS)
        return now if held < b.share else min(drops, b._due, b._held_until)
    return min(b._due, b._held_until)


def step(b: ratelimit.SharedBudget, clock: Clock, sent: list) -> None:
    """What process `b` does when it is due: a request while its share and window allow one, else a count (a
    request never waits here: the clock is every process's, and a wait would hold the others up)."""
    if b.share > 0 and not b._yielding(clock()) and b.bucket.occupancy(clock(), WINDOW_SECONDS)[0] < b.share:
        with b.sending():
            b.take()
            sent.append(b.bucket.last)
    else:
        b._count(clock())


def processes(clock: Clock, n: int, total: int, read: list) -> list[ratelimit.SharedBudget]:
    table = RowsRead(storage.default().table(settings.RECONCILE_TABLE), read)
    budgets = [budget(heartbeat.Heartbeat(table, f"p{i}", 3600.0), total, clock) for i in range(n)]
    for b in budgets:
        b._count(clock())
    return budgets


def test_processes_in_turns_read_the_heartbeat_partition_within_its_target_and_keep_the_budget(app_env):
    """Before the spread: 6,845 rows a second (9.6 requests a second). Spread, one request a turn: about 1,400
    (7.5). Spread, a turn as long as the gap between counts (3 requests here): about 1,450 (8.7 to 9.5). No second
    holds more than the budget."""
    clock, read, sent, total = Clock(), [], [], 10
    budgets = processes(clock, 60, total, read)
    began, before, horizon = clock.now, sum(read), 10.0
    while clock.now < began + horizon:
        b = min(budgets, key=lambda b: due(b, clock.now))
        clock.now = max(clock.now, due(b, clock.now))
        step(b, clock, sent)
    per_second = (sum(read) - before) / (clock.now - began)
    assert per_second <= 2 * ratelimit.PARTITION_ENTITIES, per_second   # Azure's 2,000 for a partition
    assert most_in_a_second(sent) <= total + 1, sorted(round(t - began, 3) for t in sent)
    assert len(sent) / (clock.now - began) >= 0.8 * total, len(sent)   # one request a turn: 7.5 a second


def test_only_a_process_that_claims_nothing_and_has_no_share_may_let_its_row_lapse(app_env):
    """Spread out, a waiting process counts less often than its row lives (TTL_SECONDS): harmless while the row
    claims nothing. One that holds a share, or whose window still holds requests, counts before the row lapses."""
    clock, total = Clock(), 10
    budgets = processes(clock, 60, total, [])
    for b in budgets:
        b._count(clock())
    holding = [b for b in budgets if b.share > 0]
    waiting = [b for b in budgets if b.share == 0 and b.claim == 0]
    assert holding and waiting
    assert all(b._held_until <= clock.now + ratelimit.TTL_SECONDS - ratelimit.HOLD_SECONDS for b in holding)
    assert all(b._held_until == float("inf") for b in waiting)
    assert max(b._due for b in waiting) - clock.now > ratelimit.TTL_SECONDS   # 60 * 60 / 1,000 s, jittered
    first = holding[0]
    assert first._turn_length() == 3   # 60 * 60 / 1,000 s between counts: a turn of 3 requests
    for _ in range(first._turn_length()):
        with first.sending():
            first.take()
    clock.now += 0.05
    first._count(clock())   # its turn had: it yields, its window still holds the last request
    assert first.share == 0 and first.claim == 1
    assert first._held_until <= clock.now + ratelimit.TTL_SECONDS - ratelimit.HOLD_SECONDS


def test_a_row_left_by_a_process_gone_without_leaving_is_cleared_by_a_later_count(app_env, monkeypatch):
    """A process killed while busy leaves its row: no count uses it once it lapses, but every count read it, for
    ever (rows accumulate over months of scaling). A count now deletes such rows, only as it read them."""
    import time

    from tests.test_budget import beat
    monkeypatch.setattr(heartbeat, "STALE_SECONDS", 1.0)   # the service's seconds: a real wait, not a fixed sleep
    gone, back, alive = beat("gone-1"), beat("back-2"), beat("alive-3")
    gone.beat(1.0), back.beat(1.0)
    table, real = alive.table, alive.table.delete_entity

    def comes_back_first(partition, row, **kw):   # "back-2" counts again between the read and the delete
        if row == "back-2":
            back.beat(1.0)
        return real(partition, row, **kw)
    monkeypatch.setattr(table, "delete_entity", comes_back_first)

    def names() -> set[str]:
        return {r["RowKey"] for r in table.query_entities(f"PartitionKey eq '{heartbeat.PARTITION}'")}
    deadline = time.monotonic() + 60   # a hang guard: the rows are stale a second after their write
    while "gone-1" in names():
        assert time.monotonic() < deadline, names()
        alive.beat(0.0)
        time.sleep(0.05)   # polling a condition
    assert names() == {"back-2", "alive-3"}   # written since the read: it stays
