"""Dispatcher: one queued delivery becomes, per routed action, a few batch messages of its events.

A delivery is worked through a page of MAX_EVENTS_PER_DELIVERY events per invocation: each page's
invocation ends by queuing a continuation (the same message with the next offset, naming the same
claim-checked body), so one invocation's memory and time are bounded whatever the delivery's size,
and a failure retries its page only. A page run twice queues no action twice that has finished.

Before it enqueues anything it records every event and each routed action's `queued` state in the
journal; an action already finished for that event (a re-sent delivery, or a retry of this dispatch),
or being performed now, is not queued again, nor an event an earlier page of the delivery has. A page
reads only the rows it wrote itself (a retry), by their POSITION column, so what it reads does not grow
with the pages before it; a row it did not read is created as new, and one that was there after all is
read then and decided again. Journal rows are written only if unchanged since they were read. Then
it reads from Preservica, once per event, what the routed actions declare they read (the snapshot the
messages carry), and sends the batches. Any failure raises, so the queue retries
the whole dispatch.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import azure.functions as func

from .core import reconcile, settings
from .core.errors import SafeError

if TYPE_CHECKING:   # envelope and messages load with the first delivery, not at indexing
    from .core import messages

log = logging.getLogger(__name__)
bp = func.Blueprint()
SNAPSHOT_CONCURRENCY = 8  # Preservica reads at once; PRESERVICA_MAX_RPS bounds their rate
WRITE_ROUNDS = 6  # a page's journal write, decided again each time rows it took for new were there, or changed


@bp.queue_trigger(arg_name="msg", queue_name=settings.DELIVERY_QUEUE, connection="AzureWebJobsStorage")
def dispatch_delivery(msg: func.QueueMessage) -> None:
    dispatch(msg.get_body())


def dispatch(raw: bytes) -> dict:
    from .clients import telemetry
    from .core import messages
    doc = messages.read_intake_message(raw)
    parent = doc.get("traceparent") if isinstance(doc.get("traceparent"), str) else None
    with telemetry.span("dispatch", parent=parent, delivery__id=doc["id"], queue__wait_ms=_waited_ms(doc)):
        return _dispatch(doc)


def _waited_ms(doc: dict) -> int | None:
    """How long the delivery waited on the queue since intake acknowledged it."""
    import datetime as dt
    try:
        received = dt.datetime.fromisoformat(str(doc.get("received")))
        return int((dt.datetime.now(dt.UTC) - received).total_seconds() * 1000)
    except (TypeError, ValueError):
        return None


def _dispatch(doc: dict) -> dict:
    from .clients import journal, telemetry
    from .clients.secrets import default as secret_source
    from .clients.storage import default as storage
    from .core import envelope, messages
    from .pipeline import registry

    did, offset = doc["id"], doc["offset"]
    page = settings.get_int("MAX_EVENTS_PER_DELIVERY", minimum=1)
    # The same checks intake made before acknowledging (a message from an older version, or one put
    # on the queue by hand, fails here and goes to poison rather than half-way through the journal).
    if "blob" in doc:
        delivery, total = envelope.parse_page(storage().get_blob(settings.DELIVERY_CONTAINER, doc["blob"]),
                                              offset, page)
    else:  # inline: within the 48 KiB queue payload, already parsed
        delivery = envelope.delivery_from_doc(doc["delivery"])
        total, delivery = len(delivery.events), replace(delivery, events=delivery.events[offset:offset + page])

    source = doc.get("source") if doc.get("source") in reconcile.SOURCES else reconcile.WEBHOOK
    same_event = _identity_guard(delivery, source)
    actions = registry.routes().actions_for(delivery.trigger)
    if source == reconcile.RECHECK:   # a logged security or visibility change re-checked: publish only
        actions = tuple(a for a in actions if a in reconcile.RECHECK_ACTIONS)
    secrets = secret_source()
    book = journal.default()
    pk, prefix = journal.partition(delivery), journal.row_prefix(delivery, did)
    keyed = [(event, envelope.event_key(delivery, event)) for event in delivery.events]
    page_rks = {prefix + key for _, key in keyed}
    placed = (journal.position(did, offset), journal.position(did, offset + page - 1))
    existing = _page_rows(book, pk, page_rks, *placed)
    if same_event:  # the guard is asked about new events only: which are new, a point read each
        existing.update(book.rows_at(pk, page_rks - existing.keys()))
    taken: dict = {}  # snapshots, read once however many times the page is decided
    for _ in range(WRITE_ROUNDS):
        rows, jobs = _decide(doc, delivery, keyed, existing, actions, source, same_event, secrets, taken)
        for rk in rows.keys() - existing.keys() - page_rks:  # a hook's own rows
            if (row := book.get(pk, rk)) is not None:
                existing[rk] = row
        # Conditional on what was read: if an action finished or was claimed meanwhile, this raises and the
        # queue retries the dispatch, which then sees that state instead of queuing the action again.
        try:
            book.merge_if_unchanged(rows.values(), existing)
            break
        except journal.RowsExist as exc:  # rows taken for new were there (another page's or delivery's): decide
            existing.update(book.rows_at(pk, exc.rks))  # again knowing them; this page's written rows are in `existing`
        except journal.Conflict:
            # An action wrote some of these rows meanwhile (a page run again while its events' actions run): read
            # them again and decide again. Failing the message instead, its retries could run out while the actions
            # go on writing, and the delivery's later pages (queued by this one) would wait with it in poison.
            again = _page_rows(book, pk, page_rks, *placed)
            existing.update({**again, **book.rows_at(pk, existing.keys() - again.keys())})
    else:
        raise journal.Conflict("journal rows kept appearing or changing while this page was written")
    size = settings.get_int("ACTION_BATCH_SIZE", minimum=1)
    groups: dict[tuple[str, str], list[messages.Job]] = {}
    for job in jobs:
        groups.setdefault((job.action, job.kind), []).append(job)
    trace = telemetry.traceparent()  # every action message continues this delivery's trace
    sent = storage().send_many((settings.action_queue(action), m) for (action, _), group in groups.items()
                               for m in messages.pack(group, min(size, registry.get(action).batch_size or size), trace))
    rest = offset + page < total
    if rest:  # after this page's messages: a failure before here retries this page, not the next
        from .clients import delivery_queue
        delivery_queue.continue_at(storage(), doc, offset + page)
    telemetry.annotate(delivery__trigger=delivery.trigger, delivery__events=len(rows), dispatch__messages=sent,
                       dispatch__offset=offset, delivery__total=total)
    log.info("delivery %s dispatched: trigger=%s events=%d (from %d of %d) messages=%d", did, delivery.trigger,
             len(rows), offset, total, sent)
    return {"events": len(rows), "messages": sent, **({"next": offset + page} if rest else {})}


def _decide(doc: dict, delivery, keyed: list, existing: dict[str, dict], actions: tuple[str, ...], source: str,
            same_event, secrets, taken: dict) -> tuple[dict[str, dict], list[messages.Job]]:
    """The page's journal rows and action jobs, given the rows it read (`existing`)."""
    from .clients import journal
    from .core import messages
    from .pipeline import registry
    did, offset = doc["id"], doc["offset"]
    not_ready = {a: registry.missing(a, secrets) for a in actions}
    pk, prefix = journal.partition(delivery), journal.row_prefix(delivery, did)
    rows: dict[str, dict] = {}
    jobs: list[messages.Job] = []
    for i, (event, key) in enumerate(keyed):
        rk = prefix + key
        before = existing.get(rk)
        # The same event twice in one delivery: where it is first does the work. An earlier page of this delivery
        # has it there: that page's messages went before its continuation did, and so before this page could run.
        if rk in rows or journal.placed_before(before, did, offset):
            continue
        row = journal.event_row(pk, rk, key, did, doc.get("received", ""), delivery, event, actions, source)
        row[journal.POSITION] = journal.position(did, offset + i)
        first = same_event(event, key) if same_event and before is None else None
        if first:  # the reconciler and a late webhook found the same event: the first one does the work
            for action in actions:
                row.update(journal.state_columns(action, journal.SKIPPED, f"same event as the {first['source']} one"))
            rows[rk] = {**row, "sameAs": journal.clip(first["key"])}
            continue
        for job in messages.jobs_for(delivery, did, event, actions, key, pk, rk, row[journal.POSITION]):
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

    jobs = _with_snapshots(jobs, secrets, taken)
    for action in actions:  # an action may replace its jobs for this delivery (Teams: one digest)
        mine = [j for j in jobs if j.action == action]
        if mine and (hook := registry.get(action).fan_out) and (fan := hook(mine, delivery)) is not None:
            jobs = [j for j in jobs if j.action != action] + fan.jobs
            for rk, reason in fan.reasons.items():
                rows[rk].update(journal.state_columns(action, journal.QUEUED, reason))
            rows.update(fan.rows)
    return rows, jobs


def _page_rows(book, pk: str, rks: set[str], first: str, last: str) -> dict[str, dict]:
    """The journal rows this page wrote before (a retry): those of its RowKeys placed in [first, last]
    (journal.Journal.placed), never the rows of the pages before it. Rows it does not read are created as
    new; one that is there fails its write and is read then."""
    return book.placed(pk, rks, first, last) if rks else {}


def _identity_guard(delivery, source: str):
    """For webhooks late enough that the reconciler may have queued their events already: a check that
    records the event's identity and says whether the reconciler's record of it came first (each record
    stands for one event only). None for the rest: on-time webhooks and backfill cost nothing more; the
    reconciler claims its events before it queues them (reconcile_state.claim_logged), so its deliveries
    are put through as queued; security and visibility changes always run (publish converges)."""
    import datetime as dt

    from .core import envelope
    if source != reconcile.WEBHOOK or delivery.trigger in reconcile.ALWAYS:
        return None
    tolerance = dt.timedelta(minutes=settings.get_int("RECONCILE_TOLERANCE_MINUTES"))
    delay = dt.timedelta(minutes=settings.get_int("RECONCILE_DELAY_MINUTES"))
    if not settings.get("RECONCILE_SCHEDULE") or not reconcile.is_late(
            delivery.timestamp, dt.datetime.now(dt.UTC), delay, tolerance):
        return None
    when = envelope.parse_timestamp(delivery.timestamp)
    if when is None:
        return None
    from .clients.reconcile_state import default as state
    book = state()

    def check(event: dict, key: str) -> dict | None:
        ref = envelope.entity_ref(event)
        return book.claim_identity(ref, delivery.trigger, when, key, source, tolerance) if ref else None
    return check


def _with_snapshots(jobs: list[messages.Job], secrets, taken: dict) -> list[messages.Job]:
    """Each job with the part of its entity's snapshot its action reads, from one read per entity (kept in
    `taken`: a page decided again reads none twice). Without Preservica (not configured, or failing now) the
    jobs go as they are: an action reads what it needs itself, so a Preservica outage delays no action that
    does not need it."""
    from .pipeline import registry
    parts = {job.action: registry.get(job.action).parts() for job in jobs}
    wanted: dict[tuple[str, str], frozenset[str]] = {}
    for job in jobs:
        if parts[job.action] and job.entity_type in ("IO", "SO") and job.entity_ref:
            entity = (job.entity_type, job.entity_ref)
            wanted[entity] = wanted.get(entity, frozenset()) | parts[job.action]
    todo = [e for e in wanted if e not in taken]
    if not wanted or settings.preservica_missing(secrets):
        return jobs
    from .clients import preservica, snapshot
    events = {(j.entity_type, j.entity_ref): j.event for j in jobs}

    def take(entity):
        return preservica.call(secrets, lambda api: snapshot.take(api, *entity, wanted[entity], events[entity]))
    try:
        from concurrent.futures import ThreadPoolExecutor  # here: not at cold start
        if todo:
            with ThreadPoolExecutor(min(len(todo), SNAPSHOT_CONCURRENCY), thread_name_prefix="snapshot") as pool:
                taken.update(zip(todo, pool.map(take, todo), strict=True))
    except Exception as exc:  # classified by preservica.call; the actions will ask again themselves
        log.warning("Preservica snapshots not taken (%s); the actions read what they need themselves",
                    str(exc) if isinstance(exc, SafeError) else type(exc).__name__)
        taken.update(dict.fromkeys(todo))   # not asked again if the page is decided again
    return [replace(j, snapshot=taken.get((j.entity_type, j.entity_ref))) if parts[j.action] else j for j in jobs]
