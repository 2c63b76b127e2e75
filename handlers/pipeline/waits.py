"""Order between actions. Routes start every action of an event at once (one queue each), so an action that
reads what others store (`describe` reads `ocr`'s and `transcribe`'s text) declares them: `after=("ocr",
"transcribe")`. Before it claims an event, the runner asks here whether any of those was routed for the same
event (the journal row's `actions`) and has no final outcome yet. Final: done, skipped or gone, or failed on
the try the host gives up after (host.json maxDequeueCount). An action not routed for the event is not
waited for.

Such an event is put back on the action's own queue as a new message, invisible for a while (Put Message's
`visibilitytimeout`: clients/storage.py), carrying how often it was put back and since when it waits; the
current message then completes normally. So waiting spends no dequeue count and never reaches the poison
queue, the event is never dropped (the new message is sent before this one completes; if that send fails,
the message fails and is retried), and a copy that waits never holds the claim that keeps the action to
one run per event. The journal says `queued: waiting for ocr` meanwhile. After ACTION_WAIT_SECONDS the
action runs with what exists, and its reason says so; likewise, at once, when an upstream failed for good.
Its outcome records what it ran without; when one of those finishes `done` later (replayed from poison, a
backlog worked through), the event runs once more (again.py).

An event whose run found another run of the same asset at work (LeaseBusy: publish's and custody's lease, taken
before anything is done; a folder's re-check passes a busy asset over and raises it after the others) waits
the same way, put back by the runner after the attempt (busy()).

Why here and not "ocr queues describe when it finishes": a retry, a poisoned and replayed message, a
re-sent delivery, the reconciler and backfill all reach the action through its queue and this runner, so
they all wait the same way, and no action needs to know who comes after it.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, replace

from ..clients import journal
from ..core import messages, settings
from ..core.errors import LeaseBusy, Unavailable
from . import again

log = logging.getLogger(__name__)
BOUND = settings.BY_NAME["ACTION_WAIT_SECONDS"]
# host.json extensions.queues.maxDequeueCount: the host moves a message to poison after this many failed
# tries, so a failure recorded on this try is the last one (tests/describe/test_order.py pins it to host.json).
MAX_ATTEMPTS = 5
# Seconds before a put-back event is seen again: doubling from the first, at most the second.
FIRST_DELAY, MAX_DELAY = 30, 300


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def failed_for_good(row: dict | None, action: str) -> bool:
    return (journal.state_of(row, action) == journal.FAILED
            and int((row or {}).get(f"{action}_attempts") or 0) >= MAX_ATTEMPTS)


def pending(row: dict | None, after: tuple[str, ...]) -> list[str]:
    """The actions of `after` routed for this event that have no final outcome yet."""
    routed = str((row or {}).get("actions") or "").split(",")
    return [a for a in after if a in routed and journal.state_of(row, a) is not None
            and journal.state_of(row, a) not in journal.TERMINAL and not failed_for_good(row, a)]


@dataclass(frozen=True)
class Note:
    """For the outcome of a job performed now: what its reason adds (why it stopped waiting, why it runs a
    second time), and the actions it runs without (again.py runs it again when one of those is done)."""
    text: str
    without: tuple[str, ...]

    def columns(self, action: str) -> dict[str, str]:
        return again.columns(action, self.without)


def hold(declared, jobs: list, ctx, owner: str | None, trace: str | None) -> tuple[list, dict[str, Note]]:
    """The jobs to perform now, with a Note for those that will act (not found finished or busy at the
    claim); the others are put back on the queue to wait."""
    book, name = ctx.journal, declared.name
    rows = book.rows_for(jobs[0].pk, [j.rk for j in jobs], jobs[0].span)
    now, bound = _now(), BOUND.int_value()
    ready: list = []
    notes: dict[str, Note] = {}
    later: dict[str, list[str]] = {}
    for job in jobs:
        row = rows.get(job.rk)
        waits = pending(row, declared.after)
        failed = [a for a in declared.after if failed_for_good(row, a)]
        waited = (now - _since(job, now)).total_seconds()
        # Finished, or being performed by another copy: the claim steps back, no need to wait.
        settled = journal.state_of(row, name) in journal.TERMINAL or journal.live_claim(row, name, owner)
        if waits and not settled and waited < bound:
            later[job.rk] = waits
            continue
        ready.append(job)
        if settled:
            continue
        why = [f"{a} failed" for a in failed] + ([f"waited {int(waited)} s for {', '.join(waits)}"] if waits else [])
        text = [again.note(row, name)] + (["; ".join(why) + ": ran with what existed"] if why else [])
        notes[job.rk] = Note("; ".join(t for t in text if t), tuple(failed + waits))
    if later:
        _put_back(declared, [j for j in jobs if j.rk in later], later, rows, ctx, now, bound, trace)
    return ready, notes


def _since(job, now: dt.datetime) -> dt.datetime:
    try:
        since = dt.datetime.fromisoformat(job.waiting_since) if job.waiting_since else now
    except ValueError:
        return now
    since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    return min(since, now)   # one from the future (another clock, a hand-made message) would wait for ever


def busy(declared, todo: list, results: dict, ctx, trace: str | None) -> dict[str, str]:
    """Events whose run found another run of the same asset at work (LeaseBusy: custody's copy, publish's lease;
    raised before anything is done, or by a folder's re-check after the other assets) are put back to wait like
    the others, instead of failing: a copy that runs longer than the host's five tries took them to the poison
    queue. Row key -> the reason journaled (state queued, the claim ended: written here, the runner records the
    others). After ACTION_WAIT_SECONDS, or when the send fails, they stay failures (retried)."""
    now, bound = _now(), BOUND.int_value()
    back = [j for j in todo if isinstance(results[j.rk], LeaseBusy) and (now - _since(j, now)).total_seconds() < bound]
    if not back:
        return {}
    why = {j.rk: f"waiting: {results[j.rk]}" for j in back}
    # The claim ends before the put-back is sent, as again.py does: a copy taken before this run's journal write
    # (a slow answer is sent again, up to three times 20 s) would find the claim held, step back, and the event
    # would be left queued with no message.
    ctx.journal.merge_many({"PartitionKey": j.pk, "RowKey": j.rk,
                            **journal.outcome_columns(declared.name, journal.QUEUED, why[j.rk])} for j in back)
    try:
        _send(declared, back, ctx, now, bound, trace)
    except Unavailable:
        return {}   # recorded failed by the runner, over the queued just written
    return why


def _send(declared, waiting: list, ctx, now: dt.datetime, bound: int, trace: str | None) -> tuple[int, list]:
    """Send the waiting events again, invisible for a while: (the delay, the jobs as sent)."""
    first = waiting[0]
    since = _since(first, now)
    left = bound - (now - since).total_seconds()
    delay = max(1, min(FIRST_DELAY * 2 ** min(first.deferrals, 20), MAX_DELAY, math.ceil(left)))
    # Without the snapshot: when the event runs, the dispatcher's reading may be an hour old.
    again = [replace(j, snapshot=None, deferrals=j.deferrals + 1, waiting_since=journal.iso(since)) for j in waiting]
    for message in messages.pack(again, len(again), trace):
        ctx.storage.send(settings.action_queue(declared.name), message, delay=delay)
    return delay, again


def _put_back(declared, waiting: list, later: dict[str, list[str]], rows: dict, ctx, now: dt.datetime,
              bound: int, trace: str | None) -> None:
    """Send the waiting events again, invisible for a while, then note in the journal what they wait for."""
    first = waiting[0]
    delay, again = _send(declared, waiting, ctx, now, bound, trace)
    # DEBUG: the journal says "waiting for ..." and the runner's one line per invocation counts them; at INFO
    # each put-back sent one more log record to Application Insights (row 10 prices it).
    log.debug("%s: %d event(s) of delivery %s wait %d s for %s (put back %d times)", declared.name, len(again),
             first.delivery_id, delay, ", ".join(sorted({a for w in later.values() for a in w})), first.deferrals + 1)
    notes = [{"PartitionKey": first.pk, "RowKey": rk,
              **journal.state_columns(declared.name, journal.QUEUED, f"waiting for {', '.join(w)}")}
             for rk, w in later.items()]
    try:  # only over rows as they were read: never over an outcome another copy recorded meanwhile
        ctx.journal.merge_if_unchanged(notes, {rk: rows[rk] for rk in later if rk in rows})
    except journal.Conflict:
        pass  # the note is for people; a row that changed meanwhile (ocr finished, say) says what it says
