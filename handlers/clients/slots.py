"""A per-process cap on concurrent work that holds a scarce resource (temporary disk, a paid call)."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from ..core.errors import SlotsBusy


class Slots:
    """At most `n` holders at once; others wait up to `wait` seconds, then SlotsBusy naming `setting`
    (the queue retries). `waiting` counts those held back (tests and telemetry)."""

    def __init__(self, n: int, wait: float, setting: str):
        self.n, self.wait, self.setting, self.waiting = n, wait, setting, 0
        self._free = threading.BoundedSemaphore(n)
        self._lock = threading.Lock()

    @contextmanager
    def held(self):
        with self._lock:
            self.waiting += 1
        try:
            got = self._free.acquire(timeout=self.wait)
        finally:
            with self._lock:
                self.waiting -= 1
        if not got:
            raise SlotsBusy(f"all {self.n} slots of this instance stayed busy for {self.wait:.0f} s "
                              f"({self.setting}); the queue retries")
        try:
            yield
        finally:
            self._free.release()
