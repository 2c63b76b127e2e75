"""`custody` action: an independent, fixity-checked OCFL copy of each asset in the archive's own storage.

Route it for FULL_TEXT_INDEXED (ingest), MOVED and CHANGED_SECURITY_DESCRIPTOR (docs/actions.md). Each event
converges the asset's OCFL object to what Preservica holds now (copy.py): a new version only when something
changed, unchanged files referenced by digest, every bitstream's digests checked against Preservica's on
the way in. A deleted asset keeps its copy (that is what custody is for): the event is skipped.
The journal keeps the outcome with the OCFL version (`v3 written`, `no change (v2)`, a fixity failure naming
the version the copy stays at): what the console's event page and `hookops events` show. A new object is
counted in the custody tally (handlers/clients/custody_tally.py), the coverage the console's overview shows.
"""
from __future__ import annotations

import datetime as dt
import logging

from ...clients import custody_config as config
from ...pipeline.contract import DONE, NEEDS, SKIPPED, Action, Context, Job, Outcome

log = logging.getLogger(__name__)
VERSION = "custody_version"   # the journal column of the OCFL version the event left the object at


def perform(job: Job, ctx: Context) -> Outcome:
    from . import copy
    limit = config.MAX_BYTES.int_value(minimum=1)
    root = config.storage_root()
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    message = f"{job.trigger or 'event'} {job.timestamp}".strip()[:200]
    from ...clients import preservica_http, publish_lock
    marker = f"custody/{job.entity_ref.strip().lower()}"   # one run per asset: copy.py says why
    # The lease is renewed (when due) before every Preservica request too: reading the metadata and listing the
    # bitstreams of a large asset, each request waiting for the app's shared rate, outlasts the lease's 60 s.
    with publish_lock.held(ctx.storage.blob_service(), marker, doing="copying") as lease, \
            preservica_http.counted(lease.check):
        result = ctx.preservica(lambda api: copy.converge(api, root, job.entity_ref, limit, created, message,
                                                          lease.check, lambda: _count(job.entity_ref)))
    extra = {VERSION: result.version, "custody_copied_bytes": result.copied_bytes, "custody_files": result.files}
    if result.gone:   # what ACTION.gone says, and the version this run committed before it found the asset gone
        return Outcome(SKIPPED, f"{ACTION.gone.reason}; {result.resumed}, left by a stopped run, committed", extra)
    said = f"{result.version} written" if result.changed else f"no change ({result.version})"
    if result.resumed:   # the journal's reason says which version this event's run added, if any
        added = "no change since" if result.version == result.resumed else f"{result.version} written"
        said = f"{result.resumed}, left by a stopped run, committed; {added}"
    return Outcome(DONE, said, extra)


def _count(ref: str) -> None:
    """The copy is made whatever happens here: a count lost now is mended by the prefix's next audit. Called as soon
    as the object's v1 is committed, so a run that fails after it (resuming a stopped run's v1) still counts it."""
    from ...clients import custody_tally, reconcile_state
    from ...core import ocfl
    try:
        custody_tally.object_written(reconcile_state.default(), ocfl.object_root(config.object_id(ref)).split("/")[0])
    except Exception as exc:   # the table's own errors: named, not quoted
        log.warning("custody: the new object of %s was not counted (%s)", ref, type(exc).__name__)


ACTION = Action(name="custody", perform=perform, settings=config.SETTINGS, required=(), secrets=(),
                preservica=NEEDS, reads=frozenset(), repeatable=False,
                entities=("asset",), gone=Outcome(SKIPPED, "not found (the copy is kept)"))
