"""Public sweep: on a timer, every asset the public container holds is put through publish's converge again,
so what a lost webhook, a poisoned message or an event Preservica never sends (a deletion, a replaced access
file) left public is withdrawn or brought up to date.

A run walks the container's top-level `<ref>/` prefixes (each published asset, and the files of a publish
that never reached its manifest) in pages of PAGE, oldest checkpoint first; after each page the checkpoint
(the listing's continuation token) is saved, and the run stops between pages when PUBLISH_SWEEP_MAX_REQUESTS
Preservica requests are spent: the next run goes on from there, and a run that reaches the end starts the
next from the beginning. Each run writes a report (`checked N, withdrawn W, updated U`) next to the
reconciler's, which the console shows; W > 0 raises the `sweep-withdrew` alert signal: something was
public that should not have been.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

import azure.functions as func

from .core import settings

SWEEP_SCHEDULE = settings.BY_NAME["PUBLISH_SWEEP_SCHEDULE"]
SWEEP_MAX_REQUESTS = settings.BY_NAME["PUBLISH_SWEEP_MAX_REQUESTS"]

log = logging.getLogger(__name__)
bp = func.Blueprint()
PAGE = 20                 # prefixes per listing page: the budget may be overshot by one page at most
RUNS = "sweep-runs"       # partition of the reports in the reconciler's table


_SCHEDULE = SWEEP_SCHEDULE.timer("public sweep")
if _SCHEDULE:  # empty turns the sweep off: no timer function at all
    @bp.timer_trigger(schedule=_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
    def publish_sweep_timer(timer: func.TimerRequest) -> None:
        run()


# Preservica requests made by this thread while a sweep counts them: a `response` hook on pyPreservica's
# requests Session (requests runs response hooks in Session.send, in the calling thread: requests/sessions.py).
_counting = threading.local()


def _count(response, *args, **kwargs):
    if getattr(_counting, "n", None) is not None:
        _counting.n += 1
    return response


def _install(api) -> None:
    if _count not in api.session.hooks["response"]:
        api.session.hooks["response"].append(_count)


def run(now: dt.datetime | None = None) -> dict:
    """One sweep run; its report. Raises (after reporting) when Preservica or storage failed."""
    from .actions import publish
    from .clients import publish_lock, reconcile_state
    from .core import iiif, settings
    from .core.errors import SafeError
    from .pipeline.contract import Context
    now = now or dt.datetime.now(dt.UTC)
    report = {"checked": 0, "withdrawn": 0, "updated": 0, "busy": 0, "requests": 0, "complete": False, "error": "",
              "at": now.isoformat()}
    ctx, state = Context(), reconcile_state.default()
    missing = settings.preservica_missing(ctx.secrets)
    if missing:
        report["error"] = f"Preservica is not configured: set {', '.join(missing)}"
        log.warning("public sweep skipped: %s", report["error"])
        return report
    budget, failed = SWEEP_MAX_REQUESTS.int_value(minimum=1), None
    _counting.n = 0
    try:
        ctx.preservica(_install)
        pages = publish.public_store().container.walk_blobs(delimiter="/", results_per_page=PAGE) \
            .by_page(continuation_token=state.sweep_checkpoint() or None)
        for page in pages:
            for item in page:
                ref = iiif.blob_ref(item.name.removesuffix("/"))
                if ref is None or not item.name.endswith("/"):   # activity/, or a blob outside any asset
                    continue
                try:
                    _tally(report, publish.converge(ctx, ref, lock_wait=0))
                except publish_lock.Busy:   # a publish or withdrawal of it is running now, and re-checks
                    report["busy"] += 1
            state.save_sweep_checkpoint(pages.continuation_token or "")
            if not pages.continuation_token:
                report["complete"] = True
                break
            if _counting.n >= budget:
                report["error"] = f"PUBLISH_SWEEP_MAX_REQUESTS ({budget}) spent; the next run goes on from here"
                break
    except SafeError as exc:   # Preservica or storage failed: reported; this page is swept again next run
        report["error"] = failed = str(exc)
    finally:
        report["requests"], _counting.n = _counting.n, None
        _report(state, report, now)
    if failed:
        from .core.errors import ActionError
        raise ActionError(f"the public sweep stopped: {failed}")
    return report


def _tally(report: dict, outcome) -> None:
    report["checked"] += 1
    if outcome.reason.startswith("withdrawn"):
        report["withdrawn"] += 1
    elif outcome.extra.get("publish_activity") in ("Create", "Update"):
        report["updated"] += 1


def _report(state, report: dict, now: dt.datetime) -> None:
    from .clients import telemetry
    text = (f"public sweep: checked {report['checked']}, withdrawn {report['withdrawn']}, "
            f"updated {report['updated']}" + (f"; stopped early: {report['error']}" if report["error"] else ""))
    if report["withdrawn"]:
        telemetry.alert_signal("sweep-withdrew", text, withdrawn=report["withdrawn"])
    elif report["error"]:
        log.warning(text)
    else:
        log.info(text)
    state.report(report, now, partition=RUNS)
