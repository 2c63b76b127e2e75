"""Installed in the process that serves the app (the local runner, in the benchmark's process).

StageClock: timers around the app's three stages. The functions registered with the Functions host
look these up at call time (`intake.handle`, `dispatch.dispatch`, `action_runner.run`), so wrapping
the module attributes measures every invocation without touching the app. Per stage: calls, wall
seconds (summed over threads, so waiting on storage or Preservica counts), CPU seconds of the calling
thread (`time.thread_time`), and the first start / last end (epoch seconds) for a timeline. An action
message carries a batch of events, so for the actions it also counts the events of each invocation
(the list `runner.run` returns: `events`) and those it performed (the non-None entries: `performed`;
None is an event finished or claimed by another message); for the dispatcher, the events it routed.
A stage's CPU includes the work it hands to thread pools (the dispatcher's Preservica snapshots and
queue puts, an action's batch of events performed four at a time): `ThreadPoolExecutor.submit` is
wrapped while installed (a bench-only seam), so a task submitted from inside a stage is timed with
its worker thread's CPU clock and added to that stage (`pool_cpu`, also included in `cpu`).
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
        self._current = threading.local()   # .stage: the stage this thread works for now

    @staticmethod
    def _blank() -> dict:
        return {"calls": 0, "errors": 0, "wall": 0.0, "cpu": 0.0, "pool_cpu": 0.0, "first": None, "last": None,
                "events": 0, "performed": 0}

    def reset(self) -> None:
        with self._lock:
            self.stages.clear()

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self.stages.items()}

    def performed(self, stage: str) -> int:
        """Events the stage performed since the last reset (for an action: non-None outcomes)."""
        with self._lock:
            s = self.stages.get(stage)
            return s["performed"] if s else 0

    def _wrap(self, fn, name_of):
        clock = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = name_of(*args, **kwargs)
            start, cpu = time.time(), time.thread_time()
            w = time.perf_counter()
            failed, result = True, None
            outer, clock._current.stage = getattr(clock._current, "stage", None), name
            try:
                result = fn(*args, **kwargs)
                failed = False
                return result
            finally:
                clock._current.stage = outer
                wall, used, end = time.perf_counter() - w, time.thread_time() - cpu, time.time()
                events, performed = _events(result)
                with clock._lock:
                    s = clock.stages[name]
                    s["calls"] += 1
                    s["errors"] += failed
                    s["wall"] += wall
                    s["cpu"] += used
                    s["events"] += events
                    s["performed"] += performed
                    s["first"] = start if s["first"] is None else min(s["first"], start)
                    s["last"] = end if s["last"] is None else max(s["last"], end)
        return timed

    def install(self) -> StageClock:
        from handlers import dispatch, intake
        from handlers.pipeline import runner as action_runner
        for module, attr, name_of in ((intake, "handle", lambda *a, **k: "intake"),
                                      (dispatch, "dispatch", lambda *a, **k: "dispatch"),
                                      (action_runner, "run", lambda action, *a, **k: f"action_{action}")):
            original = getattr(module, attr)
            setattr(module, attr, self._wrap(original, name_of))
            self._undo.append((module, attr, original))
        from concurrent.futures import ThreadPoolExecutor
        self._undo.append((ThreadPoolExecutor, "submit", ThreadPoolExecutor.submit))
        ThreadPoolExecutor.submit = self._wrap_submit(ThreadPoolExecutor.submit)
        return self

    def _wrap_submit(self, submit):
        clock = self

        @functools.wraps(submit)
        def submit_for_stage(pool, fn, /, *args, **kwargs):
            stage = getattr(clock._current, "stage", None)
            if stage is None:   # the runner's own pools (outside any stage) are the host's share
                return submit(pool, fn, *args, **kwargs)

            def task(*a, **k):
                outer, clock._current.stage = getattr(clock._current, "stage", None), stage
                cpu = time.thread_time()
                try:
                    return fn(*a, **k)
                finally:
                    clock._current.stage = outer
                    used = time.thread_time() - cpu
                    with clock._lock:
                        s = clock.stages[stage]
                        s["cpu"] += used
                        s["pool_cpu"] += used
            return submit(pool, task, *args, **kwargs)
        return submit_for_stage

    def remove(self) -> None:
        for module, attr, original in reversed(self._undo):
            setattr(module, attr, original)
        self._undo = []


def _events(result) -> tuple[int, int]:
    """(events, performed) of one invocation: an action's list of outcomes (None: finished or claimed
    elsewhere), or the dispatcher's {"events": n}. A failed invocation returns nothing: (0, 0)."""
    if isinstance(result, list):
        return len(result), sum(1 for o in result if o is not None)
    if isinstance(result, dict) and isinstance(result.get("events"), int):
        return result["events"], result["events"]
    return 0, 0
