"""A process that wants no request for REST_SECONDS rests: its row claims only what its window still holds and
wants none, so the busy ones' fair shares leave it out at their next count; its next request registers again
(real Azurite for the rows)."""
from handlers.clients import heartbeat, ratelimit, storage
from handlers.core import settings
from tests.test_budget import Clock, beat, budget, quiet_process


def rows_now() -> dict:
    table = storage.default().table(settings.RECONCILE_TABLE)
    return {r["RowKey"]: (r["claim"], r.get("wants")) for r in table.query_entities(
        f"PartitionKey eq '{heartbeat.PARTITION}'")}


def test_a_resting_process_leaves_the_budget_to_the_busy_one_and_registers_again_when_wanted(app_env):
    """Bench row 9: a process that ran out of work held its half for IDLE_SECONDS (1.2 s) before anyone could use
    it, each time. Resting after REST_SECONDS, it claims only its window, and the busy one takes the rest."""
    clock = Clock()
    idle, busy = budget(beat("idle"), 10, clock), budget(beat("busy"), 10, clock)
    idle.take()
    busy._count(clock())
    for _ in range(4):   # the idle one sends three more at 5/s, then wants none
        clock.now += ratelimit.STARVED_SECONDS
        idle._count(clock())
        busy._count(clock())
    assert (idle.rate, busy.rate) == (5.0, 5.0)
    for _ in range(3):
        idle.take()
    last = clock.now
    assert not idle.rest_if_idle()   # not yet REST_SECONDS
    clock.now = last + ratelimit.REST_SECONDS + 1e-9   # past it, whatever the float sums come to
    in_window = idle.claim_floor(clock())
    assert 0 < in_window < 5 and idle.rest_if_idle()
    assert rows_now()["idle"] == (in_window, False) and idle.rate == 0.0
    busy._count(clock())   # its fair share is the whole budget now; free is what the resting row leaves
    assert busy.live == 1 and busy.rate == 10.0 - in_window
    clock.now = last + ratelimit.WINDOW_SECONDS + 0.01
    idle._count(clock())   # wanted again: it registers, wanting, and claims what it saw free of its fair share
    assert rows_now()["idle"] == (10.0 - busy.rate, True) and idle.live == 2
    busy._count(clock())
    clock.now += ratelimit.STARVED_SECONDS
    idle._count(clock())
    assert (busy.rate, idle.rate) == (5.0, 5.0)   # the busy one cut back to its fair share at its next count


def test_a_count_between_the_rest_and_its_write_keeps_the_row_wanting(app_env):
    """The rest is written outside the gate, only over the row as the process last wrote it: a request counted
    meanwhile (wanting again) keeps its row, and its share."""
    p = quiet_process(ratelimit.REST_SECONDS, "rest")
    assert not p.rest_if_idle()
    assert rows_now() == {"p": (10.0, True)} and p.rate == 10.0 and not p.resting


def test_a_row_from_before_the_wants_column_counts_as_wanting(app_env):
    """An older version's row has no `wants`, a careless hand may write anything there: such a row is divided with,
    as before (its claim counts either way)."""
    me = beat("me")
    me.beat(0)   # the table is there
    me.table.upsert_entity({"PartitionKey": heartbeat.PARTITION, "RowKey": "old", "claim": 4.0})
    assert me.beat(0) == {"old": 4.0} and me.wanting == 1
    me.table.upsert_entity({"PartitionKey": heartbeat.PARTITION, "RowKey": "edited", "claim": 1.0, "wants": "false"})
    assert me.beat(0) == {"old": 4.0, "edited": 1.0} and me.wanting == 2   # only rest()'s own False rests a row


def test_a_resting_claim_is_written_down_as_its_window_empties(app_env):
    """Resting at what its window held, the row would keep claiming that until the row goes (IDLE_SECONDS): the
    watcher writes it down as each request ages out, so the busy ones get the whole budget within the second."""
    clock = Clock()
    p = budget(beat("p"), 10, clock)
    for _ in range(5):
        p.take()                      # at 10/s: released at 0 ... 0.4
    clock.now = 0.4 + ratelimit.REST_SECONDS + 0.01
    assert p.rest_if_idle() and rows_now()["p"] == (5.0, False)
    assert not p.rest_if_idle()       # nothing aged out since: no write
    clock.now = 1.0 + 0.15            # those at 0 and 0.1 aged out
    assert p.rest_if_idle() and rows_now()["p"] == (3.0, False)
    clock.now = 1.4 + 0.01
    assert p.rest_if_idle() and rows_now()["p"] == (0.0, False)
    other = budget(beat("other"), 10, clock)
    other._count(clock())
    assert other.rate == 10.0
