"""Custody audit: on a timer (CUSTODY_AUDIT_SCHEDULE), a rolling share of the custody objects is read back
and every stored file's digests recomputed and compared with its inventory, so each object is audited
within CUSTODY_AUDIT_DAYS.

The 0004 layout puts each object under the first three hex digits of a sha256 (handlers/core/ocfl.py): 4096
prefixes, objects spread evenly over them. A run audits ceil(4096 / CUSTODY_AUDIT_DAYS) prefixes from the
checkpoint on (so the schedule must fire at least daily: the default does), saving the checkpoint after each
prefix that holds objects: a run stopped by the host's timeout goes on from there next time. Each run writes a report
(`audited N, ok M, mismatched K, missing J`) next to the reconciler's; K or J > 0 raises the `custody-audit`
alert signal. Each prefix read sets its counts in the custody tally (handlers/clients/custody_tally.py), and each
run sums them: the coverage `hookops custody status` and the console show.
Each object's head bitstreams are also compared with Preservica's fixity as it is now (the same walk the action
makes, in the same read of the blobs): a stored value that no longer matches is a mismatch too. Those walks are held
to CUSTODY_AUDIT_MAX_REQUESTS per run (and, as every request, to the process's share of PRESERVICA_MAX_RPS); when
spent, the run stops like the reconciler's and the next resumes at the prefix it stopped in. Without Preservica
settings, or for an asset Preservica no longer has, the copy is checked against its inventory alone.
"""
from __future__ import annotations

import datetime as dt
import logging
import math

import azure.functions as func

from .clients.custody_config import AUDIT_DAYS, AUDIT_MAX_REQUESTS, AUDIT_SCHEDULE
from .core.ocfl import PREFIXES

log = logging.getLogger(__name__)
bp = func.Blueprint()


_SCHEDULE = AUDIT_SCHEDULE.timer("custody audit")
if _SCHEDULE:  # empty turns the audit off: no timer function at all
    @bp.timer_trigger(schedule=_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
    def custody_audit_timer(timer: func.TimerRequest) -> None:
        run()


def share(days: int) -> int:
    """Prefixes one run audits so that a daily run covers them all within `days`."""
    return math.ceil(PREFIXES / max(days, 1))


def run(now: dt.datetime | None = None, prefixes: int | None = None) -> dict:
    """One audit run; its report. Raises (after reporting) when storage failed."""
    from .clients import custody_config as config, custody_store, custody_tally, reconcile_state
    from .core.errors import BudgetSpent, SafeError
    now = now or dt.datetime.now(dt.UTC)
    report = {"audited": 0, "ok": 0, "mismatched": 0, "missing": 0, "complete": False, "error": "",
              "failures": "", "at": now.isoformat(), "compared": 0, "requests": 0}
    state = reconcile_state.default()
    count = prefixes or share(AUDIT_DAYS.int_value(minimum=1))
    start, failed, bad = state.custody_checkpoint() % PREFIXES, None, []
    budget = request_budget()
    current = preservica_now(budget)
    try:
        root = config.storage_root()
        present = custody_store.top_level(root)   # the prefixes that hold objects: the others cost no listing
        for step in range(min(count, PREFIXES)):
            index = (start + step) % PREFIXES
            prefix = f"{index:03x}"
            if prefix in present:   # counted, and the checkpoint saved, after each prefix that holds objects
                written = custody_tally.before_audit(state, prefix)
                found = _audit_prefix(root, prefix, report, bad, current)
                custody_tally.prefix_audited(state, prefix, found, now, written)
                state.save_custody_checkpoint((index + 1) % PREFIXES)
            if index == PREFIXES - 1:
                report["complete"] = True
        state.save_custody_checkpoint((start + min(count, PREFIXES)) % PREFIXES)
        custody_tally.sum_prefixes(state, now)
    except BudgetSpent as exc:   # the rest of the share waits for the next run, as the reconciler's window does
        report["error"] = str(exc)
    except SafeError as exc:
        report["error"] = failed = str(exc)
    except Exception as exc:   # the storage SDK's own errors: named, not quoted
        report["error"] = failed = f"custody storage failed: {type(exc).__name__}"
    finally:
        report["failures"], report["requests"] = "; ".join(bad[:20]), budget.used
        _report(state, report, now)
    if failed:
        from .core.errors import ActionError
        raise ActionError(f"the custody audit stopped: {failed}")
    return report


def _audit_prefix(root, prefix: str, report: dict, bad: list[str], current) -> dict:
    """Check every object under one first-level prefix; its counts by state."""
    from .actions.custody import objects
    from .clients import custody_store
    found = {"ok": 0, "mismatched": 0, "missing": 0}
    for name, _ in custody_store.names(root, f"{prefix}/"):
        parts = name.split("/")
        if len(parts) != 5 or parts[-1] != "inventory.json":   # a/b/c/<digest>/inventory.json
            continue
        check = objects.check(root, "/".join(parts[:4]), current=current)
        report["audited"] += 1
        report["compared"] += check.compared
        report[check.state] += 1
        found[check.state] += 1
        if check.state != "ok":
            why = ", not Preservica's fixity now" if check.not_preservicas else ""
            bad.append(f"{check.prefix} ({check.state}{why})")
    return found


def request_budget():
    """The Preservica requests one audit (or one `hookops custody verify`) may spend: CUSTODY_AUDIT_MAX_REQUESTS."""
    from .clients import eventlog
    return eventlog.Budget(AUDIT_MAX_REQUESTS.int_value(minimum=1), AUDIT_MAX_REQUESTS.name)


def preservica_now(budget):
    """object id -> Preservica's fixity now for its asset (objects.current_fixity), each request spent from
    `budget`; None when Preservica is not configured, the id is not one of ours, or the asset is gone. The audit's,
    and `hookops custody verify`'s."""
    from .actions.custody import objects
    from .clients import preservica
    from .clients.secrets import default as secret_source
    from .core import settings
    from .core.envelope import is_ref
    secrets = secret_source()
    if settings.preservica_missing(secrets):
        return None

    def current(object_id: str):
        ref = object_id.removeprefix("preservica:io:")
        if not object_id.startswith("preservica:io:") or not is_ref(ref):
            return None
        try:
            with preservica.counted(budget.spend):
                return preservica.call(secrets, lambda api: objects.current_fixity(api, ref))
        except preservica.NotFound:   # deleted in Preservica: the copy outlives it, on purpose
            return None
    return current


def _report(state, report: dict, now: dt.datetime) -> None:
    from .clients import telemetry
    from .clients.custody_tally import RUNS, text
    line = text(report)
    if report["mismatched"] or report["missing"]:
        telemetry.alert_signal("custody-audit", f"{line}: {report['failures']}",
                               mismatched=report["mismatched"], missing=report["missing"])
    elif report["error"]:
        log.warning(line)
    else:
        log.info(line)
    state.report(report, now, partition=RUNS)
