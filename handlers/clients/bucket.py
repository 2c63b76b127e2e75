"""A one-token bucket that also counts: requests are booked 1/pace apart (pace: the rate, or the app's whole
budget for a process with a whole share of it: SharedBudget), and each is released only once fewer than `rate`
requests occupy the second before it. A request
occupies the window from its release until a second after its answer (`sending()`): Preservica counts
arrivals, and an arrival falls between the release and the answer, so any one-second window of arrivals
holds at most `rate` (ceil(rate) where it is not whole), however late a request arrives. One per process
for Preservica, shared by every thread that calls it, at the process's share of the app's budget
(SharedBudget below).

Why the answer and not the release: bench row 9 saw 12 requests in one second at the double at a limit of
10 (+1), with the releases holding 10: under load (14-18 processes on 2 cores) a request released on time
arrived late, next to ones released a second after it. Counting each request until its answer closes that
for any delay; it costs the answer's latency in rate (at 10 ms about 1%), and it caps the requests in
flight at the rate. Measured before (one process): booking alone let a late waker compress its neighbours
(a thread woke 99 ms after its slot and the next went 0.7 ms after it); booking keeps the mean rate."""
from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

WAKE_SECONDS = 0.05   # every request in flight: look again this often (and at each answer)
WINDOW_SECONDS = 1.0  # Preservica's limit is per second: a request occupies the window until this long after its answer


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, keep: float = WINDOW_SECONDS):
        self._clock, self._sleep = clock, sleep
        self._keep = max(WINDOW_SECONDS, keep)              # answers are kept this long: occupancy() looks back as far
        self._slot = self.last = float("-inf")   # the last booked slot; when the last request actually went
        self._turn = threading.Lock()             # callers pass one at a time; the wait is inside
        self._state = threading.Condition()       # what went and what is in flight, shared with the answers
        self._done: list[float] = []              # sorted: when each request of the last `keep` s was answered
        self._open = 0                            # released, not answered yet
        self._mine = threading.local()            # this thread's sending() block: how many it released
        self.set_rate(rate)

    @property
    def in_flight(self) -> int:
        return self._open

    def take(self, until: float = float("inf"), grace: float = 0.0) -> float | None:
        """Wait for the next slot; returns how long it waited, or None, having waited until `until`, when the
        slot is more than `grace` later (the caller has something to do first: SharedBudget counts). Inside `sending()` the
        request occupies the window until the block ends; outside, from its release only. time.sleep sleeps at
        least as long as asked (docs.python.org/3/library/time.html#time.sleep); a release is stamped after
        the wait."""
        with self._turn:
            start = self._clock()
            booked = max(start, self._slot + 1.0 / self.pace)
            while True:
                now = self._clock()
                with self._state:
                    free = self._free_at(now)
                    if free is not None:
                        break
                    if now >= until:
                        return None
                    # as many in flight as the rate: the next answer frees one
                    self._state.wait(min(WAKE_SECONDS, until - now))
            slot = max(booked, free)
            if slot > max(until + grace, now):   # a slot due now goes whatever `until` says: a caller always gets through
                if until > now:
                    self._sleep(until - now)
                return None
            if slot > now:   # answers meanwhile only move requests from in flight to answered: still free then
                self._sleep(slot - now)
            # The next is booked from this one's slot, not from when it went: one late wake delays one request
            self._slot, self.last = booked, max(self._clock(), slot)
            with self._state:
                if getattr(self._mine, "depth", 0):
                    self._open += 1
                    self._mine.released += 1
                else:
                    bisect.insort(self._done, self.last)
            return self.last - start

    def _free_at(self, now: float) -> float | None:
        """When fewer than the rate occupy the second before: now, when the k-th latest answer is a second
        old, or None while every one is in flight. Time and answers only lower the count; only take raises it."""
        del self._done[:bisect.bisect_right(self._done, now - self._keep)]
        room = self._limit - self._open
        if room <= 0:
            return None
        within = len(self._done) - bisect.bisect_right(self._done, now - WINDOW_SECONDS)
        return now if within < room else max(now, self._done[-room] + WINDOW_SECONDS)

    def occupancy(self, now: float, window: float) -> tuple[int, float]:
        """(how many requests are in flight or were answered within `window` s before `now` (at most `keep`),
        when that count next falls with time alone: inf while none was answered within it)."""
        with self._state:
            first = bisect.bisect_right(self._done, now, key=lambda t: t + window)   # the same sum as the fall's
            recent = len(self._done) - first
            return self._open + recent, (self._done[first] + window if recent else float("inf"))

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """Every request this thread releases inside the block (re-sends included) occupies the window until
        the block ends: wrap the send, so that the block ends after the answer (or the error)."""
        mine = self._mine
        depth = getattr(mine, "depth", 0)
        if depth == 0:
            mine.released = 0
        mine.depth = depth + 1
        try:
            yield
        finally:
            mine.depth = depth
            if depth == 0 and mine.released:
                with self._state:
                    now = max(self._clock(), self.last)
                    self._open -= mine.released
                    for _ in range(mine.released):
                        bisect.insort(self._done, now)
                    self._state.notify_all()

    def set_rate(self, rate: float, pace: float | None = None) -> None:
        """A new rate from the next request on, booked 1/pace apart (at least the rate; default the rate). After a
        cut the next is booked where the second before it holds fewer than the new rate, and the ones after it
        1/pace apart (not in a burst up to the old rate)."""
        with self._state:
            cut = float(rate) < getattr(self, "rate", float("inf"))
            self.rate = float(rate)
            self.pace = max(self.rate, float(pace)) if pace else self.rate
            self._limit = max(1, math.ceil(self.rate - 1e-9))
            if cut:
                free = self._free_at(self._clock())
                if free is not None:
                    self._slot = max(self._slot, free - 1.0 / self.pace)
