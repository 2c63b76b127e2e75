"""`publish` action: the asset's access copy as IIIF on a public container, withdrawn when it stops being public.

State-based: whatever the trigger, it reads the asset from Preservica *now* (never the event's snapshot)
and converges. Security tag in PUBLIC_SECURITY_TAGS: the access representation's files are streamed
to `<ref>/files/...`, the thumbnail to `<ref>/thumbnail`, captions the `transcribe` action left in
TRANSCRIBE_CONTAINER to `<ref>/captions.vtt`, then `<ref>/manifest.json` (IIIF Presentation 3) and a
Create or Update activity. Any other tag, or a deleted asset: every blob under `<ref>/` is deleted
(manifest first) and a Delete activity written. After publishing the tag is read again, so a tag
closed while the files were copying withdraws at once; a stale or re-ordered event cannot bring a
withdrawn asset back, because it is not the event that decides.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..clients import journal
from ..core.messages import Job  # core.iiif and core.media are imported where used: not at cold start
from ..core.settings import APP, Setting
from .transcribe import CONTAINER as TRANSCRIPTS  # where `transcribe` leaves <ref>.vtt: one setting
from .contract import NEEDS, Action, ActionError, Context, NotFound, Outcome

if TYPE_CHECKING:  # annotations only
    from ..core import iiif, media

CONTAINER = Setting("PUBLISH_CONTAINER", "iiif", APP, "Public-read blob container the `publish` action writes IIIF to.")
SERVICE_URI = Setting("PUBLISH_BLOB_SERVICE_URI", None, APP,
                      "Blob endpoint of the public IIIF storage account (Bicep sets it); unset: the pipeline's own "
                      "storage, i.e. Azurite locally.")
BASE_URL = Setting("PUBLISH_BASE_URL", None, APP,
                   "Public URL of the publish container, the prefix of every IIIF id (e.g. a CDN); unset: the "
                   "container's own URL.")
PUBLIC_TAGS = Setting("PUBLIC_SECURITY_TAGS", "open", APP,
                      "Comma-separated security tags whose assets `publish` makes public; any other tag withdraws.")
RIGHTS = Setting("PUBLISH_RIGHTS", None, APP,
                 "IIIF `rights` of published manifests: a Creative Commons or RightsStatements.org URI.")
STATEMENT = Setting("PUBLISH_REQUIRED_STATEMENT", None, APP,
                    "IIIF `requiredStatement` (Attribution) text shown with every published manifest.")
MAX_FILES = Setting("PUBLISH_MAX_FILES", "500", APP,
                    "Most files of one access representation `publish` copies; an asset with more is skipped.")

CHUNK = 256 * 1024                 # bytes per read from Preservica
MAX_CAPTIONS = 5 * 1024 * 1024     # a WebVTT file larger than this is not published
MAX_THUMBNAIL = 5 * 1024 * 1024
XIP_TOKEN_HEADER = "Preservica-Access-Token"


class TooMany(Exception):
    pass


def perform(job: Job, ctx: Context) -> Outcome:
    from ..core import iiif
    if job.entity_type != "IO":
        return Outcome(journal.SKIPPED, "not an asset")
    ref = iiif.blob_ref(job.entity_ref)
    if ref is None:   # intake refuses these already; a blob prefix is never built from anything else
        return Outcome(journal.SKIPPED, "reference is not a UUID")
    from ..clients import public_store
    store = public_store.store(SERVICE_URI.value(), CONTAINER.value(), BASE_URL.value())
    store.ensure()
    asset = _current(ctx, job.entity_ref)
    if asset is None or not iiif.is_public(asset.security_tag, PUBLIC_TAGS.value()):
        return withdraw(store, ref, "not found" if asset is None else "not public")
    try:
        outcome = ctx.preservica(lambda api: _publish(api, ctx, store, ref, job.entity_ref, asset))
    except NotFound:
        return withdraw(store, ref, "not found")
    again = _current(ctx, job.entity_ref)   # what Preservica says now that the files are out
    if again is None or not iiif.is_public(again.security_tag, PUBLIC_TAGS.value()):
        return withdraw(store, ref, "no longer public")
    return outcome


def link(ref: str, security_tag: str | None) -> dict | None:
    """What the relay tells a receiver about the published state of an asset (None: not a publishable ref)."""
    from ..core import iiif
    ref = iiif.blob_ref(ref)
    if ref is None:
        return None
    if not iiif.is_public(security_tag, PUBLIC_TAGS.value()):
        return {"state": "withdrawn"}
    from ..clients import public_store
    try:
        base = public_store.store(SERVICE_URI.value(), CONTAINER.value(), BASE_URL.value()).base
    except ActionError:   # publish not set up here: the relay says nothing about IIIF rather than fail
        return None
    return {"state": "published", "manifest": iiif.manifest_url(base, ref)}


def _current(ctx: Context, ref: str):
    """The asset as Preservica has it now (None: deleted), with its identifiers."""
    def read(api):
        asset = api.asset(ref)
        asset.identifiers = sorted(api.identifiers_for_entity(asset))
        return asset
    try:
        return ctx.preservica(read)
    except NotFound:
        return None


# ---- withdrawing -------------------------------------------------------------------------------

def withdraw(store, ref: str, why: str) -> Outcome:
    from ..core import iiif
    from ..clients import activity
    names = store.names(f"{ref}/")
    if not names:
        return Outcome(journal.SKIPPED, f"not published ({why})")
    manifest = f"{ref}/manifest.json"
    store.delete(sorted(names, key=lambda n: n != manifest))   # the entry point goes first
    extra = {"publish_deleted": len(names)}
    if manifest in names:   # files of a publish that never got to its manifest were never announced
        activity.append(store, "Delete", iiif.manifest_url(store.base, ref))
        extra["publish_activity"] = "Delete"
    return Outcome(journal.DONE, f"withdrawn ({why})", extra)


# ---- publishing --------------------------------------------------------------------------------

def _publish(api, ctx: Context, store, ref: str, preservica_ref: str, asset) -> Outcome:
    from ..core import iiif
    limit, rights = MAX_FILES.int_value(minimum=1), RIGHTS.value()
    if rights and not rights.startswith(("http://", "https://")):
        raise ActionError("PUBLISH_RIGHTS must be a Creative Commons or RightsStatements.org URI")
    try:
        found = _access_files(api, asset, limit)
    except TooMany as exc:
        return Outcome(journal.SKIPPED, f"too many files ({exc} > PUBLISH_MAX_FILES {limit})")
    files = [_copy(api, store, ref, name, bitstream) for name, bitstream in found]
    thumbnail = _thumbnail(api, store, ref, asset)
    captions = _captions(ctx, store, ref, preservica_ref)
    if not any(f.media.paintable for f in files):
        return withdraw(store, ref, "no image, audio or video to show")
    doc = iiif.Asset(ref=ref, title=asset.title, description=asset.description, identifiers=asset.identifiers,
                     files=files, thumbnail=thumbnail, captions=captions, rights=rights,
                     required_statement=STATEMENT.value())
    try:
        body = iiif.manifest(doc, store.base)
    except ValueError as exc:   # pydantic's ValidationError; its text quotes the (untrusted) values
        raise ActionError(f"the IIIF manifest did not validate ({type(exc).__name__}): check PUBLISH_BASE_URL "
                          f"and PUBLISH_RIGHTS") from None
    name, url = f"{ref}/manifest.json", iiif.manifest_url(store.base, ref)
    keep = {name} | {f"{ref}/{f.name}" for f in files} | {f"{ref}/{x.name}" for x in [thumbnail] if x} \
        | ({f"{ref}/{captions}"} if captions else set())
    old, _ = store.read(name)
    extra = {"publish_manifest": url, "publish_files": len(files)}
    if old != body:
        store.upload(name, body, iiif.MANIFEST_TYPE)
    store.delete(n for n in store.names(f"{ref}/") if n not in keep)   # files no longer in the representation
    if old == body:
        return Outcome(journal.DONE, "unchanged", extra)
    from ..clients import activity
    kind = "Update" if old else "Create"
    activity.append(store, kind, url)
    return Outcome(journal.DONE, "", {**extra, "publish_activity": kind})


def _access_files(api, asset, limit: int) -> list:
    """[(blob name, Bitstream)] of the active generations of the first Access representation, in order.
    Counted from the representation's list before any content object is read: never more than `limit`."""
    reps = sorted((r for r in api.representations(asset) if r.rep_type.value == "Access"), key=lambda r: r.url)
    if not reps:
        return []
    refs = _content_refs(api, asset, reps[0])
    if len(refs) > limit:
        raise TooMany(len(refs))
    found = []
    for co_ref in refs:
        for generation in api.generations(api.content_object(co_ref)):
            if generation.active:
                found += [(f"files/{co_ref}-{k}", b) for k, b in enumerate(generation.bitstreams, start=1)]
        if len(found) > limit:
            raise TooMany(f"{len(found)}+")
    return found


def _content_refs(api, asset, representation) -> list[str]:
    """The content object references a representation lists (UUIDs only: each goes into a URL and a blob name).
    pyPreservica's content_objects() would read every one of them before we could count."""
    from ..clients import preservica
    from ..core import iiif
    root = preservica.get_xml(api, representation.url)   # on PRESERVICA_SERVER only; 404 -> NotFound
    refs = [(e.text or "").strip() for e in root.iter(f"{{{api.xip_ns}}}ContentObject")]
    return [r for r in refs if iiif.blob_ref(r) == r.lower()]


def _copy(api, store, ref: str, name: str, bitstream) -> iiif.File:
    """Stream one bitstream to `<ref>/<name>` unless the blob there already holds it (same fixity and size)."""
    from ..core import iiif, media, transcript
    label, blob = bitstream.filename or name, f"{ref}/{name}"
    fixity, known = transcript.fixity_text(bitstream.fixity), store.properties(blob)
    if known is not None and fixity and known.metadata.get("fixity") == fixity and known.size == bitstream.length:
        return iiif.File(name, _media_from(known), label)
    chunks = iter(api.bitstream_chunks(bitstream, chunk_size=CHUNK))
    head = bytearray()
    for chunk in chunks:               # enough to tell the type before the upload starts
        head += chunk
        if len(head) >= 64:
            break
    content_type, _ = media.sniff(bytes(head))

    def rest():
        yield bytes(head)
        for chunk in chunks:
            if len(head) < media.HEAD_BYTES:    # the header, for the size or duration: bounded
                head.extend(chunk[:media.HEAD_BYTES - len(head)])
            yield chunk
    store.upload(blob, rest(), content_type)
    found = media.describe(bytes(head), bitstream.length)
    store.set_metadata(blob, _metadata(found, fixity))   # known once the header went past
    return iiif.File(name, found, label)


def _metadata(m: media.Media, fixity: str) -> dict:
    out = {"fixity": fixity, "kind": m.kind}
    out.update({k: str(v) for k, v in (("width", m.width), ("height", m.height), ("duration", m.duration)) if v})
    return out


def _media_from(props) -> media.Media:
    from ..core import media
    md = props.metadata or {}

    def num(key, kind=int):
        try:
            return kind(md[key])
        except (KeyError, ValueError):
            return None
    return media.Media(props.content_settings.content_type or "application/octet-stream", md.get("kind", "Dataset"),
                       num("width"), num("height"), num("duration", float))


def _thumbnail(api, store, ref: str, asset) -> iiif.File | None:
    from ..core import iiif, media
    from pyPreservica.common import Thumbnail
    with tempfile.TemporaryDirectory(prefix="iiif-thumb-") as tmp:   # pyPreservica writes thumbnails to a file
        path = api.thumbnail(asset, str(Path(tmp) / "thumbnail"), size=Thumbnail.LARGE)
        if path is None or Path(path).stat().st_size > MAX_THUMBNAIL:
            return None
        data = Path(path).read_bytes()
    found = media.describe(data)
    if not (found.kind == "Image" and found.paintable):
        return None
    store.upload(f"{ref}/thumbnail", data, found.content_type)
    return iiif.File("thumbnail", found, "thumbnail")


def _captions(ctx: Context, store, ref: str, preservica_ref: str) -> str | None:
    """Copy `<ref>.vtt` from TRANSCRIBE_CONTAINER (pipeline storage) when `transcribe` made one."""
    from azure.core.exceptions import ResourceNotFoundError
    blob = ctx.storage.blob_service().get_blob_client(TRANSCRIPTS.value(), f"{preservica_ref}.vtt")
    try:
        if blob.get_blob_properties().size > MAX_CAPTIONS:
            return None
        data = blob.download_blob().readall()
    except ResourceNotFoundError:
        return None
    if not data.removeprefix(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        return None
    store.upload(f"{ref}/captions.vtt", data, "text/vtt")
    return "captions.vtt"


ACTION = Action(name="publish", perform=perform,
                settings=(CONTAINER, SERVICE_URI, BASE_URL, PUBLIC_TAGS, RIGHTS, STATEMENT, MAX_FILES),
                required=(), secrets=(), preservica=NEEDS, reads=frozenset(), repeatable=False)
