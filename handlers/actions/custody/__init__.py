"""`custody` action: an independent, fixity-checked OCFL copy of each asset in the archive's own storage.

Route it for FULL_TEXT_INDEXED (ingest), MOVED and CHANGED_SECURITY_DESCRIPTOR (docs/actions.md). Each event
converges the asset's OCFL object to what Preservica holds now (copy.py): a new version only when something
changed, unchanged files referenced by digest, every bitstream's digests checked against Preservica's on
the way in. A deleted asset keeps its copy (that is what custody is for): the event is skipped.
"""
from __future__ import annotations

import datetime as dt

from ...pipeline.contract import DONE, NEEDS, SKIPPED, Action, Context, Job, Outcome
from . import config


def perform(job: Job, ctx: Context) -> Outcome:
    from . import copy
    limit = config.MAX_BYTES.int_value(minimum=1)
    root = config.storage_root()
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    message = f"{job.trigger or 'event'} {job.timestamp}".strip()[:200]
    result = ctx.preservica(lambda api: copy.converge(api, root, job.entity_ref, limit, created, message))
    extra = {"custody_version": result.version, "custody_copied_bytes": result.copied_bytes,
             "custody_files": result.files}
    return Outcome(DONE, "" if result.changed else f"unchanged {result.version}", extra)


ACTION = Action(name="custody", perform=perform, settings=config.SETTINGS, required=(), secrets=(),
                preservica=NEEDS, reads=frozenset(), repeatable=False,
                entities=("asset",), gone=Outcome(SKIPPED, "not found (the copy is kept)"))
