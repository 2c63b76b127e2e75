"""The queue messages. Pure, no I/O.

Intake message (queue `preservica-deliveries`), one per delivery:
    {"v": 1, "id": <delivery id>, "received": <iso>, "delivery": <the body, verbatim>}
  or, when that would not fit one queue message (claim check):
    {"v": 1, "id": ..., "received": ..., "blob": <name in the deliveries container>}
  Either may carry "offset": the dispatcher works through a delivery a page of events at a time, and
  each page's invocation ends by queuing the message for the next page (a continuation).
Action message (queue `action-<name>`): a batch of up to ACTION_BATCH_SIZE events of one delivery
for one action, packed to fit the 48 KiB payload; each event may carry the Preservica snapshot the
dispatcher took for it. An action's fan-out hook may send a message of its own kind (Teams: a digest).
    {"v": 1, "action", "kind", "deliveryId", "trigger", "tenant", "subscriptionId", "timestamp", "pk",
     "events": [{"key", "rk", "event", "snapshot"?}], "digest"?, "traceparent"?, "deferrals"?, "waitingSince"?}
  An action that waits for others (pipeline/waits.py) puts its events back with how often they were put back
  and since when they wait.
Every message may carry the W3C `traceparent` of the span that sent it (clients/telemetry.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace  # noqa: F401 (replace: callers adjust jobs with it)
from typing import Any

from .envelope import Delivery, _text, entity_ref
from .errors import InvalidMessage

VERSION = 1
# A queue message holds 64 KiB (learn.microsoft.com/rest/api/storageservices/put-message) once base64-encoded,
# i.e. 48 KiB of payload.
MAX_QUEUE_PAYLOAD = 48 * 1024
_HEADER = ("deliveryId", "trigger", "tenant", "subscriptionId", "timestamp", "pk")


# ---- intake message -------------------------------------------------------------------------

def intake_message(did: str, received: str, body_text: str, traceparent: str | None = None,
                   source: str | None = None, offset: int = 0) -> str:
    """The body is already checked JSON, so it is embedded verbatim: no second serialisation.
    `source`: where the events came from when not a webhook ("reconcile", "backfill")."""
    trace = f',"traceparent":{json.dumps(traceparent)}' if traceparent else ""
    trace += f',"source":{json.dumps(source)}' if source else ""
    trace += f',"offset":{int(offset)}' if offset else ""
    return f'{{"v":{VERSION},"id":"{did}","received":"{received}"{trace},"delivery":{body_text}}}'


def claim_message(did: str, received: str, blob_name: str, traceparent: str | None = None,
                  source: str | None = None, offset: int = 0) -> str:
    doc = {"v": VERSION, "id": did, "received": received, "blob": blob_name}
    if traceparent:
        doc["traceparent"] = traceparent
    if source:
        doc["source"] = source
    if offset:
        doc["offset"] = int(offset)
    return json.dumps(doc, separators=(",", ":"))


def fits_queue(message: str) -> bool:
    return len(message.encode("utf-8")) <= MAX_QUEUE_PAYLOAD


def read_intake_message(raw: bytes | str) -> dict[str, Any]:
    doc = _load(raw)
    if not isinstance(doc.get("id"), str) or ("delivery" not in doc and not isinstance(doc.get("blob"), str)):
        raise InvalidMessage("intake message has neither 'delivery' nor 'blob'")
    offset = doc.setdefault("offset", 0)
    if type(offset) is not int or offset < 0:
        raise InvalidMessage("intake message's 'offset' is not a whole number")
    return doc


def _load(raw: bytes | str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidMessage("message is not JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != VERSION:
        raise InvalidMessage(f"message is not a version {VERSION} envelope")
    return doc


# ---- action messages ------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One (event, action) unit of work: what an action's perform() receives."""
    action: str
    key: str
    pk: str
    rk: str
    delivery_id: str
    trigger: str
    tenant: str
    subscription_id: str
    timestamp: str
    event: dict[str, Any]
    kind: str = "event"           # "event", or another kind an action's fan-out hook makes (Teams: "digest")
    digest: dict[str, Any] | None = None    # that hook's own data for a message standing for many events
    snapshot: dict[str, Any] | None = field(default=None, compare=False)  # what the dispatcher read from Preservica
    traceparent: str | None = field(default=None, compare=False)  # the trace the message belongs to
    attempt: int = field(default=1, compare=False)  # the message's delivery count: > 1, an earlier try may have acted
    deferrals: int = field(default=0, compare=False)   # times put back to wait for other actions (pipeline/waits.py)
    waiting_since: str = field(default="", compare=False)   # when it first waited (ISO time)
    # Where the dispatcher put the event's journal row (journal.POSITION), and a message's span of them: the
    # claim reads only the rows in the span (a batch's RowKeys, hashes, range over the whole delivery).
    position: str = field(default="", compare=False)
    span: tuple[str, str] | None = field(default=None, compare=False)

    @property
    def entity_type(self) -> str:
        return _text(self.event.get("entityType")).upper()

    @property
    def entity_ref(self) -> str:
        return entity_ref(self.event)

    def entry(self, with_snapshot: bool = True) -> dict[str, Any]:
        doc = {"key": self.key, "rk": self.rk, "event": self.event}
        if with_snapshot and self.snapshot is not None:
            doc["snapshot"] = self.snapshot
        return doc


def jobs_for(delivery: Delivery, did: str, event: dict[str, Any], actions: tuple[str, ...], key: str, pk: str,
             rk: str, position: str = "") -> list[Job]:
    return [Job(action=a, key=key, pk=pk, rk=rk, delivery_id=did, trigger=delivery.trigger, tenant=delivery.tenant,
                subscription_id=delivery.subscription_id, timestamp=delivery.timestamp, event=event,
                position=position) for a in actions]


MAX_POSITION = 200   # a position is "<delivery id>/<9 digits>": far less


def _span(jobs: list[Job]) -> list[str] | None:
    """The positions of these jobs' rows, first and last; a job read from a message has its message's span."""
    if all(j.position for j in jobs):
        return [min(j.position for j in jobs), max(j.position for j in jobs)]
    spans = {j.span for j in jobs}
    only = spans.pop() if len(spans) == 1 else None
    return list(only) if only is not None else None


def _read_span(value: Any) -> tuple[str, str] | None:
    """A message's span, or None (read every row then) where it is absent or not two short strings in order."""
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and 0 < len(v) <= MAX_POSITION
                                                            for v in value) and value[0] <= value[1]):
        return value[0], value[1]
    return None


def _header(job: Job) -> dict[str, Any]:
    return {"v": VERSION, "action": job.action, "kind": job.kind, "deliveryId": job.delivery_id,
            "trigger": job.trigger, "tenant": job.tenant, "subscriptionId": job.subscription_id,
            "timestamp": job.timestamp, "pk": job.pk}


def pack(jobs: list[Job], max_events: int, traceparent: str | None = None) -> list[str]:
    """Messages for jobs of one action, one delivery and one kind: up to `max_events` each, each within
    the queue payload. An event is at most MAX_EVENT_BYTES; one whose snapshot would not fit goes without
    it, and its action reads Preservica itself."""
    if not jobs:
        return []
    head = _header(jobs[0])
    if jobs[0].digest is not None:
        head["digest"] = jobs[0].digest
    if traceparent:
        head["traceparent"] = traceparent
    if jobs[0].deferrals:
        head.update(deferrals=jobs[0].deferrals, waitingSince=jobs[0].waiting_since)
    prefix = json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1] + ',"events":['
    out: list[str] = []
    parts: list[str] = []
    held: list[Job] = []
    size = 0
    # Room for the span in the header: two positions, quoted, and the key.
    head_bytes = len(prefix.encode()) + 2 * MAX_POSITION + 16

    def message() -> str:
        span = _span(held)
        head = prefix if span is None else prefix[:-len('"events":[')] + f'"span":{json.dumps(span)},"events":['
        return head + ",".join(parts) + "]}"
    for job in jobs:
        part = json.dumps(job.entry(), separators=(",", ":"), ensure_ascii=False)
        if head_bytes + len(part.encode()) + 2 > MAX_QUEUE_PAYLOAD:
            part = json.dumps(job.entry(with_snapshot=False), separators=(",", ":"), ensure_ascii=False)
        grown = head_bytes + size + len(part.encode()) + len(parts) + 2
        if parts and (len(parts) >= max_events or grown > MAX_QUEUE_PAYLOAD):
            out.append(message())
            parts, held, size = [], [], 0
        parts.append(part)
        held.append(job)
        size += len(part.encode())
    out.append(message())
    return out


def read_batch(raw: bytes | str) -> list[Job]:
    """The jobs of one action message, in the order they were packed."""
    doc = _load(raw)
    try:
        head = {k: doc[k] for k in _HEADER}
        base = Job(action=doc["action"], key="", pk=head["pk"], rk="", delivery_id=head["deliveryId"],
                   trigger=head["trigger"], tenant=head["tenant"], subscription_id=head["subscriptionId"],
                   timestamp=head["timestamp"], event={}, kind=doc.get("kind", "event"), digest=doc.get("digest"),
                   traceparent=doc.get("traceparent") if isinstance(doc.get("traceparent"), str) else None,
                   deferrals=_count(doc.get("deferrals")), waiting_since=str(doc.get("waitingSince") or "")[:40],
                   span=_read_span(doc.get("span")))
        jobs = [replace(base, key=e["key"], rk=e["rk"], event=e.get("event") or {}, snapshot=e.get("snapshot"))
                for e in doc["events"]]
    except (KeyError, TypeError):
        raise InvalidMessage("action message lacks a required field") from None
    if not jobs:
        raise InvalidMessage("action message holds no events")
    return jobs


def _count(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise InvalidMessage("action message's 'deferrals' is not a whole number")
    return value
