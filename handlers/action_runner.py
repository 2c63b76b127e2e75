"""Runs one (event, action) message: skip if already finished, perform, record the outcome.

An action module sets REPEATABLE = True when running it twice costs less than checking and leaves
the same result (the journal's own merge): its duplicates are redone instead of read for. Actions
that call Preservica or a receiver keep the check, to spare those services.

A raised exception is recorded as `failed` and re-raised, so the Functions host retries the
message and, after maxDequeueCount attempts, moves it to `action-<name>-poison`.
Action modules are imported on first use: pyPreservica and HTTP clients stay off cold start.
"""
from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property

from . import envelope, journal, settings

log = logging.getLogger(__name__)

MODULES = {name: f"handlers.action_{name}" for name in settings.ACTIONS}


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


def run(action: str, body: bytes, attempt: int = 1, ctx: Context | None = None) -> Outcome | None:
    job = envelope.read_job(body)
    if job.action != action:
        raise envelope.InvalidMessage(f"message for {job.action!r} arrived on the {action!r} queue")
    ctx = ctx or Context()
    book = ctx.journal
    module = importlib.import_module(MODULES[action])
    # The dispatcher already leaves out finished actions; this read only catches a duplicate message.
    # A REPEATABLE action saves it: one storage call in three.
    if not getattr(module, "REPEATABLE", False) and \
            journal.state_of(book.get(job.pk, job.rk), action) in journal.TERMINAL:
        log.info("%s for event %s already finished; nothing to do", action, job.key)
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
    rows = book.rows_with_prefix(job.pk, job.digest["prefix"])
    reason = f"in digest {job.key}" + (f": {outcome.reason}" if outcome.reason else "")
    book.merge_many({"PartitionKey": job.pk, "RowKey": rk, **journal.state_columns(action, outcome.state, reason)}
                    for rk, row in rows.items() if rk != job.rk and journal.state_of(row, action) == journal.QUEUED)
