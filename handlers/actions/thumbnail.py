"""`thumbnail` action: keep each new asset's thumbnail in Blob Storage.

Blob `<entityRef>.<ext>` in THUMBNAIL_CONTAINER, content type from the image's own bytes,
metadata `title` (ASCII-safe) and `ref`. A retry overwrites the same blob: idempotent.
"""
from __future__ import annotations

import io
from urllib.parse import quote, urlencode

from ..clients import snapshot
from ..pipeline.contract import APP, DONE, NEEDS, SKIPPED, Action, ActionError, Context, Job, Outcome, Setting

SIZE = Setting("THUMBNAIL_SIZE", "large", APP, "Thumbnail size to keep: `large`, `medium` or `small`.")
CONTAINER = Setting("THUMBNAIL_CONTAINER", "thumbnails", APP, "Blob container the `thumbnail` action writes to.")
READS = frozenset({"summary"})  # the title, for the blob's metadata

_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
MAX_TITLE = 1024  # blob metadata is at most 8 KiB in all
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}  # what is kept
MAX_BYTES = 16 * 1024 * 1024   # far above any thumbnail (inferred: Preservica renders them small); read into memory


def perform(job: Job, ctx: Context) -> Outcome:
    size = _size()
    asset = snapshot.entity("IO", job.entity_ref, ctx.snapshot(job, READS))
    return ctx.preservica(lambda api: _store(api, job, ctx, asset, size))


def _size():
    from pyPreservica.common import Thumbnail
    value = (SIZE.value() or "").lower()
    try:
        return Thumbnail(value)
    except ValueError:
        raise ActionError("THUMBNAIL_SIZE must be large, medium or small") from None


def _store(api, job: Job, ctx: Context, asset, size) -> Outcome:
    from ..clients import preservica
    try:
        data = _thumbnail(api, asset, size)
    except preservica.TooLarge:
        return Outcome(SKIPPED, f"thumbnail too large (more than {MAX_BYTES} bytes arrived)")
    if data is None:
        return Outcome(SKIPPED, "no thumbnail")
    content_type, ext = image_type(data)
    container, name = CONTAINER.value(), f"{job.entity_ref}.{ext}"
    ctx.storage.put_blob(container, name, data, content_type,
                         metadata={"title": ascii_safe(asset.title or ""), "ref": job.entity_ref})
    return Outcome(DONE, "", {"thumbnail_blob": f"{container}/{name}", "thumbnail_bytes": len(data),
                                      "thumbnail_contentType": content_type})


def _thumbnail(api, asset, size) -> bytes | None:
    """The image, or None when Preservica has none (404). The request pyPreservica's EntityAPI.thumbnail makes
    (pyPreservica entityAPI.py: GET /api/content/thumbnail, id sdb:<type>|<ref>, size), read into memory with a
    bound: pyPreservica writes it to a file, and a temporary folder per event was a tenth of the pipeline's
    CPU (docs/benchmarks.md)."""
    from ..clients import preservica
    query = urlencode({"id": f"sdb:{asset.entity_type.value}|{asset.reference}", "size": size.value})
    out = io.BytesIO()
    try:
        preservica.download(api, f"{api.protocol}://{api.server}/api/content/thumbnail?{query}", out, MAX_BYTES)
    except preservica.NotFound:
        return None
    return out.getvalue()


def image_type(data: bytes) -> tuple[str, str]:
    """(content type, extension) from the image's magic bytes: the SDK hides the response headers."""
    from ..core.media import sniff  # here, not at cold start
    content_type, _ = sniff(data)
    return (content_type, EXTENSIONS[content_type]) if content_type in EXTENSIONS else ("application/octet-stream", "bin")


def ascii_safe(text: str) -> str:
    """Blob metadata travels as HTTP headers: printable ASCII only. Others are %-encoded (reversible
    with urllib.parse.unquote), so "Café" becomes "Caf%C3%A9"."""
    return quote(text.strip()[:MAX_TITLE], safe=_PRINTABLE_ASCII)


ACTION = Action(name="thumbnail", perform=perform, settings=(SIZE, CONTAINER), required=(), secrets=(),
                preservica=NEEDS, reads=READS, repeatable=False,
                entities=("asset",), gone=Outcome(SKIPPED, "not found"))
