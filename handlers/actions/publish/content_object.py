"""publish for a content object event: the asset the content object belongs to converges; for a deleted one,
the asset its files were published under (clients/published_files.py).

A security change made on one access file reaches the webhook (`entityType: "CO"`) and the event log under the
content object, not its asset (inferred: docs/deploy.md, facts to confirm). A CHANGED_SECURITY_DESCRIPTOR or
CHANGE_ASSET_VISIBILITY naming a content object reads it (one request) for its parent and runs `converge` on that
asset, which reads everything again and withholds, withdraws or publishes again by what Preservica says now: a
repeated or forged event publishes nothing Preservica does not say is public, and a parent that is not a UUID
(whatever the entity document says) names no blob and no request.
"""
from __future__ import annotations

from ...pipeline.contract import SKIPPED, Context, Job, NotFound, Outcome


def recheck(ctx: Context, job: Job, converge) -> Outcome:
    """Converge the asset the job's content object belongs to."""
    from ...core import iiif
    if iiif.blob_ref(job.entity_ref) is None:   # intake refuses these already; it goes into a URL
        return Outcome(SKIPPED, "reference is not a UUID")
    try:
        # pyPreservica entityAPI.py content_object(): one GET of /api/entity/content-objects/{ref}, parsed by
        # entity_from_string (common.py), whose `parent` is the text of the document's first <xip:Parent>: for a
        # content object, its asset (XIP ContentObject/Parent). 404: ReferenceNotFoundException, here NotFound.
        parent = ctx.preservica(lambda api: api.content_object(job.entity_ref).parent)
    except NotFound:   # deleted: its files are withdrawn through the asset they were published under, if any
        return deleted(ctx, job.entity_ref, converge) or Outcome(SKIPPED, "not found")
    asset = parent.strip() if isinstance(parent, str) else ""
    if iiif.blob_ref(asset) is None:   # never a blob name, a URL or a journal text from it
        return Outcome(SKIPPED, "the content object's parent is not an asset reference (a UUID)")
    return _through(ctx, asset, converge, "its asset")


def deleted(ctx: Context, ref: str, converge) -> Outcome | None:
    """A content object Preservica no longer has (404, or listed deleted by updated-since): the asset whose
    public files it had (clients/published_files.py) converges. None: no row, so no file of it was published
    (or only before rows were kept: the sweep finds those). The row stays: the same ref mistaken for a deleted
    one (a webhook typing a live content object as an asset) converges an asset that publishes it again."""
    from ...clients import published_files
    from ...core import iiif
    key = iiif.blob_ref(ref)   # rows are keyed as publish lists content objects: lower case
    asset = published_files.holder(published_files.table(ctx.storage), key) if key else None
    if asset is None:
        return None
    if iiif.blob_ref(asset) is None:   # a hand-edited row: no name, URL or request is built from it
        return Outcome(SKIPPED, "not found; the row of its published files names no asset reference (a UUID)")
    return _through(ctx, asset, converge, "deleted; its asset")


def _through(ctx: Context, asset: str, converge, how: str) -> Outcome:
    """Converge the content object's asset; its outcome, said of the asset."""
    from ...core import iiif
    ref = iiif.blob_ref(asset)
    outcome = converge(ctx, asset)
    said = outcome.reason or ("published" if outcome.extra.get("publish_manifest") else outcome.state)
    withheld = outcome.extra.get("publish_withheld")
    note = f", {withheld} closed content object(s) withheld" if withheld else ""
    return Outcome(outcome.state, f"{how} {ref}: {said}{note}", {**outcome.extra, "publish_asset": ref})
