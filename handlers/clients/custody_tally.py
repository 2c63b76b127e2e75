"""The custody copy's coverage, kept as it changes so that reading it is one row, and the audit's reports.

Counting the objects of the storage root would mean listing every blob of it, so the counts are kept in
the reconciler's table instead: ("custody-tally", "<abc>") per first-level prefix of the 0004 layout
(handlers/core/ocfl.py): what its last audit found (objects, ok, mismatched, missing, at) and `written`,
objects the action made there since; ("custody-tally", "all") their sum. The audit sets a prefix's row
once it has read the prefix and sums the rows into "all" at the end of each run; the action adds 1 to its
prefix's row and to "all" when it makes an object. So "all" is exact as of the last audit run plus the
objects written since. A count the action could not add (the table busy, a crash between the object and
its count) is mended when that prefix is next audited; an object made while its prefix was being read
may be counted twice until then. Objects written before the tally existed are counted once audited.

Everything that shows coverage or audits (`hookops custody status`, the console's overview) reads
`status()`; the reports are the audit's (handlers/custody_audit.py), kept in partition RUNS.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ..core.errors import Conflict
from .journal import get_row
from .reconcile_state import ReconcileState

PARTITION = "custody-tally"
ALL = "all"
RUNS = "custody-audit-runs"          # the audit's reports, newest first
COUNTS = ("objects", "ok", "mismatched", "missing", "written")
TRIES = 8
REPORT_FIELDS = ("at", "audited", "ok", "mismatched", "missing", "complete", "error", "failures")


@dataclass(frozen=True)
class Coverage:
    objects: int = 0       # found by the audits of their prefixes
    ok: int = 0            # of those, every file as its inventory says
    mismatched: int = 0
    missing: int = 0
    written: int = 0       # made by the action since its prefix was audited (checked against Preservica on the way in)
    prefixes: int = 0      # prefixes with a row: audited or written to
    oldest: str = ""       # the earliest last-audit time of those prefixes ("" when one was never audited)
    summed: str = ""       # when the audit last summed the prefix rows ("" before its first run)

    @property
    def total(self) -> int:
        return self.objects + self.written

    @property
    def verified(self) -> int:
        return self.ok + self.written

    @property
    def failures(self) -> int:
        return self.mismatched + self.missing


def _int(row: dict | None, key: str) -> int:
    try:
        return max(int((row or {}).get(key) or 0), 0)
    except (TypeError, ValueError):
        return 0


def coverage(state: ReconcileState) -> Coverage | None:
    """The running sum: one row read. None before anything was counted."""
    row = get_row(state.table, PARTITION, ALL)
    if row is None:
        return None
    return Coverage(*(_int(row, k) for k in COUNTS), _int(row, "prefixes"), str(row.get("oldest") or ""),
                    str(row.get("summed") or ""))


def status(state: ReconcileState | None = None, audits: int = 1) -> tuple[Coverage | None, list[dict]]:
    """(coverage, the newest `audits` audit reports): what an operator is shown, bounded reads only."""
    from . import reconcile_state
    state = state or reconcile_state.default()
    reports = [{k: r[k] for k in REPORT_FIELDS if k in r} for r in state.reports(limit=audits, partition=RUNS)]
    return coverage(state), reports


def text(report: dict) -> str:
    """A report as one line: `custody audit: audited N, ok M, mismatched K, missing J`."""
    return (f"custody audit: audited {report.get('audited', 0)}, ok {report.get('ok', 0)}, "
            f"mismatched {report.get('mismatched', 0)}, missing {report.get('missing', 0)}"
            + (f"; {report['compared']} compared with Preservica's fixity ({report.get('requests', 0)} requests)"
               if "compared" in report else "")
            + (f"; stopped early: {report['error']}" if report.get("error") else ""))


def _write(state: ReconcileState, rk: str, change) -> None:
    """Read row `rk`, let `change(row or None)` give its new counts, write them only if the row is unchanged
    since read (else read again)."""
    for _ in range(TRIES):
        row = get_row(state.table, PARTITION, rk)
        if state.write_if_unchanged({"PartitionKey": PARTITION, "RowKey": rk, **change(row)}, row, merge=True):
            return
        # another writer counted first: read again
    raise Conflict(f"the custody tally row {rk!r} kept changing while it was being counted")


def object_written(state: ReconcileState, prefix: str) -> None:
    """The action made a new object under `prefix` (its first three hex digits)."""
    for rk in (prefix, ALL):
        _write(state, rk, lambda row: {"written": _int(row, "written") + 1})


def before_audit(state: ReconcileState, prefix: str) -> int:
    """The prefix's `written` count as the audit starts reading it."""
    return _int(get_row(state.table, PARTITION, prefix), "written")


def prefix_audited(state: ReconcileState, prefix: str, counts: dict, at: dt.datetime, written_before: int) -> None:
    """The audit read every object under `prefix`: its counts replace the row's, and only the objects the
    action wrote since the audit started stay counted as `written`."""
    found = {k: int(counts.get(k, 0)) for k in ("ok", "mismatched", "missing")}
    _write(state, prefix, lambda row: {"objects": sum(found.values()), **found, "at": at.isoformat(),
                                       "written": max(_int(row, "written") - written_before, 0)})


def sum_prefixes(state: ReconcileState, at: dt.datetime) -> Coverage:
    """Sum every prefix row into "all" (at most 4096 rows: one query, in the audit's timer, not a page)."""
    rows = [r for r in _rows(state) if r.get("RowKey") != ALL]
    sums = {k: sum(_int(r, k) for r in rows) for k in COUNTS}
    times = [str(r.get("at") or "") for r in rows]
    oldest = "" if not times or "" in times else min(times)
    _write(state, ALL, lambda row: {**sums, "prefixes": len(rows), "oldest": oldest, "summed": at.isoformat()})
    return Coverage(**sums, prefixes=len(rows), oldest=oldest, summed=at.isoformat())


def _rows(state: ReconcileState) -> Iterable[dict]:
    return state._call(lambda: list(state.table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})))
