"""Poison queues (`<queue>-poison`, where the Functions host puts a message it gave up on): count,
peek with what each message was for, and replay back to the queue (a fresh retry budget).

Shared by `hookops poison` (hookops/poison.py) and the console (handlers/console/). Messages are
moved byte for byte (`raw` clients): still base64, as the host reads them; only an event put back to wait has
its wait started again (_fresh).
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

from ..core import settings

POISON_SUFFIX = "-poison"
BATCH = 32          # the most messages one receive returns
SCAN_LIMIT = 320    # messages looked at to find one by id (replay one): bounded, not the whole queue


@dataclass(frozen=True)
class PoisonMessage:
    id: str
    inserted: dt.datetime | None
    expires: dt.datetime | None
    what: str                 # what it was for (describe()), or "not a pipeline message"
    doc: dict | None          # the decoded message, None when it is not JSON


def pipeline_queues(actions) -> list[str]:
    """The delivery queue and each action's queue (`actions`: registry.names()): those with a poison queue."""
    return [settings.DELIVERY_QUEUE] + [settings.action_queue(a) for a in actions]


def raw_queue(store, name: str):
    return store.queue(name, raw=True)


def count(store, queue: str) -> int:
    """Approximate number of messages in `queue`'s poison queue (0 when it does not exist)."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        return raw_queue(store, queue + POISON_SUFFIX).get_queue_properties().approximate_message_count or 0
    except ResourceNotFoundError:
        return 0


def decode(content) -> dict | None:
    """A poison message's body as the pipeline wrote it, or None when it is not base64 JSON of an object."""
    try:
        doc = json.loads(base64.b64decode(content, validate=False))
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


def describe(doc: dict) -> str:
    """What a pipeline message was for: the delivery, or the action and the events of its batch.
    Raises ValueError for anything else."""
    events = doc.get("events")
    if "action" not in doc or not isinstance(events, list):
        if isinstance(doc.get("id"), str):
            return f"action=dispatch delivery={doc['id']}"
        raise ValueError("not a pipeline message")
    refs = [str(e["event"].get("entityRef") or "-") if isinstance(e, dict) and isinstance(e.get("event"), dict) else "?"
            for e in events[:3]]
    more = f" and {len(events) - 3} more" if len(events) > 3 else ""
    return (f"action={doc.get('action')} kind={doc.get('kind', 'event')} delivery={doc.get('deliveryId')} "
            f"events={len(events)} refs={','.join(refs)}{more}")


def _message(m) -> PoisonMessage:
    doc = decode(m.content)
    try:
        what = describe(doc) if doc is not None else "not a pipeline message"
    except (ValueError, AttributeError, TypeError):
        what = "not a pipeline message"
    return PoisonMessage(m.id, m.inserted_on, m.expires_on, what, doc)


def peek(store, queue: str, limit: int = BATCH) -> list[PoisonMessage]:
    """Up to `limit` (at most 32, the service's peek limit) messages of `queue`'s poison queue, unchanged."""
    from azure.core.exceptions import ResourceNotFoundError
    if limit <= 0:
        return []
    try:
        return [_message(m) for m in raw_queue(store, queue + POISON_SUFFIX).peek_messages(max_messages=min(limit, BATCH))]
    except ResourceNotFoundError:
        return []


def _target(store, queue: str):
    # The host creates its trigger queues; one removed by hand since would fail every send.
    from azure.core.exceptions import ResourceExistsError
    target = raw_queue(store, queue)
    try:
        target.create_queue()
    except ResourceExistsError:
        pass
    return target


def _move(target, source, m) -> None:
    # Send first: a crash in between duplicates, never loses. With no expiry: the storage default
    # (7 days) would drop it unprocessed if the app stayed down that long.
    target.send_message(_fresh(m.content), time_to_live=-1)
    source.delete_message(m)


def _fresh(content):
    """The message as it was, but for an event put back to wait (pipeline/waits.py): its wait starts again. Kept, its
    `waitingSince` of hours ago would make a replayed `describe` run at once without the `ocr` replayed with it,
    and one that meets another run's lease fail at once again."""
    doc = decode(content)
    if doc is None or "action" not in doc or not ({"waitingSince", "deferrals"} & doc.keys()):
        return content
    doc.pop("waitingSince", None)
    doc.pop("deferrals", None)
    # As messages.pack writes it, so the message grows by nothing but its base64.
    return base64.b64encode(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()).decode()


def replay(store, queue: str, limit: int = 0, progress=None) -> int:
    """Move poison messages of `queue` back to it (all, or at most `limit`). Returns how many."""
    if not count(store, queue):
        return 0
    source, target = raw_queue(store, queue + POISON_SUFFIX), _target(store, queue)
    n = 0
    while not limit or n < limit:
        batch = list(source.receive_messages(max_messages=BATCH, visibility_timeout=60))
        if not batch:
            break
        for m in batch[: (limit - n) if limit else None]:
            _move(target, source, m)
            n += 1
        if progress:
            progress(n)
    return n


def replay_one(store, queue: str, message_id: str) -> bool:
    """Move the poison message `message_id` of `queue` back to it. False when it is not found among the
    first SCAN_LIMIT messages (replayed already, expired, or someone else holds it now)."""
    from azure.core.exceptions import ResourceNotFoundError
    source = raw_queue(store, queue + POISON_SUFFIX)
    held, found = [], False
    try:
        while len(held) < SCAN_LIMIT and not found:
            batch = list(source.receive_messages(max_messages=BATCH, visibility_timeout=30))
            if not batch:
                break
            for m in batch:
                if m.id == message_id and not found:
                    _move(_target(store, queue), source, m)
                    found = True
                else:
                    held.append(m)
    except ResourceNotFoundError:
        return False
    finally:
        for m in held:  # the others become visible again at once, as they were
            try:
                source.update_message(m, visibility_timeout=0)
            except ResourceNotFoundError:
                pass
    return found


def expiry(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """When a message expires, and how long is left; Azure reports 9999-12-31 for "never"."""
    if when is None:
        return "unknown"
    if when.year >= 9999:
        return "never"
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    left = when - (now or dt.datetime.now(dt.UTC))
    hint = f"in {left.days}d {left.seconds // 3600}h" if left.total_seconds() > 0 else "expired"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({hint})"
