"""One Preservica budget for the whole app: each process's share of PRESERVICA_MAX_RPS, through a TokenBucket
(bucket.py) at that share, re-divided as instances come, go and idle (heartbeat rows, heartbeat.py)."""
from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator

from .bucket import WINDOW_SECONDS, TokenBucket as TokenBucket
from .budget_idle import HOLD_SECONDS as HOLD_SECONDS, IDLE_SECONDS as IDLE_SECONDS, REST_SECONDS as REST_SECONDS, Idle

# ---- one budget for the whole app ---------------------------------------------------------------
# PRESERVICA_MAX_RPS (B) is the archive's total. Each process that calls Preservica keeps a heartbeat row
# (heartbeat.py) carrying its CLAIM. Why no one-second window W = [x, x+1) sees more than B arrivals in all:
# a request arrives between its release and its answer, so those arriving in W went before x + 1 and were
# answered at x or later. O_q(t): how many of q's requests at t are in flight or were answered after t - 1.
#  1. A process releases a request only when O < s, s its share then (TokenBucket): O reaches s only by a
#     release, and otherwise only falls. The last released of q's requests arriving in W (at t_q < x + 1)
#     finds the others there still occupying: they number at most s_q(t_q).
#  2. A count writes the claim, then reads the others' (Table storage is strongly consistent: heartbeat.py),
#     and takes a share of at most B less the claims it read, and at most its own claim. The claim is at least
#     the share it had and O at the write (claim_floor; answers are stamped after they came): by (1), until its next
#     write, O and the share stay at most that claim. A raise is written before it is used; a cut is written
#     down as the requests of the higher share age out (a count is due at each fall of O, within a second; a slot
#     due within COUNT_GRACE_SECONDS goes first, the higher claim meanwhile being safe).
#     A row goes (idle, leave) only when O is 0 over HOLD_SECONDS; a process stops using a share TTL_SECONDS -
#     HOLD_SECONDS after the count that gave it (its row lives TTL_SECONDS in the others' count). A row may lapse
#     otherwise only claiming 0 with no share held: O is 0 then, and a share comes only from a count, a write.
#  Let w_q be the write of the count that gave s_q(t_q), and p* the process whose w is latest: it read (at r)
#  after every w_q and before t_p* < x + 1. The claim it read of q is q's latest write before r. If r <= t_q,
#  that is w_q's (a later one would have set the share): at least s_q(t_q). If r > t_q, q's requests arriving in
#  W went before r and were answered at x > r - 1 or later, so they occupied at r: by (2), at most that claim.
#  Either way the claim covers q's arrivals in W, and the row was live; so p*'s share, and with it its
#  arrivals, is at most B less the others' arrivals. The + 1 of B + 1 is spare. Where B is below the processes
#  wanting, shares stay whole: each may claim one request a second when one is free, and gives it back after its
#  turn's requests (turns: _yielding, _turn_length). Limits: a B not whole gives fractions (never in the app:
#  PRESERVICA_MAX_RPS is an integer); a request given up on (timeout) ends its block then, and could still arrive
#  later (inferred rare).
# A newcomer (its first call, or after resting) registers wanting, with a claim of what its window holds (0 when
# new), then claims what it saw free of its fair share (alone: the whole budget): two writes and two queries, tens
# of ms. Its row makes the others cut to their fair shares at their next count; it claims a share only once it is
# free. Fair shares divide the budget among the rows that want one. Busy, a process counts every BEAT_SECONDS,
# sooner while it has less than its fair share or holds a cut, never sooner than the live count allows (_spread).
# A watcher thread watches for no request wanted:
# after REST_SECONDS its row claims only what its window holds and wants none (the others' fair shares leave it
# out at their next count), after IDLE_SECONDS with its window empty the row goes. A dead one lapses in TTL_SECONDS.
# A count that fails (storage down) gives the floor, budget / the deployment's maximum instance count
# (MAXIMUM_INSTANCE_COUNT): never unlimited, never the whole budget.
BEAT_SECONDS = 0.5       # how soon a busy process sees another join or leave: two table operations each
TTL_SECONDS = 4.0
STARVED_SECONDS = 0.1    # how soon a process with less than its fair share counts again
YIELD_SECONDS = 0.25     # in turns, how long a process that had its turn waits before it claims again: the
                         # others, counting while they wait (jittered), take the share first
COUNT_GRACE_SECONDS = 0.05   # a slot this close after a count falls due goes first, and the next caller counts:
                             # counting first held that slot for the count's table round trip, and through the
                             # window every later one (bench row 9: 12 ms each half second, 2.2% of the budget)
TAKING_TURNS = "taking turns"   # the end of the line a process in turns logs (bench row 9 counts it)
PARTITION_ENTITIES = 1000   # rows a second all counts together may read from the heartbeat partition: half of
                            # Azure's 2,000 entities a second for one partition (learn.microsoft.com "Scalability and
                            # performance targets for Table storage"; that a query's rows count toward it is inferred)
RETRY_SECONDS = 1.0      # how soon a failed count is tried again (a warning each): a caller at the floor waits on


class SharedBudget(Idle):
    """A TokenBucket at this process's share of `budget`, re-divided as instances come, go and idle."""

    def __init__(self, budget: float, max_instances: int = 100, heartbeat=None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 watch: bool = True):
        self.budget = float(budget)
        self.floor = self.budget / max(1, max_instances)
        self._heartbeat = heartbeat     # None: the app's table (storage.default()), looked up at each count
        self._clock, self._sleep = clock, sleep
        self.bucket = TokenBucket(self.budget, clock, sleep, keep=HOLD_SECONDS)
        self.share = 0.0                # the rate in use; 0: none held, count before any request
        self.claim = 0.0                # what this process's row says
        self.live: int | None = None
        self.joined = False             # this process's row is there with a claim (not only registered)
        self.resting = False            # its row wants none: the next request registers again
        self._fair = self._free = self.budget   # its fair share, and what it last saw free
        self._due = self._held_until = clock()
        self._last = clock()            # the last release, or count: idle is measured from it
        self._turn_taken, self._yield_until = 0, float("-inf")   # turns: requests had this turn; asks again after
        self._said_turns = float("-inf")   # when it may say again that it takes turns
        self._hb = None                 # the heartbeat of the last count: the watcher deletes its row
        self._gate = threading.Lock()
        self._watch, self._watching = watch, False   # watch=False where the clock is not the real one (tests)

    @property
    def rate(self) -> float:
        return self.share

    def take(self) -> float:
        """Wait for this process's next slot at its share. Callers pass one at a time, each released at the
        share in force when its turn comes. A count due is done by the caller at the head, before its slot
        (unless that slot is within COUNT_GRACE_SECONDS of it: then by the next caller)."""
        waited = 0.0
        with self._gate:
            while True:
                now = self._clock()
                if now >= self._due or now >= self._held_until:
                    self._count(now)
                if self.share > 0:   # a count falling due meanwhile comes first (a cut written down, a join seen)
                    began = self._clock()
                    until = min(self._due, self._held_until)   # the row's lapse has no grace: count before it
                    went = self.bucket.take(until=until, grace=min(COUNT_GRACE_SECONDS, self._held_until - until))
                    if went is None:
                        waited += self._clock() - began
                        continue
                    waited += went
                    self._last = max(self._last, self.bucket.last)
                    self._turn_taken += self._turns()
                    return waited
                pause = max(0.01, self._due - self._clock())   # none free yet: look again when due
                self._sleep(pause)
                waited += pause

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """TokenBucket.sending: each request occupies this process's window until a second after its answer,
        and its claim (claim_floor) as long."""
        try:
            with self.bucket.sending():
                yield
        finally:
            self._last = max(self._last, self._clock())   # a lost race only ages _last; idle also asks the bucket

    def claim_floor(self, now: float) -> float:
        """How many of this process's requests occupy its window (in flight, or answered within the last second):
        its claim may not go below it, however the share was cut meanwhile. The bucket's own count, not a longer
        one: a longer look-back made a process at share s claim s + 1 (bench row 9: a joiner got 4 of 5)."""
        return float(self.bucket.occupancy(now, WINDOW_SECONDS)[0])

    def _whole_shares(self) -> bool:
        """Whether shares are whole requests a second: the budget whole (in the app always: PRESERVICA_MAX_RPS is
        an integer of at least 1). With fewer whole requests than processes wanting them, each process's fair
        share is one, taken in turns (_fair_share)."""
        return self.budget == int(self.budget)

    def _turns(self) -> bool:
        """More processes want the budget than it has whole requests a second (PRESERVICA_MAX_RPS=1 with two busy
        instances). Fractions of a request a second (1/3 each of 1) kept the budget on average only: three
        processes could send in the same second. Each now holds a whole share while one is free, in turns."""
        return self.live is not None and self.live > self.budget and self._whole_shares()

    def _yielding(self, now: float) -> bool:
        """In turns, a process that has had its turn's requests gives the share back once its window empties (its
        claim cannot fall before: claim_floor), then asks again only YIELD_SECONDS later; meanwhile it claims none.
        Out of turns (the others left or rest), it yields no more."""
        if not self._turns():
            self._turn_taken, self._yield_until = 0, float("-inf")
            return False
        if self._turn_taken >= self._turn_length():
            if self.claim_floor(now) == 0:
                self._turn_taken, self._yield_until = 0, now + YIELD_SECONDS
            return True
        return self._turn_taken == 0 and now < self._yield_until

    def _turn_length(self) -> int:
        """Requests a turn holds: one, or as many as the seconds between a process's counts (_spread), so that the
        hand-overs, each waiting on a count that reads the whole partition, are no more frequent than the counts."""
        return max(1, int(self._spread()))

    def _whole(self, rate: float) -> float:
        """Whole requests per second where shares are whole: a process at s/s releases at most ceil(s) in a
        one-second window, so whole shares summing to the budget keep the total within it."""
        return float(int(rate + 1e-9)) if self._whole_shares() else rate

    def _pace(self) -> float | None:
        """How far apart this process's requests are booked: a whole share at the app's budget, 1/budget s apart.
        Only the window holds a process to its share (proof, step 1), and a share freed by another (a rest, a
        leave, a cut written down) is then used as it frees, not at the old share's spacing (bench row 9: a
        process raised from 4 to 10 took 1.2 s to reach it). A budget that is not whole gives fractions, which
        keep their own spacing (None); so does the floor (set_rate without a pace)."""
        return self.budget if self._whole_shares() else None

    def _fair_share(self, live: int, rank: int) -> float:
        if self.budget != int(self.budget):
            return self.budget / live
        if self.budget < live:   # turns: one whole request a second each, while one is free (_yielding)
            return 1.0
        base, extra = divmod(int(self.budget), live)
        return float(base + (1 if rank < extra else 0))

    def _beat(self, hb, claim: float) -> dict:
        others = hb.beat(claim)
        self.claim, self.live = claim, 1 + getattr(hb, "wanting", len(others))
        self._fair = self._fair_share(self.live, getattr(hb, "rank", 0))
        if self._turns() and self._clock() >= self._said_turns:   # the operator learns the budget is short
            import logging
            self._said_turns = self._clock() + 60.0                # at most once a minute
            logging.getLogger(__name__).info("Preservica budget: %d processes want it, more than "
                                             "PRESERVICA_MAX_RPS=%g: " + TAKING_TURNS, self.live, self.budget)
        return others

    def _count(self, started: float) -> None:
        yielding = self._yielding(started)

        def cap() -> float:   # the fair share as the latest write's count saw it; none while yielding its turn
            return 0.0 if yielding else self._fair
        try:
            hb = self._heartbeat
            if hb is None:
                from . import heartbeat
                hb = heartbeat.default(TTL_SECONDS)   # None: no app storage configured
            if hb is None:   # a lone process (the operator's CLI, a local run): the Functions host needs storage
                others, self.claim, self.live, self._fair = {}, self.budget, 1, self.budget
            else:
                if not self.joined or self.resting:   # register: the others see one more row wanting, and cut
                    self._free = self.budget - sum(self._beat(hb, self.claim_floor(started)).values())
                    self.joined, self.resting = True, False
                    self._start_watcher()
                # Claim what it uses or may use: of its fair share, no more than it last saw free. (Claiming the
                # fair share while the others still held theirs made them each see too little free, and cut
                # below their fair shares: bench row 9 saw 2 requests in a second at a budget of 10.)
                want = self._whole(max(0.0, min(cap(), self._free)))
                others = self._beat(hb, max(min(self.share, cap()), want, self.claim_floor(started)))
                more = self._whole(max(0.0, min(cap(), self.budget - sum(others.values()))))
                if more > self.claim:   # more is free than this row claims: claim it before using it
                    others = self._beat(hb, more)
        except Exception as exc:  # storage down, or refusing: the floor, never unlimited
            import logging
            self.live, self.share = None, self.floor
            self.joined = False   # back, it registers again rather than claim a fair share from before
            self.bucket.set_rate(self.floor)
            # The floor needs no row. Tried again RETRY_SECONDS after this count's end, not its start: a failing count
            # may outlast that (the SDK's own retries), and every request would then count again, each as slowly.
            self._held_until, self._due = float("inf"), self._clock() + RETRY_SECONDS
            logging.getLogger(__name__).warning(
                "live instances not counted (%s): Preservica share is the floor, %.3g/s", type(exc).__name__, self.floor)
            return
        self._hb = hb
        self._free = free = self.budget - sum(others.values())
        share = self._whole(max(0.0, min(cap(), free, self.claim)))
        if share > 0:
            self.bucket.set_rate(share, self._pace())
        # No release happens in between (the caller holds the gate): the window only empties from here on.
        held, drops = self.bucket.occupancy(self._clock(), WINDOW_SECONDS)
        if hb is not None and self.claim > max(share, held):   # a cut: written down now, not a beat later (a joiner
            try:                                               # waits on it: bench row 9 lost a second per join)
                self._free = self.budget - sum(self._beat(hb, max(share, float(held))).values())
            except Exception:   # the higher claim stays in the row (safe); the next count writes it down
                pass
        self.share, now = share, self._clock()
        self._last = max(self._last, now)
        # The others stop counting our row TTL after its write: stop relying on it HOLD_SECONDS before. A row that
        # claims nothing and a process with no share rely on nothing: it may lapse while the process waits (spread).
        self._held_until = float("inf") if share == 0 and self.claim == 0 else started + TTL_SECONDS - HOLD_SECONDS
        spread = self._spread()
        if share < self._fair and self._turns():
            # Waiting for a turn: jittered (processes counting together would take the share together), and less
            # often the more processes wait, so that the table's load follows the budget, not the instance count.
            # A window falling (its claim to write down) is counted at once.
            wait = max(STARVED_SECONDS * self.live / self.budget, spread) * random.uniform(0.5, 1.5)
            self._due = min(now + wait, drops)
        elif share < self._fair:
            self._due = now + max(STARVED_SECONDS, spread)
        elif held > max(share, self._fair):   # holding a cut: write the claim down as its requests age out
            self._due = min(now + max(BEAT_SECONDS, spread), drops)
        else:
            self._due = now + max(BEAT_SECONDS, spread)

    def _spread(self) -> float:
        """How far apart this process's counts must be for the live processes' counts, each reading every row,
        to read at most PARTITION_ENTITIES rows a second between them (n processes, n rows: n * n / gap). A
        process using a share still counts before its row lapses (_held_until)."""
        return float(self.live or 1) ** 2 / PARTITION_ENTITIES
