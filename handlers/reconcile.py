"""Reconciler: on a timer, ask Preservica's own event log what happened since the watermark, and put
what the webhooks missed through the same dispatcher.

A run: the window from the watermark (less the tolerance, as overlap) to RECONCILE_DELAY_MINUTES ago,
in slices of an hour, oldest first. Per slice: the logged events of the mapped types and the entities
they touched; those the journal already holds (by entity, trigger and Preservica's time, within the
tolerance) are delivered; the rest go on the delivery queue as deliveries of source `reconcile`; then
the watermark moves to the slice's end. A Preservica failure or a spent request budget ends the run
with the watermark after the last slice queued: nothing is skipped, at worst asked again.
Each run journals a gap report, and logs a warning when the webhooks missed anything.
"""
from __future__ import annotations

import datetime as dt
import logging

import azure.functions as func

from .core import reconcile, settings

log = logging.getLogger(__name__)
bp = func.Blueprint()
SLICE = dt.timedelta(hours=1)

def _schedule() -> str | None:
    from .core.errors import SettingsError
    try:
        return reconcile.parse_schedule(settings.get("RECONCILE_SCHEDULE"))
    except SettingsError as exc:  # the other functions still load; `hookops settings --check` says the same
        log.error("%s: the reconciler is off", exc)
        return None


_SCHEDULE = _schedule()
if _SCHEDULE:  # empty turns the reconciler off: no timer function at all
    @bp.timer_trigger(schedule=_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
    def reconcile_timer(timer: func.TimerRequest) -> None:
        run()


def _minutes(name: str) -> dt.timedelta:
    return dt.timedelta(minutes=settings.get_int(name))


def run(now: dt.datetime | None = None, dry_run: bool = False) -> dict:
    """One reconciliation run; its report. Raises (after reporting) when Preservica failed."""
    from .clients import eventlog, journal, preservica, reconcile_state, storage, telemetry
    from .clients.secrets import default as secret_source
    from .core.errors import SafeError
    now = now or dt.datetime.now(dt.timezone.utc)
    types = reconcile.parse_types(settings.get("RECONCILE_EVENT_TYPES"))
    tolerance, delay = _minutes("RECONCILE_TOLERANCE_MINUTES"), _minutes("RECONCILE_DELAY_MINUTES")
    secrets = secret_source()
    missing = settings.preservica_missing(secrets)
    state = reconcile_state.default()
    report = {"found": 0, "delivered": 0, "queued": 0, "unusable": 0, "requests": 0, "complete": True,
              "error": "", "dryRun": dry_run, "at": now.isoformat()}
    if missing:
        report.update(complete=False, error=f"Preservica is not configured: set {', '.join(missing)}")
        log.warning("reconciliation skipped: %s", report["error"])
        return report
    watermark, seen_row = state.watermark()
    span = reconcile.window(watermark, now, delay, tolerance, dt.timedelta(hours=settings.get_int("RECONCILE_FIRST_HOURS")))
    if span is None:
        return report
    report.update(start=span[0].isoformat(), end=span[1].isoformat())
    budget = eventlog.Budget(settings.get_int("RECONCILE_MAX_REQUESTS", minimum=1))
    book = journal.default()
    with telemetry.span("reconcile", window__start=report["start"], window__end=report["end"]):
        try:
            kinds = eventlog.Kinds(span[0], budget)
            for lo, hi in reconcile.slices(*span, SLICE):
                found, unusable = preservica.call(secrets, lambda api: eventlog.find(api, types, lo, hi, kinds, budget))
                seen = reconcile.sightings(book.rows_in_time(lo - tolerance, hi + tolerance))
                new, delivered = reconcile.missed(found, seen, tolerance)
                report["found"] += len(set(found))
                report["delivered"] += delivered
                report["unusable"] += sum(unusable.values())
                if not dry_run:
                    _queue(storage.default(), reconcile.deliveries(
                        new, reconcile.RECONCILE, settings.get("PRESERVICA_TENANT") or "",
                        settings.get_int("MAX_EVENTS_PER_DELIVERY", minimum=1)))
                    seen_row = state.advance(hi, seen_row)
                report["queued"] += len(new)
                report["end"] = hi.isoformat()
        except (eventlog.BudgetSpent, journal.Conflict) as exc:  # the rest of the window waits for the next run
            report.update(complete=False, error=str(exc))
        except SafeError as exc:  # Preservica failed: reported, and the invocation fails visibly
            report.update(complete=False, error=str(exc), failed=True)
        finally:
            report["requests"] = budget.used
            _report(state, report, now, dry_run)
    if report.pop("failed", False):
        from .core.errors import ActionError
        raise ActionError(f"reconciliation stopped: {report['error']}")
    return report


def _queue(store, docs: list[dict]) -> None:
    """Each delivery as an intake message; sent before the watermark moves (at-least-once)."""
    import json
    from .clients import delivery_queue, journal
    from .core import envelope
    received = journal.now_iso()
    for doc in docs:
        body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        delivery_queue.enqueue(store, envelope.delivery_id(body.encode()), received, body, source=reconcile.RECONCILE)


def _report(state, report: dict, now: dt.datetime, dry_run: bool) -> None:
    text = (f"reconciliation {report.get('start', '-')} .. {report.get('end', '-')}: found {report['found']}, "
            f"already delivered {report['delivered']}, queued {report['queued']}"
            + (f", not usable {report['unusable']}" if report["unusable"] else "")
            + (f"; stopped early: {report['error']}" if report["error"] else ""))
    if report["queued"] and not dry_run:
        log.warning("%s: the webhooks missed %d event(s); they are queued now", text, report["queued"])
    elif report["error"]:
        log.warning(text)
    else:
        log.info(text)
    if not dry_run:
        state.report(report, now)
