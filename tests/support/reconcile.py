"""The reconcile tests' world: three assets in a folder of the Preservica double, the clock they are judged
by, and webhooks put through the real dispatcher. Its fixtures (pres, env) are in tests/reconcile/conftest.py."""
from __future__ import annotations

import datetime as dt

from handlers import dispatch
from handlers.clients import journal
from handlers.core import envelope, messages, settings
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.host import queues

USER, PASSWORD, TENANT = "recon-user", "recon-password", "ARCHIVE"
UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(second=0, microsecond=0)  # the dispatcher judges lateness by the clock
A, B, C = ref("recon-a"), ref("recon-b"), ref("recon-c")
FOLDER = ref("recon-folder")


def dispatch_all(conn: str) -> int:
    """Take every delivery off the delivery queue and dispatch it, as the queue function would."""
    from handlers.clients.storage import default
    q, n = default().queue(settings.DELIVERY_QUEUE), 0
    queues.ensure(q)
    while batch := list(q.receive_messages(max_messages=32)):
        for m in batch:
            dispatch.dispatch(m.content.encode() if isinstance(m.content, str) else m.content)
            q.delete_message(m)
            n += 1
    return n


def webhook(refs, when: dt.datetime, trigger="FULL_TEXT_INDEXED", entity_type: str = "IO") -> None:
    doc = delivery(trigger=trigger, refs=refs, timestamp=when.strftime("%Y-%m-%dT%H:%M:%S.000"), entity_type=entity_type)
    body = encode(doc)
    dispatch.dispatch(messages.intake_message(envelope.delivery_id(body), "x", body.decode()).encode())


def journaled() -> list[dict]:
    return journal.default().recent(1000)
