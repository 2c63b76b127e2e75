"""The reconciler's table (RECONCILE_TABLE): its watermark, its run reports (the gap reports), backfill
progress, and the identities of events that came by the reconciler or late.

Rows: ("state", "watermark") the time up to which Preservica's log has been queued;
("runs", inverted time) one report per run, newest first; ("backfill", job id) a backfill's start
time and counts; ("seen|<ref>", trigger) the Preservica times of that entity's events of that
trigger that the reconciler queued or a late webhook put through, each with the journal key that did
and, once matched, the key of the other path's event it is (`pair`): a record is matched at most once,
so two events close together (opened, then closed) stay two.
The watermark row also holds the checkpoint inside the slice being read (`slice`, `stage`, `type`,
`event`, `action`, `start`), so a run stopped by its request budget resumes where it stopped.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import TypeVar

from ..core.envelope import parse_timestamp
from ..core.journal import inverted_ms
from ..core.reconcile import RECONCILE, WEBHOOK, near
from .journal import ETAG, IDEMPOTENT, clip, get_row, table_call

T = TypeVar("T")
MAX_SEEN = 50   # times kept per (entity, trigger): older ones are long past any tolerance
TRIES = 6
_SAFE = re.compile(r"[A-Za-z0-9_.|-]{1,200}")
CHECKPOINT = ("stage", "type", "event", "action", "start")
WRITER = "writer"   # the watermark row's: a token of the write that left it (advance)


def _key(text: str) -> str:
    """A Table key from sender text: as it is when plainly safe, else a hash (keys refuse / \\ # ? and controls)."""
    if _SAFE.fullmatch(text):
        return text
    return "h-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class ReconcileState:
    def __init__(self, table_client):
        self.table = table_client

    def _call(self, fn: Callable[[], T]) -> T:
        return table_call(self.table, fn)

    def _get(self, pk: str, rk: str) -> dict | None:
        return get_row(self.table, pk, rk)

    # -- watermark ------------------------------------------------------------------------------
    def watermark(self) -> tuple[dt.datetime | None, dict | None]:
        row = self._get("state", "watermark")
        return (parse_timestamp(str(row.get("until") or "")) if row else None), row

    @staticmethod
    def checkpoint(row: dict | None, lo: dt.datetime) -> dict:
        """Where the slice starting at `lo` was left ({} to start it afresh)."""
        if not row or parse_timestamp(str(row.get("slice") or "")) != lo:
            return {}
        return {k: row[k] for k in CHECKPOINT if row.get(k) not in (None, "")}

    def advance(self, until: dt.datetime, seen: dict | None, checkpoint: dict | None = None) -> dict:
        """Move the watermark (and replace the checkpoint), only if no other run wrote the row since
        `seen` was read (else Conflict). Returns what to pass as `seen` next time.
        A write whose answer was lost: azure-core sends a PUT again (_retry.py: PUT is in its retried methods,
        a read error is retried for those), which then meets the first (412); a POST it does not send again
        (ServiceResponseError). Either way the row is read back: naming this write (WRITER), it is this write."""
        import uuid

        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ServiceResponseError
        from azure.data.tables import UpdateMode

        from .journal import Conflict
        entity = {"PartitionKey": "state", "RowKey": "watermark", "until": until.isoformat(), **(checkpoint or {}),
                  WRITER: uuid.uuid4().hex}
        try:
            if seen:
                meta = self._call(lambda: self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=seen[ETAG],
                                                                   match_condition=MatchConditions.IfNotModified))
            else:
                meta = self._call(lambda: self.table.create_entity(entity))
        except (ResourceModifiedError, ResourceExistsError, ServiceResponseError) as exc:
            row = self._get("state", "watermark")
            if row is None or row.get(WRITER) != entity[WRITER]:
                if isinstance(exc, ServiceResponseError):
                    raise
                raise Conflict("another reconciliation run moved the watermark") from exc
            meta = {"etag": row[ETAG]}
        return {**entity, ETAG: meta["etag"]}

    def save_checkpoint(self, until: dt.datetime, lo: dt.datetime, where: dict, seen: dict | None) -> dict:
        """Progress inside the slice from `lo`, with the watermark unchanged at `until`."""
        return self.advance(until, seen, {"slice": lo.isoformat(), **{k: where[k] for k in CHECKPOINT if k in where}})

    # -- run reports ------------------------------------------------------------------------------
    def report(self, summary: dict, at: dt.datetime, partition: str = "runs") -> None:
        rk = inverted_ms(at)
        row = {k: (clip(v) if isinstance(v, str) else v) for k, v in summary.items()}
        self._call(lambda: self.table.upsert_entity({"PartitionKey": partition, "RowKey": rk, **row}, **IDEMPOTENT))

    def reports(self, limit: int = 1, partition: str = "runs") -> list[dict]:
        """The newest run reports (inverted keys: the first rows of the partition); the public sweep's
        are in partition "sweep-runs"."""
        import itertools
        def rows() -> list:
            return list(itertools.islice(self.table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=limit), limit))
        return [dict(e) for e in self._call(rows)]

    # -- the public sweep's place in the public container (handlers/sweep.py) -------------------------
    def sweep_checkpoint(self) -> str:
        row = self._get("state", "sweep")
        return str(row.get("token") or "") if row else ""

    def save_sweep_checkpoint(self, token: str) -> None:
        self._call(lambda: self.table.upsert_entity({"PartitionKey": "state", "RowKey": "sweep", "token": token},
                                                    **IDEMPOTENT))

    # -- the custody audit's place in the custody storage root (handlers/custody_audit.py) --------------
    def custody_checkpoint(self) -> int:
        row = self._get("state", "custody-audit")
        return int(row.get("next") or 0) if row else 0

    def save_custody_checkpoint(self, next_prefix: int) -> None:
        self._call(lambda: self.table.upsert_entity({"PartitionKey": "state", "RowKey": "custody-audit",
                                                     "next": next_prefix}, **IDEMPOTENT))

    # -- backfill progress --------------------------------------------------------------------------
    def backfill(self, job: str) -> dict | None:
        return self._get("backfill", job)

    def save_backfill(self, job: str, columns: dict) -> None:
        from azure.data.tables import UpdateMode
        self._call(lambda: self.table.upsert_entity({"PartitionKey": "backfill", "RowKey": job, **columns},
                                                    mode=UpdateMode.MERGE, **IDEMPOTENT))

    def write_if_unchanged(self, entity: dict, row: dict | None, merge: bool = False) -> bool:
        """Write `entity` only if `row` (as read, with its ETag) is unchanged, or, when `row` is None, only if
        there is none yet: False when another writer came first (read again and redo). The SDK's pattern:
        azure-data-tables samples/sample_conditional_update.py (etag + MatchConditions.IfNotModified; a changed
        row raises ResourceModifiedError, creating one that exists ResourceExistsError)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode
        mode = UpdateMode.MERGE if merge else UpdateMode.REPLACE
        try:
            if row:
                self._call(lambda: self.table.update_entity(entity, mode=mode, etag=row[ETAG],
                                                            match_condition=MatchConditions.IfNotModified))
            else:
                self._call(lambda: self.table.create_entity(entity))
        except (ResourceModifiedError, ResourceExistsError):
            return False
        return True

    # -- identities -------------------------------------------------------------------------------
    def _update_seen(self, ref: str, trigger: str, change: Callable[[list[dict]], T]) -> T:
        """Read the identity record of (ref, trigger), let `change` edit its entries, write it back only
        if unchanged since read (else read again). Returns what `change` returned."""
        pk, rk = _key(f"seen|{ref.lower()}"), _key(trigger)
        for _ in range(TRIES):
            row = self._get(pk, rk)
            entries = json.loads(row["entries"]) if row else []
            before = json.dumps(entries)
            result = change(entries)
            if json.dumps(entries) == before:
                return result
            entity = {"PartitionKey": pk, "RowKey": rk, "entries": json.dumps(entries[-MAX_SEEN:])}
            if self.write_if_unchanged(entity, row):
                return result
            # someone else wrote it meanwhile: read again
        from .journal import Conflict
        raise Conflict("event identity kept changing while it was being recorded")

    def claim_identity(self, ref: str, trigger: str, when: dt.datetime, key: str, source: str,
                       tolerance: dt.timedelta) -> dict | None:
        """A late webhook's event (ref, trigger, when) with journal `key`: None if it is to be put
        through (recorded now), else the reconciler's record of the same event, {"key", "source", "when"},
        which this webhook then uses up. Only the other path's records count (two webhooks of two
        subscriptions are two deliveries here as everywhere), each at most once."""
        def change(entries: list[dict]) -> dict | None:
            mine = next((e for e in entries if e.get("key") == key), None)
            if mine is not None:   # a retried dispatch: the same answer as the first time (not a later pairing)
                return next((e for e in entries if e.get("key") == mine.get("pair")), None) if mine.get("skip") else None
            match = _closest(entries, when, tolerance, lambda e: e.get("source") != source)
            entries.append({"when": when.isoformat(), "key": key, "source": source,
                            **({"pair": match["key"], "skip": True} if match else {})})
            if match:
                match["pair"] = key
            return match
        return self._update_seen(ref, trigger, change)

    def claim_logged(self, ref: str, trigger: str, covered: list[dt.datetime], new: list[tuple[dt.datetime, str]],
                     tolerance: dt.timedelta, match: bool = True) -> list[str]:
        """The reconciler's logged events of (ref, trigger) about to be queued ([(time, key)]): the keys
        to queue. First the late webhooks the journal match used up (`covered`) are marked used; then
        each new event takes the closest unused late webhook within the tolerance (one dispatched since
        the journal was read: the same event, not queued) or is recorded and queued. An event recorded
        before is queued again (its earlier queuing may have failed; the dispatcher drops repeats).
        `match=False` (ALWAYS triggers): every new event is queued."""
        def change(entries: list[dict]) -> list[str]:
            for t in covered:
                hit = _closest(entries, t, dt.timedelta(0), lambda e: e.get("source") == WEBHOOK)
                if hit:
                    hit["pair"] = "log"
            queue = []
            for when, key in sorted(new):
                mine = next((e for e in entries if e.get("key") == key), None)
                if mine is not None:   # found again: queued again unless a webhook was doing it
                    queue += [] if mine.get("skip") else [key]
                    continue
                hit = _closest(entries, when, tolerance, lambda e: e.get("source") == WEBHOOK) if match else None
                entries.append({"when": when.isoformat(), "key": key, "source": RECONCILE,
                                **({"pair": hit["key"], "skip": True} if hit else {})})
                if hit:
                    hit["pair"] = key
                else:
                    queue.append(key)
            return queue
        return self._update_seen(ref, trigger, change)


def _closest(entries: list[dict], when: dt.datetime, tolerance: dt.timedelta, which) -> dict | None:
    """The unused entry `which` accepts whose time is closest to `when` within the tolerance."""
    times = {id(e): t for e in entries if which(e) and not e.get("pair") and (t := parse_timestamp(e.get("when") or ""))}
    best = near(when, times.values(), tolerance)
    return None if best is None else min((e for e in entries if times.get(id(e)) == best),
                                         key=lambda e: str(e.get("key")))


def default() -> ReconcileState:
    from ..core import settings
    from . import storage
    return ReconcileState(storage.default().table(settings.RECONCILE_TABLE))
