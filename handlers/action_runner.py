"""Runs one (event, action) message: claim it, perform, record the outcome.

Exactly-once effects, as far as storage allows: before acting, the (event, action) is claimed in
the journal with a conditional write (state `running`, owner = the queue message, a lease). A copy
that finds it finished, or claimed by another live message, steps back. The window that remains:
a crash after the external effect and before its outcome is recorded; the message's retry then
acts again (at-least-once). The relay's `webhook-id` lets its receiver drop that duplicate.

An action module sets REPEATABLE = True when running it twice leaves the same result and has no
external effect (the journal's own merge): it is not claimed.

A raised exception is recorded as `failed` and re-raised, so the Functions host retries the
message and, after maxDequeueCount attempts, moves it to `action-<name>-poison`.
Action modules are imported on first use: pyPreservica and HTTP clients stay off cold start.
"""
from __future__ import annotations

import importlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from functools import cached_property

from . import envelope, journal, settings

log = logging.getLogger(__name__)

MODULES = {name: f"handlers.action_{name}" for name in settings.ACTIONS}
# How long a claim holds off other copies: host.json's functionTimeout (10 min), after which the
# host has given up on the invocation anyway.
CLAIM_SECONDS = 600


@dataclass
class Outcome:
    state: str                      # journal.DONE / SKIPPED / GONE
    reason: str = ""
    extra: dict = field(default_factory=dict)  # more journal columns, e.g. where a thumbnail went


class ActionError(Exception):
    """A failure whose message is safe to record (no secret, no credential-bearing URL)."""


class Context:
    """What an action may use; each piece is built on first use and shared by the process."""

    def __init__(self, env=None):
        self.env = os.environ if env is None else env

    @cached_property
    def secrets(self):
        from .secrets import default
        return default()

    @cached_property
    def storage(self):
        from .storage import default
        return default()

    @cached_property
    def journal(self) -> journal.Journal:
        return journal.default()


def describe(exc: BaseException) -> str:
    """Only our own errors carry their message; others may quote URLs or headers."""
    if isinstance(exc, ActionError):
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
    module = importlib.import_module(MODULES[action])
    # A duplicate message (a retried queue write, a second copy of a delivery) must not cause a second
    # external effect: the (event, action) is claimed with a conditional write before acting. A
    # REPEATABLE action (the journal's own merge) has no external effect and skips the two calls.
    if not getattr(module, "REPEATABLE", False):
        claim = book.claim(job.pk, job.rk, action, message_id or uuid.uuid4().hex, CLAIM_SECONDS)
        if claim != journal.CLAIMED:
            log.info("%s for event %s %s; nothing to do", action, job.key,
                     "already finished" if claim == journal.FINISHED else "is being performed by another message")
            return None
    try:
        outcome: Outcome = module.perform(job, ctx)
    except Exception as exc:
        reason = describe(exc)
        log.warning("%s failed for event %s (attempt %d): %s", action, job.key, attempt, reason)
        book.set_state(job.pk, job.rk, action, journal.FAILED, reason, attempts=attempt)
        raise
    book.set_state(job.pk, job.rk, action, outcome.state, outcome.reason, attempts=attempt, extra=outcome.extra)
    if job.kind == "digest" and job.digest:
        _settle_digest(book, job, action, outcome)
    log.info("%s %s for event %s%s", action, outcome.state, job.key, f" ({outcome.reason})" if outcome.reason else "")
    return outcome


def _settle_digest(book: journal.Journal, job: envelope.Job, action: str, outcome: Outcome) -> None:
    """The digest's own events: same row prefix (the delivery's timestamp), same subscription and trigger.
    Another subscription's delivery with the same timestamp shares the prefix, not the rest."""
    rows = book.rows_with_prefix(job.pk, job.digest["prefix"])
    reason = f"in digest {job.key}" + (f": {outcome.reason}" if outcome.reason else "")
    book.merge_many({"PartitionKey": job.pk, "RowKey": rk, **journal.state_columns(action, outcome.state, reason)}
                    for rk, row in rows.items()
                    if rk != job.rk and journal.state_of(row, action) == journal.QUEUED
                    and row.get("subscriptionId") == journal.clip(job.subscription_id)
                    and row.get("trigger") == journal.clip(job.trigger))
