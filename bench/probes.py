"""Timers around the app's three stages, installed in the process that serves it (the local runner).

The functions registered with the Functions host look these up at call time
(`intake.handle`, `dispatch.dispatch`, `action_runner.run`), so wrapping the module attributes
measures every invocation without touching the app. Per stage: calls, wall seconds (summed over
threads, so waiting on storage or Preservica counts), CPU seconds of the calling thread
(`time.thread_time`), and the first start / last end (epoch seconds) for a timeline.
"""
from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict


class StageClock:
    def __init__(self):
        self._lock = threading.Lock()
        self.stages: dict[str, dict] = defaultdict(self._blank)
        self._undo: list = []

    @staticmethod
    def _blank() -> dict:
        return {"calls": 0, "errors": 0, "wall": 0.0, "cpu": 0.0, "first": None, "last": None}

    def reset(self) -> None:
        with self._lock:
            self.stages.clear()

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self.stages.items()}

    def _wrap(self, fn, name_of):
        clock = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = name_of(*args, **kwargs)
            start, cpu = time.time(), time.thread_time()
            w = time.perf_counter()
            failed = True
            try:
                result = fn(*args, **kwargs)
                failed = False
                return result
            finally:
                wall, used, end = time.perf_counter() - w, time.thread_time() - cpu, time.time()
                with clock._lock:
                    s = clock.stages[name]
                    s["calls"] += 1
                    s["errors"] += failed
                    s["wall"] += wall
                    s["cpu"] += used
                    s["first"] = start if s["first"] is None else min(s["first"], start)
                    s["last"] = end if s["last"] is None else max(s["last"], end)
        return timed

    def install(self) -> "StageClock":
        from handlers.actions import runner as action_runner
        from handlers import dispatch, intake
        for module, attr, name_of in ((intake, "handle", lambda *a, **k: "intake"),
                                      (dispatch, "dispatch", lambda *a, **k: "dispatch"),
                                      (action_runner, "run", lambda action, *a, **k: f"action_{action}")):
            original = getattr(module, attr)
            setattr(module, attr, self._wrap(original, name_of))
            self._undo.append((module, attr, original))
        return self

    def remove(self) -> None:
        for module, attr, original in reversed(self._undo):
            setattr(module, attr, original)
        self._undo = []
