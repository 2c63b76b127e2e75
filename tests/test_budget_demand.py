"""The shared Preservica budget through changes of demand: releases spaced from the last actual release, cuts
written down as the cut process's requests age out, newcomers claiming no more than their fair share, idle processes giving their
share back (real Azurite for the rows)."""
import time

import pytest

from handlers.clients import heartbeat, ratelimit, storage
from handlers.core import settings
from tests.test_budget import Clock, beat, budget, quiet_process


def test_a_late_wake_never_lets_more_than_the_rate_go_in_a_second_and_keeps_the_mean_rate():
    """Measured in bench row 9: a thread woke 99 ms after its slot and the next went 0.7 ms after it, on its own
    slot, so 11 requests went in one second (12 arrived at the double)."""
    clock, late = Clock(), iter([0.0, 0.099])

    def sleep(s):
        clock.now += s + next(late, 0.0)   # the second wait oversleeps by 99 ms
    bucket = ratelimit.TokenBucket(10, clock=clock, sleep=sleep)
    went = []
    for _ in range(30):
        bucket.take()
        went.append(clock.now)
    assert max(sum(1 for t in went if s <= t < s + 1) for s in went) <= 10, went
    assert went[-1] == pytest.approx(2.9)   # one request waited for the window; the ones after it kept their slots


def test_a_count_that_leaves_the_share_as_it_was_does_not_shift_the_bookings():
    """Each count sets the share again; only a cut may move the next booking (to where the last second holds
    fewer than the new share). Moving it at every count made every late wake cost a request each second."""
    clock, late = Clock(), iter([0.05])

    def sleep(s):
        clock.now += s + next(late, 0.0)   # the first wait oversleeps by 50 ms
    bucket = ratelimit.TokenBucket(10, clock=clock, sleep=sleep)
    for _ in range(11):
        bucket.take()
    bucket.set_rate(10)        # a count: the same share
    for _ in range(10):
        bucket.take()
    assert clock.now == pytest.approx(2.0)   # on its bookings, 1/10 s apart from 0


def rows_now() -> dict:
    table = storage.default().table(settings.RECONCILE_TABLE)
    return {r["RowKey"]: r["claim"] for r in table.query_entities(f"PartitionKey eq '{heartbeat.PARTITION}'")}


def test_a_newcomer_claims_only_what_is_free_so_the_others_keep_their_fair_shares(app_env):
    """A newcomer used to claim the whole budget on its first write: a process counting then cut to nothing
    while the newcomer, seeing the other's claim, got nothing either. Claiming its fair share before the others
    had cut made two of them cut to 1 each at a budget of 10 (bench row 9)."""
    clock = Clock()
    a = budget(beat("a"), 10, clock)
    a.take()
    n = budget(beat("n"), 10, clock)
    n._count(clock())
    assert n.rate == 0.0 and rows_now() == {"a": 10.0, "n": 0.0}   # registered; nothing free to claim yet
    clock.now += ratelimit.BEAT_SECONDS
    a._count(clock())
    assert a.rate == 5.0       # a cuts to its fair share, not to nothing
    b = budget(beat("b"), 10, clock)   # then a third, while a and n hold 5 each (n waits for a's cut in writing)
    clock.now += ratelimit.HOLD_SECONDS
    for x in (a, n, a, n):
        x._count(clock())
    assert (a.rate, n.rate) == (5.0, 5.0)
    b._count(clock())
    assert b.rate == 0.0 and rows_now()["b"] == 0.0
    a._count(clock())
    n._count(clock())
    assert (a.rate, n.rate) == (4.0, 3.0)   # whole shares 4, 3, 3 by id; not 2 and 2


def test_a_cut_the_window_already_allows_is_written_in_the_same_count(app_env):
    """A process cut from 10 to 5 with fewer than 5 requests in its window writes 5 at once: the joiner gets its
    half at its next count. (It used to write the cut at its next beat: the joiner waited a second more.)"""
    clock = Clock()
    a = budget(beat("a"), 10, clock)
    a.take()
    n = budget(beat("n"), 10, clock)
    n._count(clock())
    clock.now += ratelimit.BEAT_SECONDS
    a._count(clock())
    assert a.rate == 5.0 and rows_now()["a"] == 5.0
    n._count(clock())
    assert n.rate == 5.0


def test_a_cut_is_written_down_only_as_the_requests_of_the_higher_share_age_out(app_env):
    """Counted in one-second windows, the arrivals of a process cut and of one raised into the freed share must
    not meet: the cut process's row claims the requests it still has in its window (in flight, or answered within
    the last second), however low its new share, and is written down as each ages out, not a whole second later."""
    clock = Clock()
    a = budget(beat("a"), 10, clock)
    for _ in range(10):
        a.take()               # released at 10/s: t = 0 ... 0.9
    first = 0.0
    n = budget(beat("n"), 10, clock)
    n._count(clock())
    a._count(clock())          # a sees n: cut to 5 from its next release
    assert a.rate == 5.0 and rows_now()["a"] == 10.0
    clock.now += ratelimit.STARVED_SECONDS / 2
    a._count(clock())          # all ten still in its window: the row still says 10, n gets nothing yet
    n._count(clock())
    assert rows_now()["a"] == 10.0 and n.rate == 0.0
    assert a._due <= first + ratelimit.WINDOW_SECONDS + 1e-9   # due when the first of them ages out
    clock.now = first + ratelimit.WINDOW_SECONDS + 0.35          # four have aged out (0, 0.1, 0.2, 0.3)
    a._count(clock())
    n._count(clock())
    assert rows_now()["a"] == 6.0 and n.rate == 4.0             # n gets what aged out, not the whole half
    for _ in range(10):   # each fall of a's window, as its counts fall due
        if rows_now()["a"] <= 5.0:
            break
        clock.now = max(clock.now, a._due)
        a._count(clock())
    n._count(clock())
    assert rows_now()["a"] == 5.0 and (a.rate, n.rate) == (5.0, 5.0)
    assert clock.now < 0.9 + ratelimit.WINDOW_SECONDS            # before the last request at 10/s aged out
    for _ in range(20):        # then at 5/s, counting at every beat: a steady 5 in the window, claimed as 5
        a.take()
        if clock.now >= a._due:
            a._count(clock())
            n._count(clock())
            assert rows_now()["a"] == 5.0 and n.rate == 5.0


def test_an_idle_process_gives_its_share_back_and_registers_again_when_wanted(app_env):
    """The watcher deletes the row of a process that wanted no request for IDLE_SECONDS: the busy ones take
    its share at their next count instead of waiting for the row to lapse (TTL_SECONDS)."""
    idle = ratelimit.SharedBudget(10, 100, beat("idle"))   # the real clock and its watcher thread
    busy = budget(beat("busy"), 10)
    idle.take()
    busy._count(busy._clock())
    assert (idle.rate, busy.rate) == (10.0, 0.0) and set(rows_now()) == {"idle", "busy"}
    deadline = time.monotonic() + 60
    while "idle" in rows_now():   # a condition, not a fixed sleep
        assert time.monotonic() < deadline, "the idle process kept its row"
        time.sleep(0.1)
    assert idle.rate == 0.0 and not idle.joined
    busy._clock.now += ratelimit.BEAT_SECONDS
    busy._count(busy._clock())
    assert (busy.live, busy.rate) == (1, 10.0)
    idle._count(idle._clock())  # wanted again: it registers and waits for busy to cut to half
    assert idle.joined and rows_now() == {"busy": 10.0, "idle": 0.0} and idle.rate == 0.0


def test_going_idle_keeps_no_caller_waiting_on_storage_and_spares_a_row_written_again(app_env):
    """The watcher used to delete the row holding the gate: a request wanted meanwhile waited for storage.
    Now the delete is outside the gate, and only of the row it last wrote: a caller that registered again
    first keeps its row."""
    p = quiet_process(ratelimit.IDLE_SECONDS, "leave")
    assert p.release_if_idle()
    assert p.joined and rows_now() == {"p": 10.0}   # registered again; the stale delete left its row


def test_requests_of_several_processes_never_exceed_the_budget_in_any_second(app_env):
    """Four budgets on one Azurite, with threads each, joining one after another, one going idle and coming back,
    each request answered after a varying delay: wherever between its release and its answer a request arrives,
    no one-second window can hold more than the budget (counted as the requests whose release-to-answer span
    meets the window: the worst arrival for each), through every change of shares and every cut written down
    as the requests age out. An invariant of the stamps, not a timing."""
    import random
    import threading
    total, spans, lock, stop = 10, [], threading.Lock(), threading.Event()
    budgets = [ratelimit.SharedBudget(total, 100, beat(f"p{i}")) for i in range(4)]

    def work(b, pause_at=None, seed=0):
        delays = random.Random(seed)
        while not stop.is_set():
            with b.sending():
                b.take()
                went = b.bucket.last
                time.sleep(delays.choice((0.0, 0.01, 0.05, 0.2)))   # the answer's delay, a condition of the test
                answered = time.monotonic()   # the answer: the block stamps it no earlier, as it ends
            with lock:
                spans.append((went, answered))
            if pause_at is not None and len(spans) > pause_at:
                time.sleep(ratelimit.IDLE_SECONDS * 2)    # goes idle, then comes back
                pause_at = None
    threads = []
    for i, b in enumerate(budgets):
        for k in range(2):
            threads.append(threading.Thread(target=work, args=(b, 25 if i == 1 else None, 2 * i + k), daemon=True))
            threads[-1].start()
        deadline = time.monotonic() + 60
        while len(spans) < 10 * (i + 1):   # the next joins once this one is sending
            assert time.monotonic() < deadline
            time.sleep(0.05)
    deadline = time.monotonic() + 120
    while len(spans) < 120 or budgets[1].rate == 0:
        assert time.monotonic() < deadline, len(spans)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(60)
    worst = max(sum(1 for went, answered in spans if went < x + 1 and answered >= x) for x in {t for span in spans for t in span})
    assert worst <= total, worst


def test_a_caller_waiting_for_its_slot_lets_the_counts_that_fall_due_go_first(app_env):
    """After a cut, the next caller waits in the bucket until the window holds fewer than the new share (up to a
    second). The counts that fall due meanwhile (the cut written down as the window empties) used to wait with it:
    the joiner waited for the cut process's next release."""
    clock = Clock()
    a = budget(beat("a"), 10, clock)
    for _ in range(10):
        a.take()               # released at 10/s: t = 0 ... 0.9
    n = budget(beat("n"), 10, clock)
    n._count(clock())
    clock.now += ratelimit.STARVED_SECONDS / 2
    a._due = clock.now         # its next request counts first, and sees n
    writes = []
    real = a._heartbeat.beat
    a._heartbeat.beat = lambda claim: (writes.append((clock.now, claim)), real(claim))[1]
    a.take()                   # cut to 5: goes once the window holds 4, at 1.5
    assert a.rate == 5.0 and clock.now >= 1.5
    assert [c for _, c in writes if c < 10.0], writes   # written down while it waited, not only after
    assert rows_now()["a"] <= 5.0
