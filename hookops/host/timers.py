"""Timer triggers as the host runs them: an NCRONTAB schedule (six fields, seconds first) fires the
function, one invocation at a time; and the host's admin call, `POST /admin/functions/<name>`, which
runs a non-HTTP function now (answered 202, as by `func start`)."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback

from azure.functions.timer import TimerRequest

from hookops.host.base import Host
from hookops.host.functions import Function

log = logging.getLogger("hookops.runner")


def croniter_for(expression: str, start: dt.datetime):
    """NCRONTAB puts seconds first; croniter takes them last."""
    from croniter import croniter
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs six fields (second minute hour day month weekday): {expression!r}")
    return croniter(" ".join(fields[1:] + fields[:1]), start)


class TimerPoller:
    """Fires one timer function on its schedule until the runner stops."""

    def __init__(self, runner: Host, fn: Function):
        self.runner, self.fn = runner, fn
        self.lock = threading.Lock()  # a timer function never runs twice at once (the host's singleton)
        croniter_for(fn.trigger["schedule"], dt.datetime.now(dt.UTC))  # a bad schedule fails at start

    def run(self) -> None:
        if self.fn.trigger.get("runOnStartup"):
            self.fire()
        schedule = croniter_for(self.fn.trigger["schedule"], dt.datetime.now(dt.UTC))
        while not self.runner.stopping.is_set():
            due = schedule.get_next(dt.datetime)
            wait = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if self.runner.stopping.wait(max(0.0, wait)):  # woken early only by stop()
                return
            self.fire(past_due=(dt.datetime.now(dt.UTC) - due).total_seconds() > 1)

    def fire(self, past_due: bool = False) -> None:
        r, name = self.runner, self.fn.name
        with self.lock:
            r.count(name, "invoked")
            try:
                r.invoke(self.fn, TimerRequest(past_due=past_due))
            except Exception:  # the host logs it and waits for the next occurrence
                log.error("%s failed\n%s", name, traceback.format_exc())
                r.count(name, "failed")
                return
            r.count(name, "succeeded")


def run_now(runner: Host, name: str) -> int:
    """The admin call: 202 and the function runs in the background; 404 for no such timer function."""
    poller = runner.timers.get(name)
    if poller is None:
        return 404
    threading.Thread(target=poller.fire, name=f"admin-{name}", daemon=True).start()
    return 202
