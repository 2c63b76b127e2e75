"""Reconciler: on a timer, ask Preservica's own event log what happened since the watermark, and put
what the webhooks missed through the same dispatcher.

A run: the window from the watermark (less the tolerance, as overlap) to RECONCILE_DELAY_MINUTES ago,
in slices of an hour, oldest first. Per slice, page by page (eventlog.scan): the logged events of the mapped types and
the entities they touched, then the entities deleted in the slice; each page is matched one to one against the
journal (core.reconcile.missed), its new events are claimed in the identity table (so a late webhook
dispatched meanwhile is not done twice) and queued as source `reconcile`, logged security and
visibility changes a webhook covered are queued again for publish (source `recheck`), deleted
entities go to publish as gone; then the checkpoint inside the slice is saved. After the slice the
watermark moves to its end. A Preservica failure or a spent request budget ends the run where it
stopped: the next run resumes there, nothing skipped, at worst asked again.
Each run journals a gap report; `ALERT reconcile-missed` when the webhooks missed anything, and
`ALERT reconcile-stalled` after RECONCILE_STALL_RUNS incomplete runs in a row.
"""
from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from .core import reconcile, settings

log = logging.getLogger(__name__)
bp = func.Blueprint()
SLICE = dt.timedelta(hours=1)

_SCHEDULE = settings.BY_NAME["RECONCILE_SCHEDULE"].timer("reconciler")
if _SCHEDULE:  # empty turns the reconciler off: no timer function at all
    @bp.timer_trigger(schedule=_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
    def reconcile_timer(timer: func.TimerRequest) -> None:
        run()


def _minutes(name: str) -> dt.timedelta:
    return dt.timedelta(minutes=settings.get_int(name))


def run(now: dt.datetime | None = None, dry_run: bool = False) -> dict:
    """One reconciliation run; its report. Raises (after reporting) when Preservica failed."""
    from .clients import eventlog, journal, preservica, reconcile_state, telemetry
    from .clients.secrets import default as secret_source
    from .core.errors import SafeError
    now = now or dt.datetime.now(dt.UTC)
    types = reconcile.parse_types(settings.get("RECONCILE_EVENT_TYPES"))
    tolerance, delay = _minutes("RECONCILE_TOLERANCE_MINUTES"), _minutes("RECONCILE_DELAY_MINUTES")
    secrets = secret_source()
    missing = settings.preservica_missing(secrets)
    state = reconcile_state.default()
    report = {"found": 0, "delivered": 0, "queued": 0, "rechecked": 0, "deleted": 0, "unusable": 0, "requests": 0,
              "complete": True, "error": "", "dryRun": dry_run, "at": now.isoformat()}
    if missing:
        report.update(complete=False, error=f"Preservica is not configured: set {', '.join(missing)}")
        log.warning("reconciliation skipped: %s", report["error"])
        return report
    watermark, row = state.watermark()
    span = reconcile.window(watermark, now, delay, tolerance, dt.timedelta(hours=settings.get_int("RECONCILE_FIRST_HOURS")))
    if span is None:
        return report
    report.update(start=span[0].isoformat(), end=span[0].isoformat())
    budget = eventlog.Budget(settings.get_int("RECONCILE_MAX_REQUESTS", minimum=1))
    pages = _Pages(state, journal.default(), row, watermark or span[0], tolerance, dry_run, report)
    with telemetry.span("reconcile", window__start=report["start"], window__end=span[1].isoformat()):
        try:
            for lo, hi in reconcile.slices(*span, SLICE):
                where = reconcile_state.ReconcileState.checkpoint(pages.row, lo)

                def scan(api, lo=lo, hi=hi, where=where):  # called at once, inside this slice
                    return [pages.take(lo, hi, *page) for page in eventlog.scan(
                        api, types, lo, hi, where, budget, deleted_since=max(lo, pages.until))]
                preservica.call(secrets, scan)
                pages.finish(hi)
        except (eventlog.BudgetSpent, journal.Conflict) as exc:  # the rest of the window waits for the next run
            report.update(complete=False, error=str(exc))
        except SafeError as exc:  # Preservica failed: reported, and the invocation fails visibly
            report.update(complete=False, error=str(exc), failed=True)
        finally:
            report["requests"] = budget.used
            try:
                pages.save()   # where this run stopped, for the next one
            except journal.Conflict:
                report.update(complete=False, error="another reconciliation run moved the watermark")
            _report(state, report, now, dry_run)
    if report.pop("failed", False):
        from .core.errors import ActionError
        raise ActionError(f"reconciliation stopped: {report['error']}")
    return report


class _Pages:
    """A run's progress: each page of found events matched, claimed and queued, then its checkpoint."""

    def __init__(self, state, book, row, until, tolerance, dry_run, report):
        self.state, self.book, self.row, self.until = state, book, row, until
        self.tolerance, self.dry_run, self.report = tolerance, dry_run, report
        self.used: set = set()   # journaled events matched in this run (one to one across pages)
        self.covered: dict = {}  # (ref, trigger) -> webhook times matched in this run
        self.pending: tuple | None = None   # (slice start, checkpoint) reached but not yet saved

    def take(self, lo: dt.datetime, hi: dt.datetime, found: list, unusable: dict, where: dict) -> None:
        self.report["unusable"] += sum(unusable.values())
        queued = self._queue(lo, hi, list(set(found))) if found else False
        if hi > self.until:   # (a slice all before the watermark was done by an earlier run)
            self.pending = (lo, where)   # what this page covers is queued: its checkpoint may be saved
        if queued:
            self.save()

    def _queue(self, lo: dt.datetime, hi: dt.datetime, found: list) -> bool:
        from .pipeline import registry
        report = self.report
        gone = [f for f in found if f.event == reconcile.DELETED and (f.ref, "gone") not in self.used]
        self.used.update((f.ref, "gone") for f in gone)   # listed by two slices (endDate is inclusive)
        logged = [f for f in found if f.event != reconcile.DELETED]
        seen = reconcile.sightings(self.book.rows_in_time(lo - self.tolerance, hi + self.tolerance)) if logged else {}
        gap = reconcile.missed(logged, seen, self.tolerance, self.used)
        for k, times in gap.covered.items():
            self.covered.setdefault(k, []).extend(times)
        routes = registry.routes()
        recheck = [f for f in gap.recheck + gone
                   if set(reconcile.RECHECK_ACTIONS) & set(routes.actions_for(f.trigger))]
        report["found"] += len(logged)
        report["delivered"] += gap.already + len(gap.recheck)
        report["rechecked"] += len(recheck) - len(gone)
        report["deleted"] += len(gone)
        if self.dry_run:
            report["queued"] += len(gap.new)
            return False
        new = self._claim(gap)
        report["queued"] += len(new)
        _queue(reconcile.RECONCILE, new)
        _queue(reconcile.RECHECK, recheck)
        return bool(new or recheck)

    def _claim(self, gap) -> list:
        """The new events, less those a late webhook dispatched since the journal was read stands for."""
        groups: dict[tuple[str, str], list] = {}
        for f in gap.new:
            groups.setdefault((f.ref, f.trigger), []).append(f)
        out = []
        for (ref, trigger), group in groups.items():
            keys = {reconcile.event_key(f): f for f in group}
            take = self.state.claim_logged(ref, trigger, self.covered.get((ref, trigger), []),
                                           [(f.when, k) for k, f in keys.items()], self.tolerance,
                                           match=trigger not in reconcile.ALWAYS)
            out += [keys[k] for k in take]
        return out

    def save(self) -> None:
        """Save the checkpoint reached (what it covers is queued)."""
        if self.pending and not self.dry_run:
            lo, where = self.pending
            self.row = self.state.save_checkpoint(self.until, lo, where, self.row)
        self.pending = None

    def finish(self, hi: dt.datetime) -> None:
        """The slice ending at `hi` is all queued: the watermark moves there, the checkpoint goes (an
        overlap slice before the watermark leaves both as they are)."""
        self.pending = None
        if hi > self.until:
            if not self.dry_run:
                self.row = self.state.advance(hi, self.row)
            self.until = hi
        self.report["end"] = hi.isoformat()


def _queue(source: str, found: list) -> None:
    """Each delivery as an intake message; sent before the checkpoint or watermark moves (at-least-once)."""
    from .clients import delivery_queue, storage
    docs = reconcile.deliveries(found, source, settings.get("PRESERVICA_TENANT") or "",
                                settings.get_int("MAX_EVENTS_PER_DELIVERY", minimum=1))
    for doc in docs:
        delivery_queue.enqueue_document(storage.default(), doc, source)


def _report(state, report: dict, now: dt.datetime, dry_run: bool) -> None:
    from .clients import telemetry
    text = (f"reconciliation {report.get('start', '-')} .. {report.get('end', '-')}: found {report['found']}, "
            f"already delivered {report['delivered']}, queued {report['queued']}"
            + (f", re-checked {report['rechecked']}" if report["rechecked"] else "")
            + (f", deleted {report['deleted']}" if report["deleted"] else "")
            + (f", not usable {report['unusable']}" if report["unusable"] else "")
            + (f"; stopped early: {report['error']}" if report["error"] else ""))
    if report["queued"] and not dry_run:
        # The wording the alert rule on this signal has matched so far (bicep/modules/alerts.bicep).
        missed = f"{text}: the webhooks missed {report['queued']:d} event(s); they are queued now"
        telemetry.alert_signal("reconcile-missed", missed, queued=report["queued"])
    elif report["error"]:
        log.warning(text)
    else:
        log.info(text)
    if dry_run:
        return
    if not report["complete"]:
        limit = settings.get_int("RECONCILE_STALL_RUNS", minimum=1)
        before = state.reports(limit - 1) if limit > 1 else []
        runs = 1 + next((i for i, r in enumerate(before) if r.get("complete") is not False), len(before))
        if runs >= limit:
            telemetry.alert_signal("reconcile-stalled", f"{runs} reconciliation runs in a row ended incomplete; "
                                   f"the last: {text}", runs=runs)
    state.report(report, now)
