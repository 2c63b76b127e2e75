"""Running an action again when one it runs after (Action.after) finishes after it ran without it.

waits.py lets `describe` run with what exists once `ocr` failed for good or ACTION_WAIT_SECONDS passed; its
outcome then records the actions it ran without (`describe_without`). When one of those later finishes `done`
for the same event (its poison message replayed, its backlog worked through), the event is owed one more run
of the downstream: its row goes back to `describe: queued` ("to run again: ocr finished after it ran without
it"), with `describe_again` naming the upstream, and a message goes to its queue without the dispatcher's
snapshot (the run reads Preservica afresh: an asset deleted or changed meanwhile is seen as it is now). That
run's reason says `ran again: ...`, and its outcome clears `describe_again` and records what it ran without
this time.

Once, through the journal: the row is put back to queued by a conditional write (its ETag) that also takes the
upstream out of `describe_without`, so of two copies finishing at once, or a second replay, one does it; the
queued row is then claimed by one message as any other (runner.py). Whoever writes its outcome second sees
the other's: the upstream's runner looks after recording `done`, the downstream's after recording that it ran
without it, so an upstream finishing while the downstream runs is not missed either. The row changes before
the message is sent (a message seen first would find the outcome final and step back); when the send fails,
the upstream's message fails and its retry, finding the row queued to run again, sends it (an extra copy at
worst, which the claim turns away).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from ..clients import journal
from ..core import messages, settings

log = logging.getLogger(__name__)
TRIES = journal.CLAIM_TRIES   # other actions merge their columns into the same row meanwhile: re-read and retry


def without_column(action: str) -> str:
    return f"{action}_without"


def again_column(action: str) -> str:
    return f"{action}_again"


def names(value: object) -> list[str]:
    return [a for a in str(value or "").split(",") if a]


def columns(action: str, without: Iterable[str]) -> dict[str, str]:
    """An outcome's columns of an action that runs after others: what it ran without; no run owed."""
    return {without_column(action): ",".join(without), again_column(action): ""}


def note(row: dict | None, action: str) -> str:
    """Why this run is a second one, for its reason ("" when it is not)."""
    if upstream := names((row or {}).get(again_column(action))):
        return f"ran again: {', '.join(upstream)} finished after it ran without it"
    return ""


def owed(row: dict | None, action: str, upstream: Iterable[str]) -> list[str]:
    """Those of `upstream` that `action`'s final outcome ran without and that are done now."""
    if journal.state_of(row, action) not in journal.TERMINAL:
        return []
    ran_without = names((row or {}).get(without_column(action)))
    return [a for a in upstream if a in ran_without and journal.state_of(row, a) == journal.DONE]


def _resend(row: dict | None, action: str, upstream: Iterable[str]) -> bool:
    """Queued to run again for one of `upstream`, not yet run: its message may not have been sent."""
    return (journal.state_of(row, action) == journal.QUEUED
            and any(a in names((row or {}).get(again_column(action))) for a in upstream))


def wake(book, storage, jobs: list, pairs: list, trace: str | None = None) -> int:
    """For the events of `jobs` (one partition), run each (downstream Action, its upstream names) of `pairs`
    again where it is owed (owed()), or send again one queued to run again. Returns how many were sent."""
    if not jobs or not pairs:
        return 0
    by_rk = {j.rk: j for j in jobs}
    sent = 0
    for declared, upstream in pairs:
        due = _flip(book, jobs[0].pk, sorted(by_rk), declared.name, upstream)
        if not due:
            continue
        again = [replace(by_rk[rk], action=declared.name, snapshot=None, deferrals=0, waiting_since="", attempt=1,
                         kind="event", digest=None) for rk in due]
        for message in messages.pack(again, min(len(again), declared.batch_size or len(again)), trace):
            storage.send(settings.action_queue(declared.name), message)
        log.info("%s: %d event(s) of delivery %s run again (%s finished after it ran without it)", declared.name,
                 len(again), jobs[0].delivery_id, ", ".join(upstream))
        sent += len(again)
    return sent


def _flip(book, pk: str, rks: list[str], action: str, upstream: Iterable[str]) -> list[str]:
    """Put the rows where `action` is owed a run back to queued (conditionally); the RowKeys to send again."""
    for _ in range(TRIES):
        rows = book.rows_between(pk, rks[0], rks[-1])
        flips, seen, due = [], {}, []
        for rk in rks:
            row = rows.get(rk)
            if done := owed(row, action, upstream):
                left = [a for a in names(row.get(without_column(action))) if a not in done]
                why = f"to run again: {', '.join(done)} finished after it ran without it"
                flips.append({"PartitionKey": pk, "RowKey": rk, **journal.state_columns(action, journal.QUEUED, why),
                              again_column(action): ",".join(done), without_column(action): ",".join(left)})
                seen[rk] = row
            elif _resend(row, action, upstream):
                due.append(rk)
        try:
            book.merge_if_unchanged(flips, seen)
            return sorted(due + list(seen))
        except journal.Conflict:   # a row changed since it was read: read again and decide again
            continue
    raise journal.Conflict(f"the journal rows of {action} to run again kept changing")
