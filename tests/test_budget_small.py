"""A budget smaller than the number of processes that want it (PRESERVICA_MAX_RPS=1 with two busy instances):
each process takes a fraction, never nothing. Whole shares are rounded down to whole requests, and a fair share
below one request a second rounded to 0 for every process: all of them waited, counting, and none sent."""
import pytest

from handlers.clients import ratelimit
from tests.test_budget import Clock, beat, budget


@pytest.mark.parametrize("total, processes", [(1, 2), (2, 3), (3, 4)])
def test_a_budget_below_the_live_count_gives_each_process_a_fraction(app_env, total, processes):
    clock = Clock()
    budgets = [budget(beat(f"p{i}"), total, clock) for i in range(processes)]
    for b in budgets:
        b._count(clock())
    for _ in range(12):   # counts go round until the claims settle
        clock.now += ratelimit.BEAT_SECONDS
        for b in budgets:
            b._count(clock())
    shares = [b.rate for b in budgets]
    assert all(s > 0 for s in shares), shares
    assert sum(shares) <= total + 1e-9, shares
    assert shares == pytest.approx([total / processes] * processes), shares


def test_each_process_sends_at_its_fraction(app_env):
    """Two processes at a budget of 1: each books a request every 2 s (its bucket's window holds one)."""
    clock = Clock()
    a, b = budget(beat("a"), 1, clock), budget(beat("b"), 1, clock)
    a.take()
    b._count(clock())
    for _ in range(12):
        clock.now += ratelimit.BEAT_SECONDS
        a._count(clock())
        b._count(clock())
    went = []
    for _ in range(3):
        b.take()
        went.append(b.bucket.last)
    assert [round(y - x, 6) for x, y in zip(went, went[1:], strict=False)] == [2.0, 2.0]
