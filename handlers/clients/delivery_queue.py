"""Putting one delivery on the delivery queue: intake, the reconciler and backfill all do it this way."""
from __future__ import annotations

from ..core import messages, settings


def enqueue(store, did: str, received: str, text: str, traceparent: str | None = None,
            source: str | None = None) -> None:
    """The delivery's JSON `text` in one queue message; over the 48 KiB queue payload, in a blob of the
    deliveries container with the message carrying its name (claim check: two writes, any size)."""
    message = messages.intake_message(did, received, text, traceparent, source)
    if not messages.fits_queue(message):
        name = f"{did}.json"
        store.put_blob(settings.DELIVERY_CONTAINER, name, text.encode("utf-8"), "application/json")
        message = messages.claim_message(did, received, name, traceparent, source)
    store.send(settings.DELIVERY_QUEUE, message)
