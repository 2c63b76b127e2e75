"""Dispatcher: one queued delivery becomes one message per (event, routed action).

Before it enqueues anything it records every event and each routed action's `queued` state
in the journal; an action already done/skipped for that event (a re-sent delivery, or a
retry of this dispatch) is not queued again. Journal rows are written only if unchanged since
they were read. Any failure raises, so the queue retries the whole dispatch.
"""
from __future__ import annotations

import logging

import azure.functions as func

from . import envelope, journal, routing, settings

log = logging.getLogger(__name__)
bp = func.Blueprint()
DIGEST_SAMPLE = 5  # events named in a Teams digest card


@bp.queue_trigger(arg_name="msg", queue_name=settings.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
def dispatch_delivery(msg: func.QueueMessage) -> None:
    dispatch(msg.get_body())


_routes_cache: tuple[str | None, routing.Routes] | None = None


def routes() -> routing.Routes:
    global _routes_cache
    text = settings.get("PRESERVICA_ROUTES")
    if _routes_cache is None or _routes_cache[0] != text:
        _routes_cache = (text, routing.parse(text))
    return _routes_cache[1]


def dispatch(raw: bytes) -> dict:
    from .secrets import default as secret_source
    from .storage import default as storage
    from .action_config import missing

    doc = envelope.read_intake_message(raw)
    did = doc["id"]
    # The same checks intake made before acknowledging (a message from an older version, or one put
    # on the queue by hand, fails here and goes to poison rather than half-way through the journal).
    if "blob" in doc:
        delivery, _ = envelope.parse_delivery(storage().get_blob(settings.DELIVERY_CONTAINER, doc["blob"]))
    else:
        delivery = envelope.delivery_from_doc(doc["delivery"])

    actions = routes().actions_for(delivery.trigger)
    secrets = secret_source()
    not_ready = {a: missing(a, secrets) for a in actions}
    book = journal.default()
    pk, prefix = envelope.journal_partition(delivery), envelope.journal_row_prefix(delivery, did)
    existing = book.rows_with_prefix(pk, prefix)

    rows: dict[str, dict] = {}
    jobs: list[envelope.Job] = []
    clip = journal.clip
    for event in delivery.events:
        key = envelope.event_key(delivery, event)
        rk = prefix + key
        if rk in rows:
            continue  # the same event twice in one delivery
        row = {"PartitionKey": pk, "RowKey": rk, "key": key, "deliveryId": did, "received": doc.get("received", ""),
               "trigger": clip(delivery.trigger), "tenant": clip(delivery.tenant),
               "subscriptionId": clip(delivery.subscription_id), "timestamp": clip(delivery.timestamp),
               "entityType": clip(str(event.get("entityType") or "").upper()),
               "entityRef": clip(envelope.entity_ref(event)), "event": clip(event.get("event") or ""),
               "actions": ",".join(actions)}
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

    jobs = _teams_digest(jobs, delivery, did, pk, prefix, rows)
    # Conditional on what was read: if an action finished or was claimed meanwhile, this raises and the
    # queue retries the dispatch, which then sees that state instead of queuing the action again.
    book.merge_if_unchanged(rows.values(), existing)
    # Messages are built as they are sent, so a large delivery never holds them all at once.
    sent = storage().send_many((settings.action_queue(j.action), j.to_message()) for j in jobs)
    log.info("delivery %s dispatched: trigger=%s events=%d messages=%d", did, delivery.trigger, len(rows), sent)
    return {"events": len(rows), "messages": sent}


def _teams_digest(jobs, delivery, did, pk, prefix, rows) -> list[envelope.Job]:
    """Many events for Teams become one digest card rather than a flood of cards."""
    teams = [j for j in jobs if j.action == "teams"]
    if len(teams) <= settings.get_int("TEAMS_DIGEST_THRESHOLD"):
        return jobs
    counts: dict[str, int] = {}
    for j in teams:
        counts[j.entity_type or "?"] = counts.get(j.entity_type or "?", 0) + 1
        rows[j.rk]["teams_reason"] = "in digest"
    # The action settles the rows of this delivery (`prefix` + subscription and trigger) still queued
    # for Teams, so the message stays small whatever the number of events.
    digest = {"total": len(teams), "counts": counts, "prefix": prefix,
              "sample": [{"entityType": j.entity_type, "entityRef": j.entity_ref} for j in teams[:DIGEST_SAMPLE]]}
    key = envelope.event_key(delivery, {"event": "digest"})
    job = envelope.Job(action="teams", kind="digest", key=key, pk=pk, rk=prefix + "digest-" + key, delivery_id=did,
                       trigger=delivery.trigger, tenant=delivery.tenant, subscription_id=delivery.subscription_id,
                       timestamp=delivery.timestamp, event={}, digest=digest)
    # The digest gets a journal row of its own, so `hookops events` shows the card and its state.
    rows[job.rk] = {"PartitionKey": pk, "RowKey": job.rk, "key": key, "deliveryId": did, "trigger": delivery.trigger,
                    "tenant": delivery.tenant, "subscriptionId": delivery.subscription_id,
                    "timestamp": delivery.timestamp, "entityType": "", "entityRef": f"(digest of {len(teams)} events)",
                    "event": "digest", "actions": "teams", **journal.state_columns("teams", journal.QUEUED)}
    return [j for j in jobs if j.action != "teams"] + [job]
