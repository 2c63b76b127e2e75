"""Runs one action message (a batch of events): claim them, perform each, record the outcomes together.

Exactly-once effects, as far as storage allows: before acting, the (event, action) is claimed in
the journal with a conditional write (state `running`, owner = the queue message, a lease). A copy
that finds it finished, or claimed by another live message, steps back. An outcome write that gets
no answer is sent again (journal.IDEMPOTENT). The window that remains: a crash after the external
effect and before its outcome is recorded, or storage out past the client's retries; the message's
retry then acts again (at-least-once). The relay's `webhook-id` lets its receiver drop that duplicate.

An action declared `repeatable` (running it twice leaves the same result and has no external
effect, e.g. the journal's own merge) is not claimed. An action declared `after` other actions first
puts back the events those have not finished (waits.py), before any claim; one that ran without them runs
again when they finish (again.py).

A raised exception is recorded as `failed` and re-raised, so the Functions host retries the
message and, after maxDequeueCount attempts, moves it to `action-<name>-poison`. Not LeaseBusy (another
run of the same asset at work, nothing done yet): that event is put back to wait, as above (waits.busy).
Actions load their libraries inside `perform`: pyPreservica and HTTP clients stay off cold start.
"""
from __future__ import annotations

import logging
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ..clients import journal, telemetry
from ..core import messages
from ..core.errors import InvalidMessage, SafeError
from . import again, registry, waits
from .contract import SKIPPED, Context, NotFound, Outcome

log = logging.getLogger(__name__)
# How long a claim holds off other copies: host.json's functionTimeout (10 min), after which the
# host has given up on the invocation anyway.
CLAIM_SECONDS = 600
# Events of one message performed at once; Preservica's share is bounded by PRESERVICA_MAX_RPS anyway.
CONCURRENCY = 4


def describe(exc: BaseException) -> str:
    """Only our own errors carry their message; others may quote URLs or headers."""
    if isinstance(exc, SafeError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def run(action: str, body: bytes, attempt: int = 1, ctx: Context | None = None,
        message_id: str | None = None) -> list[Outcome | None]:
    """Perform one action message (a batch of events of one delivery): the outcome of each event in
    the message's order, None for one already finished, being performed by another message, or put back
    to wait for the actions it runs after or for another run of the same asset (waits.busy).

    `message_id` identifies this queue message across its retries: its own earlier claims are its to take
    over. Outcomes, failures included, are recorded together; then, if any event failed, the first
    failure is raised, so the host retries the message and the retry performs only the unfinished events.
    """
    jobs = messages.read_batch(body)
    if jobs[0].action != action:
        raise InvalidMessage(f"message for {jobs[0].action!r} arrived on the {action!r} queue")
    with telemetry.span(f"action {action}", parent=jobs[0].traceparent, action=action, delivery__id=jobs[0].delivery_id,
                        delivery__trigger=jobs[0].trigger, batch__events=len(jobs), attempt=attempt):
        return _run(action, jobs, attempt, ctx, message_id)


def _run(action: str, jobs: list, attempt: int, ctx: Context | None, message_id: str | None) -> list[Outcome | None]:
    ctx = ctx or Context()
    if attempt > 1:
        jobs = [replace(j, attempt=attempt) for j in jobs]
    book = ctx.journal
    declared = registry.get(action)
    pk = jobs[0].pk
    active, notes = jobs, {}
    if declared.after:   # events whose upstream actions have not finished go back on the queue to wait
        active, notes = waits.hold(declared, jobs, ctx, message_id, telemetry.traceparent())
    # A duplicate message (a retried queue write, a second copy of a delivery) must not cause a second
    # external effect: each (event, action) is claimed with a conditional write before acting. A
    # repeatable action (the journal's own merge) has no external effect and skips the claim.
    if declared.repeatable or not active:
        todo = active
    else:
        claimed = book.claim_many(pk, [j.rk for j in active], action, message_id or uuid.uuid4().hex, CLAIM_SECONDS,
                                  jobs[0].span)
        todo = [j for j in active if j.rk in claimed]
    results: dict[str, Outcome | BaseException] = {}
    trace = telemetry.traceparent()  # worker threads start with no context: each continues this span's trace
    if len(todo) == 1:
        results[todo[0].rk] = _perform(declared, todo[0], ctx, trace)
    elif todo:
        with ThreadPoolExecutor(min(len(todo), CONCURRENCY), thread_name_prefix=f"{action}-batch") as pool:
            for job, result in zip(todo, pool.map(lambda j: _perform(declared, j, ctx, trace), todo), strict=True):
                results[job.rk] = result
    held = waits.busy(declared, todo, results, ctx, trace)   # another run of the asset at work: put back, recorded
    # Not over the put-back ones: their copy may have been taken and have recorded its own state meanwhile.
    book.merge_many(_record(action, job, results[job.rk], attempt, notes.get(job.rk)) for job in todo
                    if job.rk not in held)
    failures = [results[j.rk] for j in todo if isinstance(results[j.rk], BaseException) and j.rk not in held]
    counts: Counter[str] = Counter({k: n for k, n in (("skipped", len(active) - len(todo)),
                                                      ("waiting", len(jobs) - len(active) + len(held))) if n})
    for job in todo:
        outcome = results[job.rk]
        if job.rk in held:
            continue
        if isinstance(outcome, Outcome):
            if declared.settle:
                book.merge_many(declared.settle(book, job, outcome))
            counts[outcome.state] += 1
        else:  # each failure with its reason: what an operator acts on
            counts[journal.FAILED] += 1
            log.warning("%s failed for event %s (attempt %d): %s", action, job.key, attempt, describe(outcome))
    _summarize(action, jobs[0].delivery_id, counts)
    _wake(declared, jobs, todo, results, notes, ctx, trace)   # a failed send fails the message: its retry sends
    if failures:
        raise failures[0]
    return [None if j.rk in held else results.get(j.rk) for j in jobs]  # type: ignore[misc]


def _wake(declared, jobs: list, todo: list, results: dict, notes: dict, ctx: Context, trace: str | None) -> None:
    """Run again what is owed a run now that these outcomes are recorded (again.py): an action that ran
    without an upstream that has finished meanwhile; the actions that ran without this one. The latter looks
    at every event not failed here, those found finished too: a retry sends what a failed send left owed."""
    ran_without = [j for j in todo if isinstance(results[j.rk], Outcome) and notes.get(j.rk) and notes[j.rk].without]
    again.wake(ctx.journal, ctx.storage, ran_without, [(declared, declared.after)], trace)
    downstream = [(d, (declared.name,)) for d in registry.actions().values() if declared.name in d.after]
    if downstream:
        ok = [j for j in jobs if not isinstance(results.get(j.rk), BaseException)]
        again.wake(ctx.journal, ctx.storage, ok, downstream, trace)


def _perform(declared, job, ctx, trace: str | None) -> Outcome | BaseException:
    # No span per event: each event's outcome is in the journal, and the invocation's span and log line carry
    # the counts (telemetry is billed per byte; docs/benchmarks.md, row 10).
    with telemetry.within(trace):
        try:
            return _outcome(declared, job, ctx)
        except Exception as exc:  # recorded with the others, then raised by run()
            return exc


def _summarize(action: str, delivery_id: str, counts: Counter[str]) -> None:
    """One log line per invocation with its events by outcome, and the same counts on the action's span."""
    telemetry.annotate(**{f"events__{state}": n for state, n in counts.items()})
    if counts.get(journal.FAILED):
        telemetry.error()
    log.info("%s for delivery %s: %s", action, delivery_id,
             ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "no events")


def _outcome(declared, job, ctx: Context) -> Outcome:
    """The common opening every action would otherwise write: an entity type it does not act on, or
    an entity deleted since the event, journaled as the declaration says."""
    if why := declared.refuses(job.entity_type):
        return Outcome(SKIPPED, why)
    try:
        return declared.perform(job, ctx)
    except NotFound:
        if declared.gone is None:
            raise
        return replace(declared.gone, extra=dict(declared.gone.extra))


def _record(action: str, job, result, attempt: int, note: waits.Note | None = None) -> dict:
    """An outcome's journal columns; `note` (an action that runs after others: why it stopped waiting, why it
    runs again) follows the reason, and what it ran without is recorded with it."""
    if isinstance(result, BaseException):
        cols = journal.outcome_columns(action, journal.FAILED, describe(result), attempt)
    else:
        reason = "; ".join(r for r in (result.reason, note.text if note else "") if r)
        extra = {**result.extra, **(note.columns(action) if note else {})}
        cols = journal.outcome_columns(action, result.state, reason, attempt, extra)
    return {"PartitionKey": job.pk, "RowKey": job.rk, **cols}
