"""A token bucket holding one token: acquisitions are spaced 1/rate apart, so any one-second window
sees at most rate + 1 of them (a larger bucket would let a pause be followed by a burst of up to
twice the rate, which is not what PRESERVICA_MAX_RPS promises). One per process for Preservica,
shared by every thread that calls it, at the process's share of the app's budget (SharedBudget)."""
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
# PRESERVICA_MAX_RPS is the archive's total: each process takes budget / (live processes). A process
# counts (and renews its own heartbeat row) when it calls Preservica and BEAT_SECONDS have passed since
# it last counted; a row is live for TTL_SECONDS, so a dead process's share returns within TTL_SECONDS +
# BEAT_SECONDS. A process that joins (or comes back after its row expired) takes only the floor for
# PROBATION_SECONDS, the time the others take to count it and shrink their shares: the total stays
# within the budget (plus the floor) while instances come. A count that cannot be read (storage down)
# gives the floor, the budget divided by FLOOR_INSTANCES: never unlimited, never the whole budget.
BEAT_SECONDS = 5.0
TTL_SECONDS = 30.0
PROBATION_SECONDS = BEAT_SECONDS + 1.0
FLOOR_INSTANCES = 100  # the Bicep maximumInstanceCount default: the most processes the floor assumes


class SharedBudget:
    """A TokenBucket at this process's share of `budget`, re-divided as instances come and go."""

    def __init__(self, budget: float, heartbeat=None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.budget = float(budget)
        self.floor = self.budget / FLOOR_INSTANCES
        self._heartbeat = heartbeat
        self._clock = clock
        self.bucket = TokenBucket(self.floor, clock, sleep)  # until the first count: the floor
        self.live: int | None = None
        self._due = clock()
        self._counted: float | None = None  # when the last count succeeded
        self._joined = 0.0
        self._beating = threading.Lock()

    @property
    def rate(self) -> float:
        return self.bucket.rate

    def take(self) -> float:
        if self._clock() >= self._due and self._beating.acquire(blocking=False):
            try:  # one thread counts; the others go on at the current share meanwhile
                self._beat()
            finally:
                self._beating.release()
        return self.bucket.take()

    def _share(self, live: int) -> float:
        """Whole requests per second where the budget allows (the remainder to the first processes by id):
        a bucket at r/s sends at most ceil(r) in any second, so whole shares that sum to the budget keep
        the app's total within it; fractional ones would each round up."""
        if self.budget < live or self.budget != int(self.budget):
            return self.budget / live
        base, extra = divmod(int(self.budget), live)
        return float(base + (1 if getattr(self._heartbeat, "rank", 0) < extra else 0))

    def _beat(self) -> None:
        import logging
        now = self._clock()
        try:
            if self._heartbeat is None:
                from . import heartbeat
                self._heartbeat = heartbeat.default(TTL_SECONDS)
            self.live = self._heartbeat.beat()
        except Exception as exc:  # storage down, or refusing: the floor, never unlimited
            self.live, self._counted = None, None
            logging.getLogger(__name__).warning(
                "live instances not counted (%s): Preservica share is the floor, %.3g/s", type(exc).__name__, self.floor)
        else:
            if self._counted is None or now - self._counted > TTL_SECONDS:
                self._joined = now  # new to the others (or expired from their count): on probation
            self._counted = now
        on_probation = self._counted is None or now - self._joined < PROBATION_SECONDS
        share = self.floor if on_probation else max(self.floor, self._share(self.live or 1))
        self._due = now + BEAT_SECONDS if not on_probation or self._counted is None else self._joined + PROBATION_SECONDS
        if share != self.bucket.rate:
            self.bucket.set_rate(share)
