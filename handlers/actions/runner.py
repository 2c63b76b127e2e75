"""Runs one (event, action) message: claim it, perform, record the outcome.

Exactly-once effects, as far as storage allows: before acting, the (event, action) is claimed in
the journal with a conditional write (state `running`, owner = the queue message, a lease). A copy
that finds it finished, or claimed by another live message, steps back. The window that remains:
a crash after the external effect and before its outcome is recorded; the message's retry then
acts again (at-least-once). The relay's `webhook-id` lets its receiver drop that duplicate.

An action declared `repeatable` (running it twice leaves the same result and has no external
effect, e.g. the journal's own merge) is not claimed.

A raised exception is recorded as `failed` and re-raised, so the Functions host retries the
message and, after maxDequeueCount attempts, moves it to `action-<name>-poison`.
Action modules load their libraries inside `perform`: pyPreservica and HTTP clients stay off cold start.
"""
from __future__ import annotations

import logging
import uuid

from ..clients import journal
from ..core import envelope
from ..core.errors import SafeError
from . import registry
from .contract import Context, Outcome

log = logging.getLogger(__name__)
# How long a claim holds off other copies: host.json's functionTimeout (10 min), after which the
# host has given up on the invocation anyway.
CLAIM_SECONDS = 600


def describe(exc: BaseException) -> str:
    """Only our own errors carry their message; others may quote URLs or headers."""
    if isinstance(exc, SafeError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def run(action: str, body: bytes, attempt: int = 1, ctx: Context | None = None,
        message_id: str | None = None) -> Outcome | None:
    """`message_id` identifies this queue message across its retries: its own earlier claim is its to take over."""
    job = envelope.read_job(body)
    if job.action != action:
        raise envelope.InvalidMessage(f"message for {job.action!r} arrived on the {action!r} queue")
    ctx = ctx or Context()
    book = ctx.journal
    declared = registry.get(action)
    # A duplicate message (a retried queue write, a second copy of a delivery) must not cause a second
    # external effect: the (event, action) is claimed with a conditional write before acting. A
    # repeatable action (the journal's own merge) has no external effect and skips the two calls.
    if not declared.repeatable:
        claim = book.claim(job.pk, job.rk, action, message_id or uuid.uuid4().hex, CLAIM_SECONDS)
        if claim != journal.CLAIMED:
            log.info("%s for event %s %s; nothing to do", action, job.key,
                     "already finished" if claim == journal.FINISHED else "is being performed by another message")
            return None
    try:
        outcome: Outcome = declared.perform(job, ctx)
    except Exception as exc:
        reason = describe(exc)
        log.warning("%s failed for event %s (attempt %d): %s", action, job.key, attempt, reason)
        book.set_state(job.pk, job.rk, action, journal.FAILED, reason, attempts=attempt)
        raise
    book.set_state(job.pk, job.rk, action, outcome.state, outcome.reason, attempts=attempt, extra=outcome.extra)
    if declared.settle:
        declared.settle(book, job, outcome)
    log.info("%s %s for event %s%s", action, outcome.state, job.key, f" ({outcome.reason})" if outcome.reason else "")
    return outcome
