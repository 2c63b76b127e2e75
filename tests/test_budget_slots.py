"""A count (a heartbeat write and query: a table round trip) falling due just before a slot used to go first and
hold that slot for the round trip; through the one-second window every later slot moved with it (bench row 9:
12 ms each half second, 2.2% of the budget, with one process as with four). Now the slot goes and the next caller
counts, except before the row's lapse (held_until), which no slot may pass uncounted."""

from handlers.clients import ratelimit
from tests.test_budget import Clock, budget

ROUND_TRIP = 0.012   # what a count took in bench row 9 (median 11.7 ms)


class Table:
    """The others' claims as a heartbeat would read them; each count takes a round trip of the fake clock."""
    rank = 0

    def __init__(self, clock: Clock, others: dict | None = None):
        self.clock, self.beats, self.others = clock, [], dict(others or {})

    def beat(self, claim):
        self.clock.now += ROUND_TRIP
        self.beats.append(self.clock.now)
        return dict(self.others)


def releases(mine: ratelimit.SharedBudget, n: int) -> list[float]:
    went = []
    for _ in range(n):
        mine.take()
        went.append(mine.bucket.last)
    return went


def test_a_count_falling_due_before_a_slot_does_not_hold_it_and_still_happens():
    clock = Clock()
    table = Table(clock)
    mine = budget(table, 10, clock)
    went = releases(mine, 101)   # ten seconds at 10/s, a count due every half second
    gaps = [b - a for a, b in zip(went, went[1:], strict=False)]
    assert max(gaps) <= 0.1 + 1e-9, [round(g, 3) for g in gaps if g > 0.1 + 1e-9]   # no slot held by a count
    assert went[-1] - went[0] <= 10.0 + 1e-9
    counted = table.beats[2:]    # the two of the first request's registration, then one a count
    assert len(counted) >= 10.0 / (ratelimit.BEAT_SECONDS + 0.1) - 1, counted   # due ones run, a slot late at most
    assert all(b - a <= ratelimit.BEAT_SECONDS + 0.1 + ROUND_TRIP + 1e-9
               for a, b in zip(counted, counted[1:], strict=False)), counted


def test_no_slot_passes_the_rows_lapse_uncounted():
    """held_until: the others stop counting this row TTL after its write; a slot within the grace of it still
    waits for a count."""
    clock = Clock()
    table = Table(clock)
    mine = budget(table, 10, clock)
    releases(mine, 3)
    mine._due = float("inf")                              # no count due but the lapse
    slot = mine.bucket.last + 0.1
    mine._held_until = slot - ratelimit.COUNT_GRACE_SECONDS / 2
    before = len(table.beats)
    mine.take()
    assert len(table.beats) == before + 1 and table.beats[-1] <= mine.bucket.last


def test_a_whole_share_is_booked_at_the_budgets_spacing_and_held_to_the_share_by_the_window():
    """Booked 1/share apart, a process raised from 4 to 10 (another rested) took 1.2 s to reach 10 (bench row 9);
    at the budget's spacing it uses what frees as it frees, and the window still holds it to its share."""
    clock = Clock()
    table = Table(clock, {"other": 5.0})
    mine = budget(table, 10, clock)
    went = releases(mine, 15)
    assert mine.rate == 5.0
    assert [round(b - a, 6) for a, b in zip(went[:5], went[1:5], strict=False)] == [0.1] * 4   # not 0.2 apart
    assert max(sum(1 for t in went if s <= t < s + 1) for s in went) <= 5, went                 # the share, per second
    table.others, table.wanting = {"other": 0.0}, 0   # the other rests, its window empty: it wants none, claims 0
    mine._due = clock.now            # this process counts at its next request
    more = releases(mine, 10)
    assert mine.rate == 10.0 and more[-1] - more[0] <= 1.0, more   # at once at the budget, not ramping


def test_in_turns_a_process_holds_one_request_a_second_and_yields_after_it():
    """Three wanting a budget of 1, the others claiming none: this one takes a whole share, sends, and claims
    again only once its window has emptied and YIELD_SECONDS have passed (the others may take it meanwhile)."""
    clock = Clock()
    table = Table(clock, {"other": 0.0, "another": 0.0})
    table.wanting = 2
    mine = budget(table, 1, clock)
    went = releases(mine, 3)
    assert mine.rate == 1.0
    gaps = [b - a for a, b in zip(went, went[1:], strict=False)]
    assert all(g >= ratelimit.WINDOW_SECONDS + ratelimit.YIELD_SECONDS for g in gaps), gaps


def test_out_of_turns_a_process_yields_no_more():
    """The others gone (or resting), a process that had its turn takes its next request at its window's pace."""
    clock = Clock()
    table = Table(clock, {"other": 0.0, "another": 0.0})
    table.wanting = 2
    mine = budget(table, 1, clock)
    first = releases(mine, 1)
    table.others, table.wanting = {}, 0
    went = first + releases(mine, 1)
    assert went[1] - went[0] < ratelimit.WINDOW_SECONDS + ratelimit.YIELD_SECONDS, went


def test_in_turns_a_process_says_so_at_most_once_a_minute(caplog):
    """The operator learns the budget is short for the instances the load brings, without a line per request."""
    import logging
    clock = Clock()
    table = Table(clock, {"other": 0.0, "another": 0.0})
    table.wanting = 2
    mine = budget(table, 1, clock)
    with caplog.at_level(logging.INFO, logger="handlers.clients.ratelimit"):
        releases(mine, 3)                # about 2.5 s
        clock.now += 60
        releases(mine, 1)
    said = [r.getMessage() for r in caplog.records if "taking turns" in r.getMessage()]
    assert said == ["Preservica budget: 3 processes want it, more than PRESERVICA_MAX_RPS=1: taking turns"] * 2
