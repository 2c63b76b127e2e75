"""A token bucket holding one token: acquisitions are spaced 1/rate apart, so any one-second window
sees at most rate + 1 of them (a larger bucket would let a pause be followed by a burst of up to
twice the rate, which is not what PRESERVICA_MAX_RPS promises). One per process for Preservica,
shared by every thread that calls it, at the process's share of the app's budget (SharedBudget below)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = float(rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = 1.0
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for a token; returns how long it waited. The wait happens outside the lock, and a
        token is reserved before waiting, so waiters are served in turn without busy loops."""
        with self._lock:
            now = self._clock()
            self._tokens = min(1.0, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            self._sleep(wait)
        return wait

    def set_rate(self, rate: float) -> None:
        """A new rate from the next acquisition on; a reserved wait is not shortened or lengthened."""
        with self._lock:
            now = self._clock()
            self._tokens = min(1.0, self._tokens + (now - self._stamp) * self.rate)
            self._stamp, self.rate = now, float(rate)


# ---- one budget for the whole app ---------------------------------------------------------------
# PRESERVICA_MAX_RPS is the archive's total. Each process that calls Preservica keeps a heartbeat row
# (heartbeat.py) carrying its CLAIM: a rate it may be using. Invariant: a row's claim is never below what its
# process uses (a raise is written before it is used; a cut is used before it is written), and a process uses
# at most budget - (the claims of the other live rows it read after its own write). Of any two processes one
# read after the other's write (Table storage is strongly consistent: see heartbeat.py), so the shares in use
# never sum above the budget, however instances come and go.
# A process counts synchronously before it uses a share it does not hold (its first call, after an idle spell
# longer than its row lives, or while it has none): one write and one query, tens of ms. Alone, it gets the
# whole budget at once. Busy, it counts again every BEAT_SECONDS, while the bucket refills. A row lives
# TTL_SECONDS: an idle or dead process's share returns to the others within TTL_SECONDS + BEAT_SECONDS.
# A count that fails (storage down) gives the floor, budget / the deployment's maximum instance count
# (MAXIMUM_INSTANCE_COUNT): never unlimited, never the whole budget.
BEAT_SECONDS = 1.0
TTL_SECONDS = 4.0
STARVED_SECONDS = 0.25   # how soon a process with less than its fair share counts again


class SharedBudget:
    """A TokenBucket at this process's share of `budget`, re-divided as instances come and go."""

    def __init__(self, budget: float, max_instances: int = 100, heartbeat=None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.budget = float(budget)
        self.floor = self.budget / max(1, max_instances)
        self._heartbeat = heartbeat     # None: the app's table (storage.default()), looked up at each count
        self._clock, self._sleep = clock, sleep
        self.bucket = TokenBucket(self.budget, clock, sleep)
        self.share = 0.0                # the rate in use; 0: none held, count before any request
        self.claim = 0.0                # what this process's row says (>= share)
        self.live: int | None = None
        self._fair = self.budget        # what to claim next: all of it until others are seen
        self._due = self._held_until = clock()
        self._gate = threading.Lock()

    @property
    def rate(self) -> float:
        return self.share

    def take(self) -> float:
        """Wait for a token at this process's share. Callers pass one at a time, each waiting for its slot at
        the share in force when its turn comes, so a cut holds from the next request on (a bucket's reserved
        waits would run on at the old rate while the others, reading the cut in this row, raise). A count
        due is done by the caller at the head, inside its wait for the slot (the bucket refills meanwhile)."""
        waited = 0.0
        with self._gate:
            while True:
                now = self._clock()
                if now >= self._due or now >= self._held_until:
                    self._count(now)
                if self.share > 0:
                    return waited + self.bucket.take()
                pause = max(0.01, self._due - self._clock())   # none free yet: look again when due
                self._sleep(pause)
                waited += pause

    def _whole(self, rate: float) -> float:
        """Whole requests per second where the budget is whole: a bucket at r/s sends up to ceil(r) in a
        one-second window, so whole shares summing to the budget keep the total within it."""
        return float(int(rate + 1e-9)) if self.budget == int(self.budget) and self.budget >= 1 else rate

    def _fair_share(self, live: int, rank: int) -> float:
        if self.budget < live or self.budget != int(self.budget):
            return self.budget / live
        base, extra = divmod(int(self.budget), live)
        return float(base + (1 if rank < extra else 0))

    def _count(self, started: float) -> None:
        claim = max(self.share, self._fair)   # never below the share in use
        try:
            hb = self._heartbeat
            if hb is None:
                from . import heartbeat
                hb = heartbeat.default(TTL_SECONDS)   # None: no app storage configured
            others = None if hb is None else hb.beat(claim)   # {row: claim}: the other live rows
        except Exception as exc:  # storage down, or refusing: the floor, never unlimited
            import logging
            self.live, self.share = None, self.floor
            self.bucket.set_rate(self.floor)
            # The floor needs no row; try again in a beat (a failing count may take the storage timeout, but
            # at the floor the next slot is further off than that).
            self._held_until, self._due = float("inf"), started + BEAT_SECONDS
            logging.getLogger(__name__).warning(
                "live instances not counted (%s): Preservica share is the floor, %.3g/s", type(exc).__name__, self.floor)
            return
        if others is None:    # a lone process (the operator's CLI, a local run): the Functions host needs storage
            others = {}
        self.claim, self.live = claim, 1 + len(others)
        self._fair = self._fair_share(self.live, getattr(hb, "rank", 0))
        free = self.budget - sum(others.values())
        share = self._whole(max(0.0, min(self._fair, free, claim)))
        if share > 0:
            self.bucket.set_rate(share)
        self.share = share
        # The others stop counting our row TTL after its write: stop relying on it a beat before.
        self._held_until = started + TTL_SECONDS - BEAT_SECONDS
        self._due = self._clock() + (BEAT_SECONDS if share >= self._fair else STARVED_SECONDS)
