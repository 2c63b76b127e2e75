"""Dispatcher: one queued delivery becomes one message per (event, routed action).

Before it enqueues anything it records every event and each routed action's `queued` state
in the journal; an action already done/skipped for that event (a re-sent delivery, or a
retry of this dispatch) is not queued again. Journal rows are written only if unchanged since
they were read. Any failure raises, so the queue retries the whole dispatch.
"""
from __future__ import annotations

import logging

import azure.functions as func

from .core import envelope, settings

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=settings.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
def dispatch_delivery(msg: func.QueueMessage) -> None:
    dispatch(msg.get_body())


def dispatch(raw: bytes) -> dict:
    from .actions import registry
    from .clients import journal
    from .clients.secrets import default as secret_source
    from .clients.storage import default as storage

    doc = envelope.read_intake_message(raw)
    did = doc["id"]
    # The same checks intake made before acknowledging (a message from an older version, or one put
    # on the queue by hand, fails here and goes to poison rather than half-way through the journal).
    if "blob" in doc:
        delivery, _ = envelope.parse_delivery(storage().get_blob(settings.DELIVERY_CONTAINER, doc["blob"]))
    else:
        delivery = envelope.delivery_from_doc(doc["delivery"])

    actions = registry.routes().actions_for(delivery.trigger)
    secrets = secret_source()
    not_ready = {a: registry.missing(a, secrets) for a in actions}
    book = journal.default()
    pk, prefix = envelope.journal_partition(delivery), envelope.journal_row_prefix(delivery, did)
    existing = book.rows_with_prefix(pk, prefix)

    rows: dict[str, dict] = {}
    jobs: list[envelope.Job] = []
    for event in delivery.events:
        key = envelope.event_key(delivery, event)
        rk = prefix + key
        if rk in rows:
            continue  # the same event twice in one delivery
        row = journal.event_row(pk, rk, key, did, doc.get("received", ""), delivery, event, actions)
        for job in envelope.jobs_for(delivery, did, event, actions, key, pk, rk):
            before = existing.get(rk)
            if journal.state_of(before, job.action) in journal.TERMINAL:
                continue
            if journal.live_claim(before, job.action):
                continue  # being performed now (a second copy of this delivery): its own message retries it
            if not_ready[job.action]:
                row.update(journal.state_columns(job.action, journal.SKIPPED, f"not configured: {not_ready[job.action]}"))
                continue
            row.update(journal.state_columns(job.action, journal.QUEUED))
            jobs.append(job)
        rows[rk] = row

    for action in actions:  # an action may replace its jobs for this delivery (Teams: one digest)
        if hook := registry.get(action).fan_out:
            jobs = hook(jobs, delivery, did, pk, prefix, rows)
    # Conditional on what was read: if an action finished or was claimed meanwhile, this raises and the
    # queue retries the dispatch, which then sees that state instead of queuing the action again.
    book.merge_if_unchanged(rows.values(), existing)
    # Messages are built as they are sent, so a large delivery never holds them all at once.
    sent = storage().send_many((settings.action_queue(j.action), j.to_message()) for j in jobs)
    log.info("delivery %s dispatched: trigger=%s events=%d messages=%d", did, delivery.trigger, len(rows), sent)
    return {"events": len(rows), "messages": sent}
