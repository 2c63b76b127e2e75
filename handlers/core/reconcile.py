"""Reconciliation, pure: which Preservica event-log types stand for which webhook trigger, which
window a run asks about, which found events the journal has not seen, and the deliveries that carry
those through the same dispatcher as the webhooks.

One event, one piece of work: a webhook event and an event found in Preservica's log are the same
event when they name the same entity and trigger and Preservica's two times for it are within the
tolerance. Both times come from Preservica's clock (the webhook's `timestamp`, the log's `Date`), so
there is no skew between our machines to absorb, only Preservica's own delay between recording an
event and sending its webhook (for FULL_TEXT_INDEXED: the indexing after ingest).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Iterable

from .envelope import is_ref, parse_timestamp
from .errors import SettingsError

SOURCES = WEBHOOK, RECONCILE, BACKFILL = "webhook", "reconcile", "backfill"
UTC = dt.timezone.utc
BUCKETS = 4096  # backfill: one delivery per first three hex digits of the ref (up to 1000 events each)


@dataclass(frozen=True)
class Found:
    """An event Preservica recorded, as a webhook trigger on one entity."""
    ref: str
    entity_type: str    # IO, SO
    trigger: str
    when: dt.datetime   # Preservica's time, UTC
    event: str          # Preservica's event type, e.g. Ingest


def parse_types(text: str | None) -> dict[str, str]:
    """`Ingest=FULL_TEXT_INDEXED,Move=MOVED` -> {"Ingest": "FULL_TEXT_INDEXED", ...}."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        log_type, sep, trigger = (p.strip() for p in part.partition("="))
        if not sep or not log_type or not trigger or not trigger.replace("_", "").isalnum():
            raise SettingsError(f"RECONCILE_EVENT_TYPES: {part.strip()!r} is not EventType=TRIGGER")
        mapping[log_type] = trigger.upper()
    return mapping


def parse_schedule(text: str | None) -> str | None:
    """An NCRONTAB expression (six fields, seconds first), or None when reconciliation is off."""
    if not text or not text.strip():
        return None
    fields = text.split()
    if len(fields) != 6 or any(not set(f) <= set("0123456789*/,-") for f in fields):
        raise SettingsError("RECONCILE_SCHEDULE must be an NCRONTAB expression of six fields "
                            f"(second minute hour day month weekday), e.g. '0 */15 * * * *'; got {text!r}")
    return " ".join(fields)


def window(watermark: dt.datetime | None, now: dt.datetime, delay: dt.timedelta, overlap: dt.timedelta,
           first: dt.timedelta) -> tuple[dt.datetime, dt.datetime] | None:
    """The span a run asks about: from a little before the watermark (overlap) to `delay` ago, so the
    webhooks of the newest events have had time to arrive. None when there is nothing new to ask."""
    end = now - delay
    start = (watermark - overlap) if watermark else end - first
    return (start, end) if start < end and (watermark is None or watermark < end) else None


def slices(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """The window oldest first, in steps: the watermark advances after each one is queued."""
    out, t = [], start
    while t < end:
        out.append((t, min(t + step, end)))
        t += step
    return out


def sightings(rows: Iterable[dict]) -> dict[tuple[str, str], list[dt.datetime]]:
    """(ref, trigger) -> Preservica's times, from journal rows (any source)."""
    seen: dict[tuple[str, str], list[dt.datetime]] = {}
    for row in rows:
        when = parse_timestamp(str(row.get("timestamp") or ""))
        if when and row.get("entityRef"):
            seen.setdefault((str(row["entityRef"]), str(row.get("trigger") or "")), []).append(when)
    return seen


def near(when: dt.datetime, times: Iterable[dt.datetime], tolerance: dt.timedelta) -> dt.datetime | None:
    return next((t for t in times if abs(t - when) <= tolerance), None)


def missed(found: Iterable[Found], seen: dict[tuple[str, str], list[dt.datetime]],
           tolerance: dt.timedelta) -> tuple[list[Found], int]:
    """The found events nothing in `seen` stands for (each once), and how many were already there."""
    new: list[Found] = []
    known = {k: list(v) for k, v in seen.items()}
    already = 0
    for f in sorted(set(found), key=lambda f: (f.when, f.ref, f.trigger)):
        times = known.setdefault((f.ref, f.trigger), [])
        if near(f.when, times, tolerance):
            already += 1
            continue
        times.append(f.when)
        new.append(f)
    return new, already


def stamp(when: dt.datetime) -> str:
    """A delivery timestamp as Preservica writes it, in UTC, to the millisecond."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def deliveries(found: Iterable[Found], source: str, tenant: str, max_events: int) -> list[dict]:
    """Delivery documents for the dispatcher, one per (trigger, time): an event's journal row then
    sits at Preservica's time for it, and the same event found again gives the same keys."""
    groups: dict[tuple[str, str], list[Found]] = {}
    for f in found:
        groups.setdefault((f.trigger, stamp(f.when)), []).append(f)
    docs = []
    for (trigger, ts), group in sorted(groups.items(), key=lambda kv: kv[0][1]):
        for i in range(0, len(group), max_events):
            docs.append(_doc(source, ts, trigger, tenant, group[i:i + max_events]))
    return docs


def backfill_deliveries(refs: Iterable[tuple[str, str]], trigger: str, started: dt.datetime, tenant: str,
                        max_events: int) -> list[dict]:
    """Backfill documents: assets bucketed by the first three hex digits of their ref, bucket b at
    `started` + b ms. A resumed backfill (same `started`) gives every asset the same journal row,
    so the dispatcher skips what is done; each delivery's rows are one range query."""
    buckets: dict[int, list[Found]] = {}
    for entity_type, ref in refs:
        if is_ref(ref):
            b = int(ref[:3], 16)
            buckets.setdefault(b, []).append(Found(ref.lower(), entity_type, trigger,
                                                   started + dt.timedelta(milliseconds=b), "Backfill"))
    docs = []
    for b, group in sorted(buckets.items()):
        group.sort(key=lambda f: f.ref)
        for i in range(0, len(group), max_events):
            docs.append(_doc(BACKFILL, stamp(group[0].when), trigger, tenant, group[i:i + max_events]))
    return docs


def _doc(source: str, ts: str, trigger: str, tenant: str, group: list[Found]) -> dict:
    return {"subscriptionId": source, "timestamp": ts, "tenant": tenant, "version": "", "trigger": trigger,
            "events": [{"event": f.event, "entityType": f.entity_type, "entityRef": f.ref, "identifiers": []}
                       for f in group]}


def job_id(since: str, folder: str | None, trigger: str) -> str:
    """A backfill's identity: the same command line resumes the same backfill."""
    return hashlib.sha256(f"{since}|{folder or ''}|{trigger}".encode()).hexdigest()[:24]


def is_late(timestamp: str, now: dt.datetime, delay: dt.timedelta, tolerance: dt.timedelta) -> bool:
    """A webhook delivery old enough that a reconciliation run may already have queued its events."""
    when = parse_timestamp(timestamp)
    return when is not None and now - when >= delay - tolerance
