"""The reconciler's table (RECONCILE_TABLE): its watermark, its run reports (the gap reports), backfill
progress, and the identities of events that came by the reconciler or late.

Rows: ("state", "watermark") the time up to which Preservica's log has been queued;
("runs", inverted time) one report per run, newest first; ("backfill", job id) a backfill's start
time and counts; ("seen|<ref>", trigger) the Preservica times of that entity's events of that
trigger that a reconciliation or a late webhook put through, each with the journal key that did,
so that the other path can tell it is the same event even when both dispatch at once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Callable, TypeVar

from ..core.envelope import parse_timestamp
from ..core.reconcile import near
from .journal import ETAG, clip, get_row, table_call

T = TypeVar("T")
MAX_SEEN = 50   # times kept per (entity, trigger): older ones are long past any tolerance
_MAX_MS = 10**14
TRIES = 6
_SAFE = re.compile(r"[A-Za-z0-9_.|-]{1,200}")


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

    def advance(self, until: dt.datetime, seen: dict | None) -> dict:
        """Move the watermark, only if no other run moved it since `seen` was read (else Conflict).
        Returns what to pass as `seen` next time."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode
        from .journal import Conflict
        entity = {"PartitionKey": "state", "RowKey": "watermark", "until": until.isoformat()}
        try:
            if seen:
                meta = self._call(lambda: self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=seen[ETAG],
                                                                   match_condition=MatchConditions.IfNotModified))
            else:
                meta = self._call(lambda: self.table.create_entity(entity))
        except (ResourceModifiedError, ResourceExistsError) as exc:
            raise Conflict("another reconciliation run moved the watermark") from exc
        return {**entity, ETAG: meta["etag"]}

    # -- run reports ------------------------------------------------------------------------------
    def report(self, summary: dict, at: dt.datetime, partition: str = "runs") -> None:
        rk = f"{_MAX_MS - int(at.timestamp() * 1000):014d}"
        row = {k: (clip(v) if isinstance(v, str) else v) for k, v in summary.items()}
        self._call(lambda: self.table.upsert_entity({"PartitionKey": partition, "RowKey": rk, **row}))

    def reports(self, limit: int = 1, partition: str = "runs") -> list[dict]:
        """The newest run reports (inverted keys: the first rows of the partition); the public sweep's
        are in partition "sweep-runs"."""
        import itertools
        rows = lambda: list(itertools.islice(self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=limit), limit))
        return [dict(e) for e in self._call(rows)]

    # -- the public sweep's place in the public container (handlers/sweep.py) -------------------------
    def sweep_checkpoint(self) -> str:
        row = self._get("state", "sweep")
        return str(row.get("token") or "") if row else ""

    def save_sweep_checkpoint(self, token: str) -> None:
        self._call(lambda: self.table.upsert_entity({"PartitionKey": "state", "RowKey": "sweep", "token": token}))

    # -- backfill progress --------------------------------------------------------------------------
    def backfill(self, job: str) -> dict | None:
        return self._get("backfill", job)

    def save_backfill(self, job: str, columns: dict) -> None:
        from azure.data.tables import UpdateMode
        self._call(lambda: self.table.upsert_entity({"PartitionKey": "backfill", "RowKey": job, **columns},
                                                    mode=UpdateMode.MERGE))

    # -- identities -------------------------------------------------------------------------------
    def claim_identity(self, ref: str, trigger: str, when: dt.datetime, key: str, source: str,
                       tolerance: dt.timedelta) -> dict | None:
        """Record that the event (ref, trigger, when) is being put through by `key` from `source`. None
        if the other path (webhook / reconcile) has not put it through; else that path's record,
        {"key", "source", "when"}. Conditional writes, so two dispatches at once cannot both win."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode
        pk, rk = _key(f"seen|{ref.lower()}"), _key(trigger)
        for _ in range(TRIES):
            row = self._get(pk, rk)
            entries = json.loads(row["entries"]) if row else []
            # Only the other path's records count: two webhooks (two subscriptions, say) are two
            # deliveries here as everywhere else.
            others = [(e, t) for e in entries if e.get("source") != source and (t := parse_timestamp(e["when"]))]
            match = near(when, [t for _, t in others], tolerance)
            if match is not None:
                return next(e for e, t in others if t == match)
            if any(e.get("key") == key for e in entries):
                return None   # recorded by this event before: a retried dispatch
            entries = (entries + [{"when": when.isoformat(), "key": key, "source": source}])[-MAX_SEEN:]
            entity = {"PartitionKey": pk, "RowKey": rk, "entries": json.dumps(entries)}
            try:
                if row:
                    self._call(lambda: self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=row[ETAG],
                                                                match_condition=MatchConditions.IfNotModified))
                else:
                    self._call(lambda: self.table.create_entity(entity))
                return None
            except (ResourceModifiedError, ResourceExistsError):
                continue  # someone else wrote it meanwhile: read again
        from .journal import Conflict
        raise Conflict("event identity kept changing while it was being recorded")


def default() -> ReconcileState:
    from ..core import settings
    from . import storage
    return ReconcileState(storage.default().table(settings.RECONCILE_TABLE))
