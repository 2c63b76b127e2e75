"""The journal's shape, pure: the states an (event, action) passes through, the columns a row holds,
and where a row lives. One Table Storage entity per event: PartitionKey the event's day (inverted,
newest first), RowKey the delivery's inverted timestamp plus the event key, so a delivery's rows are one
range query and a listing is newest first without an index. Actions merge only their own columns
(`<action>_state`, `_reason`, `_at`, `_attempts`), so concurrent actions never overwrite each other.
clients/journal.py reads and writes these rows in Table Storage.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from .envelope import Delivery, entity_ref, parse_timestamp

_MAX_MS = 10**14  # inverted timestamps sort newest first in Table Storage
STATES = ("queued", "running", "done", "skipped", "failed", "gone")
QUEUED, RUNNING, DONE, SKIPPED, FAILED, GONE = STATES
OUTCOMES = (DONE, SKIPPED, FAILED, GONE)
TERMINAL = frozenset({DONE, SKIPPED, GONE})
MAX_TEXT = 1024  # characters of sender-influenced text kept in a column (a property holds 32K UTF-16 units)
# Claim results: the caller may act / someone else is acting / it is already finished.
CLAIMED, BUSY, FINISHED = "claimed", "busy", "finished"


def iso(when: dt.datetime) -> str:
    """A time as the journal's columns hold it (and compare it, as text: leases)."""
    return when.isoformat(timespec="milliseconds")


def now_iso() -> str:
    return iso(dt.datetime.now(dt.UTC))


Row = dict[str, Any]   # a journal entity as Table Storage gives it


def state_of(entity: Row | None, action: str) -> str | None:
    return (entity or {}).get(f"{action}_state")


def event_row(pk: str, rk: str, key: str, did: str, received: str, delivery: Delivery, event: dict[str, Any],
              actions: tuple[str, ...], source: str = "webhook") -> Row:
    """A new event's row: what the delivery said, clipped, which actions were routed, and where the
    event came from (webhook, reconcile, backfill)."""
    return {"PartitionKey": pk, "RowKey": rk, "key": key, "deliveryId": did, "received": received, "source": source,
            "trigger": clip(delivery.trigger), "tenant": clip(delivery.tenant),
            "subscriptionId": clip(delivery.subscription_id), "timestamp": clip(delivery.timestamp),
            "entityType": clip(str(event.get("entityType") or "").upper()), "entityRef": clip(entity_ref(event)),
            "event": clip(event.get("event") or ""), "actions": ",".join(actions)}


def action_states(row: Row) -> dict[str, tuple[str, str]]:
    """{action: (state, reason)} for every action with a state in the row, routed ones first."""
    routed = [a for a in str(row.get("actions") or "").split(",") if a]
    others = sorted(k[: -len("_state")] for k in row if k.endswith("_state") and k[: -len("_state")] not in routed)
    return {a: (row[f"{a}_state"], row.get(f"{a}_reason") or "") for a in routed + others if row.get(f"{a}_state")}


def outcome_columns(action: str, state: str, reason: str = "", attempts: int | None = None,
                    extra: dict[str, Any] | None = None) -> Row:
    """An outcome's columns; they end any claim (the lease is cleared)."""
    extra = {k: _storable(v) for k, v in (extra or {}).items()}
    return {**state_columns(action, state, reason, attempts), f"{action}_lease": "", **extra}


def _storable(value: Any) -> Any:
    """A count past Int32 (custody's bytes of a file over 2 GiB) as its decimal text: azure-data-tables
    writes a Python int as Edm.Int32 and refuses a larger one (azure/data/tables/_serialize.py
    `_to_entity_int32`), and reads an Edm.Int64 back as an EntityProperty, not an int (_deserialize.py)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -2**31 <= value < 2**31:
        return str(value)
    return value


def clip(value: object, limit: int = MAX_TEXT) -> str:
    """Text for a journal column: bounded, whatever the sender put there."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def live_claim(entity: Row | None, action: str, owner: str | None = None) -> bool:
    """Another holder is acting on this (event, action) now: state running, lease not yet over."""
    entity = entity or {}
    return (state_of(entity, action) == RUNNING and entity.get(f"{action}_owner") != owner
            and str(entity.get(f"{action}_lease") or "") > now_iso())


def state_columns(action: str, state: str, reason: str = "", attempts: int | None = None) -> Row:
    cols: Row = {f"{action}_state": state, f"{action}_reason": reason[:1000], f"{action}_at": now_iso()}
    if attempts is not None:
        cols[f"{action}_attempts"] = attempts
    return cols


# ---- where rows live ---

def day_partition(day: dt.date) -> str:
    """A day's journal PartitionKey: inverted, so a plain table scan returns the newest day first."""
    return f"{99999999 - int(day.strftime('%Y%m%d')):08d}"


def partition(delivery: Delivery) -> str:
    ts = parse_timestamp(delivery.timestamp)
    return day_partition(ts.date()) if ts else "undated"


def inverted_ms(at: dt.datetime) -> str:
    """A time as a key that sorts newest first (14 digits of milliseconds counted down from 10**14):
    the journal's RowKeys and the reconciler's run reports."""
    return f"{_MAX_MS - int(at.timestamp() * 1000):014d}"


def time_rows(lo: dt.datetime, hi: dt.datetime) -> list[tuple[str, str, str]]:
    """(PartitionKey, lowest RowKey, highest RowKey) of the dated rows timed in [lo, hi], a day each."""
    lo_rk, hi_rk = inverted_ms(hi), inverted_ms(lo) + "-\uffff"
    days = (hi.date() - lo.date()).days
    return [(day_partition(lo.date() + dt.timedelta(days=i)), lo_rk, hi_rk) for i in range(days + 1)]


POSITION = "position"   # "<delivery id>/<index>": where the delivery that last dispatched the event has it first


def position(did: str, index: int) -> str:
    """A place in a delivery as the POSITION column holds it: sorts as the index does, a delivery's together."""
    return f"{did}/{index:09d}"


def placed_before(entity: Row | None, did: str, offset: int) -> bool:
    """The row's event is at an earlier place in delivery `did` than `offset`: an earlier page of it has it."""
    at = str((entity or {}).get(POSITION) or "")
    return at.startswith(did + "/") and at < position(did, offset)


def row_prefix(delivery: Delivery, did: str) -> str:
    """Rows of one delivery share a prefix (one range query); dated rows sort newest first."""
    ts = parse_timestamp(delivery.timestamp)
    if ts is None:
        return did[:16] + "-"
    return inverted_ms(ts) + "-"
