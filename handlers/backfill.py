"""Backfill: the routed actions for assets Preservica already holds, as if each had just been ingested.
`hookops backfill` (hookops/backfill.py) is its command line; this stage does the work, beside the
reconciler (handlers/reconcile.py), whose delivery documents and queue it shares.

The assets are those Preservica's updated-since list names (optionally under a folder), bucketed into
deliveries by core.reconcile.backfill_deliveries. A backfill is identified by its command line
(core.reconcile.job_id) and keeps its start time in the reconcile state, so running it again gives
every asset the same journal row: what is done, or queued and on its way, is not queued again;
failed ones are.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .core import envelope, reconcile, settings


def assets(secrets, since: dt.datetime, folder: str | None, say: Callable[[str], None]) -> list[str]:
    """Assets updated since `since` (and under `folder`), sorted; progress through `say`. Raises
    SafeError when Preservica cannot be read."""
    from .clients import eventlog, folder_walk, preservica  # folder_walk: the walk publish's folder re-check uses too
    budget = eventlog.Budget(10**9)  # the operator asked for all of it; PRESERVICA_MAX_RPS paces it
    say(f"Listing assets updated since {since.isoformat()} ...")
    now = dt.datetime.now(dt.UTC)
    kinds = preservica.call(secrets, lambda api: {r.lower(): k for page, _ in eventlog.updated(api, since, now, 0, budget)
                                                  for r, k in page if k == "IO" and envelope.is_ref(r)})
    if folder:
        say(f"Walking folder {folder} ...")
        under = preservica.call(secrets, lambda api: set(folder_walk.walk(api, folder)))
        kinds = {r: k for r, k in kinds.items() if r in under}
    say(f"{len(kinds)} asset(s) found with {budget.used} listing request(s).")
    return sorted(kinds)


@dataclass(frozen=True)
class Plan:
    """One backfill: its identity, when it first started, whether this run resumes it, its deliveries."""
    job: str
    started: dt.datetime
    resumed: bool
    docs: list[dict]


def plan(refs: Iterable[str], since: dt.datetime, folder: str | None, trigger: str) -> Plan:
    """The deliveries for `refs`; a new backfill's start is recorded, a resumed one keeps its own."""
    from .clients import reconcile_state
    job = reconcile.job_id(since.isoformat(), folder, trigger)
    state = reconcile_state.default()
    progress = state.backfill(job)
    started = envelope.parse_timestamp(str((progress or {}).get("started") or "")) or dt.datetime.now(dt.UTC)
    if not progress:
        state.save_backfill(job, {"started": started.isoformat(), "since": since.isoformat(),
                                  "folder": folder or "", "trigger": trigger})
    docs = reconcile.backfill_deliveries((("IO", r) for r in refs), trigger, started,
                                         settings.get("PRESERVICA_TENANT") or "",
                                         settings.get_int("MAX_EVENTS_PER_DELIVERY", minimum=1))
    return Plan(job, started, bool(progress), docs)


def queue(p: Plan, actions: Iterable[str], store, docs: Iterable[dict] | None = None) -> tuple[int, int]:
    """Queue each delivery of `p` (`docs`: the same, through the caller's progress display) unless all
    its events are done or on their way; (assets queued, assets already done or on their way)."""
    from .clients import delivery_queue, journal, reconcile_state
    actions, book, queued, done = tuple(actions), journal.default(), 0, 0
    for doc in p.docs if docs is None else docs:
        delivery = envelope.delivery_from_doc(doc)
        rows = book.rows_with_prefix(journal.partition(delivery), journal.row_prefix(delivery, ""))
        # done, or queued by the interrupted run and still on its way: not again (failed ones are)
        finished = sum(1 for r in rows.values()
                       if all(journal.state_of(r, a) not in (None, journal.FAILED) for a in actions))
        if finished < len(doc["events"]):
            delivery_queue.enqueue_document(store, doc, reconcile.BACKFILL)
            queued += len(doc["events"]) - finished
        done += finished
    reconcile_state.default().save_backfill(p.job, {"queued": queued, "done": done, "finished": journal.now_iso()})
    return queued, done
