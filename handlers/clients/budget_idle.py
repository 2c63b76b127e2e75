"""The idle half of ratelimit.SharedBudget: a process's share of the Preservica budget given back when it goes
quiet. After REST_SECONDS with no request wanted its row wants none and claims only what its window holds; after
IDLE_SECONDS with its window empty the row goes. A watcher thread per budget looks when it may have gone idle."""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .bucket import WINDOW_SECONDS, TokenBucket

HOLD_SECONDS = 1.1       # the window, and 0.1 s to spare: a row goes only this long after its last answer
REST_SECONDS = 0.3       # no request wanted for this long: want none, claim only the window (bench row 9: a
                         # share held 1.2 s unused each time a process ran out of work)
IDLE_SECONDS = 1.2       # no request wanted for this long: give the row back (at least HOLD_SECONDS)


class Idle:
    """Mixed into SharedBudget, whose state these methods read and write under its gate."""
    bucket: TokenBucket
    share: float
    claim: float
    live: int | None
    joined: bool
    resting: bool
    _due: float
    _last: float
    _hb: Any
    _gate: threading.Lock
    _clock: Callable[[], float]
    _watch: bool
    _watching: bool

    def claim_floor(self, now: float) -> float:
        raise NotImplementedError

    def _start_watcher(self) -> None:
        """One thread per budget, started with its first row; it holds only a weak reference, so a budget
        rebuilt with new settings takes its old watcher with it."""
        if self._watch and not self._watching:
            self._watching = True
            threading.Thread(target=_watcher, args=(weakref.ref(self),), name="preservica-budget", daemon=True).start()

    def _off_gate(self, step):
        """`step(now)` under the gate, only if no caller holds it (one waiting for its slot: not idle); what it
        returns is for the storage write the caller then makes outside the gate (a caller arriving meanwhile
        does not wait for storage, and the write is only over the row as this process last wrote it)."""
        if not self._gate.acquire(blocking=False):
            return None
        try:
            return step(self._clock())
        finally:
            self._gate.release()

    def rest_if_idle(self) -> bool:
        """No request wanted for REST_SECONDS (no caller waiting, none in flight): the row claims only what this
        process's window still holds and wants none, and the share is 0 until the next request registers again;
        resting, the claim is written down again as the window empties (If-Match, outside the gate)."""
        def step(now):
            held = self.claim_floor(now)
            if (not self.joined or self.bucket.in_flight or now - self._last < REST_SECONDS
                    or (self.resting and held >= self.claim)):
                return None
            self.share, self.resting, self._due = 0.0, True, now   # no release before a count raises the claim
            return self._hb, getattr(self._hb, "etag", None), held
        todo = self._off_gate(step)
        if todo is None:
            return False
        hb, etag, held = todo
        try:
            written = hb.rest(held, etag)
        except Exception:   # storage down, or a count wrote the row since: it claims what it claimed (safe)
            return False
        with self._gate:
            if hb.etag == etag:   # no count since: the leave deletes this write
                hb.etag, self.claim = written, held
        return True

    def release_if_idle(self) -> bool:
        """No request wanted for IDLE_SECONDS and none in the window over HOLD_SECONDS: delete this process's
        row (If-Match, outside the gate: if a caller registered again first, its row stays). The next request
        registers again, as a newcomer."""
        def step(now):
            if not self.joined or self.bucket.occupancy(now, HOLD_SECONDS)[0] or now - self._last < IDLE_SECONDS:
                return None
            self.share = self.claim = 0.0
            self.live, self.joined, self.resting, self._due = None, False, False, now
            return self._hb, getattr(self._hb, "etag", None)
        todo = self._off_gate(step)
        if todo is None:
            return False
        hb, etag = todo
        try:
            hb.leave(etag)
        except Exception:   # storage down, or the row written again since: it lapses in TTL_SECONDS or stays
            pass
        return True


def _watcher(ref) -> None:
    """Looks when the last release or answer says the budget may have gone idle: rests it after REST_SECONDS,
    writes its claim down as its window empties, gives its row back after IDLE_SECONDS."""
    pause = IDLE_SECONDS
    while True:
        time.sleep(pause)
        me = ref()
        if me is None:
            return
        pause = IDLE_SECONDS
        if me.joined:
            now = me._clock()
            pause = me._last + REST_SECONDS - now
            if pause <= 0:
                if me.resting and me.release_if_idle():
                    pause = IDLE_SECONDS
                else:
                    me.rest_if_idle()
                    falls = me.bucket.occupancy(now, WINDOW_SECONDS)[1]   # the window's next fall, or a look soon
                    pause = min(max(falls - now, 0.02), REST_SECONDS / 2)
        del me
