"""Reconciliation, pure: which Preservica event-log types stand for which webhook trigger, which
window a run asks about, which found events the journal has not seen, and the deliveries that carry
those through the same dispatcher as the webhooks.

One event, one piece of work: a webhook event and an event found in Preservica's log are the same
event when they name the same entity and trigger and Preservica's two times for it are within the
tolerance. Both times come from Preservica's clock (the webhook's `timestamp`, the log's `Date`), so
there is no skew between our machines to absorb, only Preservica's own delay between recording an
event and sending its webhook (for FULL_TEXT_INDEXED: the indexing after ingest).
Matching is one to one: a journaled event stands for at most one logged event, so an asset opened
(webhook arrived) and closed five minutes later (webhook lost) is two events, and the second is queued.
A logged security or visibility change is re-run through publish (and ocr and transcribe, for their fragments)
even when its webhook came (RECHECK): each decides on Preservica's current state and is cheap when nothing changed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import envelope
from .envelope import is_ref, parse_timestamp
from .errors import SettingsError

SOURCES = WEBHOOK, RECONCILE, BACKFILL, RECHECK = "webhook", "reconcile", "backfill", "recheck"
ALWAYS = frozenset({"CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY"})   # re-run even when delivered
# What a RECHECK delivery runs: the actions that follow a change of access on Preservica's state now (publish
# withdraws; ocr and transcribe take a closed file's text out of an opened asset's fragment, reading no file).
RECHECK_ACTIONS = ("publish", "ocr", "transcribe")
DELETED, DELETED_TRIGGER = "Deleted", "CHANGED_SECURITY_DESCRIPTOR"   # a deletion: publish withdraws
UTC = dt.UTC
BUCKETS = 4096  # backfill: one delivery per first three hex digits of the ref (up to 1000 events each)


@dataclass(frozen=True)
class Found:
    """An event Preservica recorded, as a webhook trigger on one entity."""
    ref: str
    entity_type: str    # IO, SO; CO for a content object's security or visibility change (publish takes it)
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


def sightings(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[dt.datetime, str]]]:
    """(ref, trigger) -> [(Preservica's time, source)], from journal rows (any source)."""
    seen: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = {}
    for row in rows:
        when = parse_timestamp(str(row.get("timestamp") or ""))
        if when and row.get("entityRef"):
            seen.setdefault((str(row["entityRef"]), str(row.get("trigger") or "")), []).append(
                (when, str(row.get("source") or WEBHOOK)))
    return seen


def near(when: dt.datetime, times: Iterable[dt.datetime], tolerance: dt.timedelta) -> dt.datetime | None:
    """The time closest to `when` within the tolerance (the earlier on a tie), or None."""
    close = [t for t in times if abs(t - when) <= tolerance]
    return min(close, key=lambda t: (abs(t - when), t)) if close else None


@dataclass
class Gap:
    """What the journal says about the logged events of a slice."""
    new: list[Found]          # nothing journaled stands for them: the webhooks missed them
    recheck: list[Found]      # a webhook stood for them, but their trigger is in ALWAYS
    covered: dict[tuple[str, str], list[dt.datetime]]   # (ref, trigger) -> webhook times used up
    already: int = 0          # stood for by a journaled event (not re-run)


def missed(found: Iterable[Found], seen: dict[tuple[str, str], list[tuple[dt.datetime, str]]],
           tolerance: dt.timedelta, used: set[Any] | None = None) -> Gap:
    """Match each logged event to at most one journaled event of its entity and trigger, and each
    journaled event to at most one logged event: first the reconciler's own rows at exactly the logged
    time (it queued that event before), then, oldest first, the earliest unused one within the tolerance.
    `used`: (ref, trigger, time) of journaled events matched earlier in this run (updated here)."""
    used = set() if used is None else used
    gap = Gap([], [], {})
    pending = []
    for f in sorted(set(found), key=lambda f: (f.when, f.ref, f.trigger)):
        own = [(t, s) for t, s in seen.get((f.ref, f.trigger), ()) if t == f.when and s != WEBHOOK
               and (f.ref, f.trigger, t) not in used]
        if own:
            used.add((f.ref, f.trigger, f.when))
            gap.already += 1
        else:
            pending.append(f)
    for f in pending:
        free = sorted((t, s) for t, s in seen.get((f.ref, f.trigger), ())
                      if abs(t - f.when) <= tolerance and (f.ref, f.trigger, t) not in used)
        if not free:
            gap.new.append(f)
            continue
        t, source = free[0]
        used.add((f.ref, f.trigger, t))
        if source == WEBHOOK:
            gap.covered.setdefault((f.ref, f.trigger), []).append(t)
        if source == WEBHOOK and f.trigger in ALWAYS:
            gap.recheck.append(f)
        else:
            gap.already += 1
    return gap


def event_key(f: Found, source: str = RECONCILE) -> str:
    """The journal key the dispatcher gives this event when the reconciler queues it."""
    doc = _doc(source, stamp(f.when), f.trigger, "", [f])
    return envelope.event_key(envelope.delivery_from_doc(doc), doc["events"][0])


def stamp(when: dt.datetime) -> str:
    """A delivery timestamp as Preservica writes it, in UTC, to the millisecond."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def deliveries(found: Iterable[Found], source: str, tenant: str, max_events: int) -> list[dict[str, Any]]:
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
                        max_events: int) -> list[dict[str, Any]]:
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
    for _, group in sorted(buckets.items()):
        group.sort(key=lambda f: f.ref)
        for i in range(0, len(group), max_events):
            docs.append(_doc(BACKFILL, stamp(group[0].when), trigger, tenant, group[i:i + max_events]))
    return docs


def _doc(source: str, ts: str, trigger: str, tenant: str, group: list[Found]) -> dict[str, Any]:
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
