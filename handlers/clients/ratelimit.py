"""A token bucket holding one token: acquisitions are spaced 1/rate apart, so any one-second window
sees at most rate + 1 of them (a larger bucket would let a pause be followed by a burst of up to
twice the rate, which is not what PRESERVICA_MAX_RPS promises). One per process for Preservica,
shared by every thread that calls it."""
from __future__ import annotations

import threading
import time
from typing import Callable


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
