"""publish for a folder event: the assets under a folder whose security tag or visibility changed converge too.

No public source says whether Preservica sends (or logs) an event for each asset when a folder's tag change is
applied to its children (inferred: it may not), so a CHANGED_SECURITY_DESCRIPTOR or CHANGE_ASSET_VISIBILITY
naming a folder re-checks the assets under it (any depth) rather than waiting for the public sweep. Each
re-check is `converge` on the asset, which reads the asset's own current tag and visibility: a folder opened
again meanwhile, or a repeated or forged event, publishes nothing Preservica does not say is public.

Asked only what is needed: the folder itself (one read), its children pages (clients/folder_walk.py) and one
read of each asset re-checked; `converge` runs only where the container differs from that read. While the
folder is closed or hidden, only the assets the public container holds are re-checked (the others cannot be
made less public); while it is open, every asset under it is (its children may have been opened with it, and
a published one may have been closed since). Bounded: PAGES children pages per run; what is left is queued on
as a re-check delivery of the same folder carrying the walk's cursor (its journal row shows each round),
through the dispatcher like any other.
An asset whose lease another run holds (a publish or withdrawal of it in flight, which re-checks Preservica before
it ends) is passed over, the walk goes on to the others, and the round is then put back to wait (LeaseBusy): a
closure is not held up for the assets after a busy one.
All Preservica requests go through the one client and its PRESERVICA_MAX_RPS budget.
"""
from __future__ import annotations

from ...clients import folder_walk
from ...core import reconcile
from ...core.errors import LeaseBusy
from ...pipeline.contract import DONE, Context, Job, NotFound, Outcome

PAGES = 4            # children pages per run: at most PAGES * folder_walk.PAGE assets re-checked per run
LOCK_WAIT = 5        # seconds an asset's lease is waited for in the walk: a busy one waits for the round's put-back
CURSOR, ROUND = "publishWalk", "publishRound"   # the continuation's own fields on its event


def recheck(ctx: Context, job: Job, converge, store) -> Outcome:
    """Converge the assets under the job's folder, a bounded part of them per run."""
    from ...core import iiif
    folder = job.entity_ref.lower()
    cursor = folder_walk.cursor_from(job.event.get(CURSOR)) or folder_walk.start(folder)
    done_round = job.event.get(ROUND) if type(job.event.get(ROUND)) is int else 0
    done_round = done_round if 0 <= done_round < 10**9 else 0   # it names the next round's event: bounded
    open_folder = _is_public(ctx, folder)
    walked = ctx.preservica(lambda api: folder_walk.step(api, cursor, PAGES))
    checked = withdrawn = published = busy = 0
    for ref in walked.assets:
        blob = iiif.blob_ref(ref)
        shown = blob is not None and bool(store.names(f"{blob}/"))
        if blob is None or not (open_folder or shown):
            continue
        checked += 1
        if shown == _public_now(ctx, ref):   # the container already matches: no run, no more requests
            continue
        try:
            outcome = converge(ctx, ref, LOCK_WAIT)
        except LeaseBusy:   # its own run re-checks Preservica before it ends; the assets after it go on
            busy += 1
            continue
        withdrawn += outcome.reason.startswith("withdrawn")
        published += outcome.extra.get("publish_activity") in ("Create", "Update")
    extra = {"publish_folder_checked": checked, "publish_folder_withdrawn": withdrawn,
             "publish_folder_published": published, "publish_folder_round": done_round + 1}
    note = f"; {walked.dropped} sub-folder(s) not walked (more than {folder_walk.MAX_STACK} waiting)" \
        if walked.dropped else ""
    said = f"folder: re-checked {checked}, withdrew {withdrawn}, published {published}"
    if walked.cursor:
        _continue(ctx, job, walked.cursor, done_round + 1)
    if busy:   # the runner puts this round back to wait (pipeline/waits.busy): run again, it finds the others done
        raise LeaseBusy(f"another run is publishing or withdrawing {busy} asset(s) under this folder ({said})")
    return Outcome(DONE, f"{said}; the rest queued{note}" if walked.cursor else said + note, extra)


def _public_now(ctx: Context, ref: str) -> bool:
    """Whether Preservica says the asset is public now: one request (converge reads it again under its lock)."""
    from ...clients import snapshot
    return _public(ctx, lambda api: snapshot.asset_now(api, ref))


def _is_public(ctx: Context, folder: str) -> bool:
    return _public(ctx, lambda api: api.folder(folder))   # pyPreservica entityAPI.py `folder(reference)`


def _public(ctx: Context, read) -> bool:
    from ...clients import public_store as ps
    try:
        found = ctx.preservica(read)
    except NotFound:
        return False
    return ps.is_public(found.security_tag, bool(getattr(found, "hidden", False)))


def _continue(ctx: Context, job: Job, cursor: list[list], done_round: int) -> None:
    """The rest of the walk as a re-check delivery of this folder: its event key differs by round, so a
    retry of this run queues the same round again (which the dispatcher takes for the same event)."""
    from ...clients import delivery_queue
    event = {"event": f"FolderRecheck {done_round}", "entityType": "SO", "entityRef": job.entity_ref,
             "identifiers": [], CURSOR: cursor, ROUND: done_round}
    doc = {"subscriptionId": job.subscription_id, "timestamp": job.timestamp, "tenant": job.tenant,
           "version": "", "trigger": job.trigger, "events": [event]}
    delivery_queue.enqueue_document(ctx.storage, doc, reconcile.RECHECK)
