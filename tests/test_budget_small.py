"""A budget smaller than the number of processes that want it (PRESERVICA_MAX_RPS=1 with two or three busy
instances). Rounded down, every fair share was 0 and none sent; then fractions (a third of a request a second
each) kept the budget on average only: three processes could send in the same second. Now shares stay whole:
a process holds one request a second while one is free, and gives it back after one request, so all take turns.
The budgets run against the heartbeat rows of real Azurite."""
import threading
import time

import pytest

from handlers.clients import ratelimit
from tests.test_budget import Clock, beat, budget
from tests.test_budget_arrivals import most_in_a_second


@pytest.mark.parametrize("total, processes", [(1, 2), (2, 3), (3, 4)])
def test_a_budget_below_the_live_count_gives_whole_shares_never_nothing(app_env, total, processes):
    clock = Clock()
    budgets = [budget(beat(f"p{i}"), total, clock) for i in range(processes)]
    for b in budgets:
        b._count(clock())
    for _ in range(12):   # counts go round until the claims settle
        clock.now += ratelimit.BEAT_SECONDS
        for b in budgets:
            b._count(clock())
    shares = sorted(b.rate for b in budgets)
    assert shares == [0.0] * (processes - total) + [1.0] * total, shares   # whole, the budget all in use


def test_busy_processes_take_turns_and_no_second_holds_more_than_the_budget_and_one(app_env):
    """Three processes at a budget of 1, each with requests always waiting (real clock, threads, one row each):
    every process gets its turns, and the releases of all of them together keep the budget."""
    total, processes, each = 1, 3, 2
    budgets = [ratelimit.SharedBudget(total, 100, beat(f"turns-{i}")) for i in range(processes)]
    went: list[list[float]] = [[] for _ in budgets]
    stop = threading.Event()

    def busy(b: ratelimit.SharedBudget, mine: list) -> None:
        while not stop.is_set():
            with b.sending():
                b.take()
                mine.append(time.monotonic())
    threads = [threading.Thread(target=busy, args=(b, m), daemon=True) for b, m in zip(budgets, went, strict=True)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 120   # a hang guard: about 1.3 s a turn here
        while min(len(m) for m in went) < each:
            assert time.monotonic() < deadline, [len(m) for m in went]
            time.sleep(0.05)   # polling a condition
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    times = [t for m in went for t in m]
    assert most_in_a_second(times) <= total + 1, sorted(round(t - min(times), 3) for t in times)
    assert all(b.rate in (0.0, 1.0) for b in budgets)
