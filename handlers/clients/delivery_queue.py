"""Putting one delivery on the delivery queue: intake, the reconciler and backfill all do it this way."""
from __future__ import annotations

import json

from ..core import messages, settings
from ..core.errors import InvalidMessage


def enqueue(store, did: str, received: str, text: str, traceparent: str | None = None,
            source: str | None = None, offset: int = 0) -> None:
    """The delivery's JSON `text` in one queue message; over the 48 KiB queue payload, in a blob of the
    deliveries container with the message carrying its name (claim check: two writes, any size).
    `offset`: the first event the dispatcher is to look at (a continuation; see continue_at)."""
    message = messages.intake_message(did, received, text, traceparent, source, offset)
    if not messages.fits_queue(message):
        name = f"{did}.json"
        store.put_blob(settings.DELIVERY_CONTAINER, name, text.encode("utf-8"), "application/json")
        message = messages.claim_message(did, received, name, traceparent, source, offset)
    store.send(settings.DELIVERY_QUEUE, message)


def enqueue_document(store, doc: dict, source: str) -> str:
    """A delivery document the app made itself (reconciler, backfill) on the queue as intake would put a
    webhook's: compact UTF-8 JSON, its id the digest of those bytes, received now. Its id."""
    from ..core import envelope
    from .journal import now_iso
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    did = envelope.delivery_id(text.encode("utf-8"))
    enqueue(store, did, now_iso(), text, source=source)
    return did


def continue_at(store, doc: dict, offset: int) -> None:
    """Queue the rest of a delivery from event `offset`: the claim-checked body is named again (one queue
    write); a delivery that came inline is put back inline (in a blob if it has grown past the payload)."""
    trace = doc.get("traceparent") if isinstance(doc.get("traceparent"), str) else None
    source = doc.get("source") if isinstance(doc.get("source"), str) else None
    received = doc.get("received")
    # intake_message embeds id and time verbatim: text that JSON would escape is not carried on
    received = received if isinstance(received, str) and json.dumps(received) == f'"{received}"' else ""
    if "blob" in doc:
        store.send(settings.DELIVERY_QUEUE,
                   messages.claim_message(doc["id"], received, doc["blob"], trace, source, offset))
    elif json.dumps(doc["id"]) != f'"{doc["id"]}"':
        raise InvalidMessage("intake message's 'id' is not plain text")
    else:
        text = json.dumps(doc["delivery"], ensure_ascii=False, separators=(",", ":"))
        enqueue(store, doc["id"], received, text, trace, source, offset)
