"""`publish` action: the asset's access copy as IIIF on a public container, withdrawn when it stops being public.

State-based: whatever the trigger (or the public sweep, handlers/sweep.py), `converge` reads the asset from
Preservica *now* (never the event's snapshot) and makes the public container match. The invariant: the
container holds an asset's files only while Preservica says the asset exists, its security tag is in
PUBLIC_SECURITY_TAGS and it is not hidden; and a file only while its content object's own tag is public too
(a closed one under an open asset is withheld). Preservica's thumbnail may be rendered from any representation's
file (inferred): it is published only where all of them are, else one made from a published image (thumbnail.py).
Open: the access representation's files are streamed to `<ref>/files/...`, the thumbnail to
`<ref>/thumbnail`, captions to `<ref>/captions.vtt` only when `transcribe` made them from one of those
files (same content object and fixity), then `<ref>/manifest.json` (IIIF Presentation 3) and a Create or
Update activity. Anything else: every blob under `<ref>/` is deleted (manifest first) and a Delete activity
written. A folder's security or visibility change re-checks the assets under it (folder.py), a content object's
its asset (content_object.py). One run per asset at a time (a lease, clients/publish_lock.py): a withdrawal
waits for a publish in flight.
The tag is read again before the manifest is written and once more at the end; a re-check that
fails (Preservica down) withdraws before it raises, so a retried or poisoned message leaves nothing public.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...clients import public_store as ps
from ...core import settings
from ...pipeline.contract import APP, DONE, NEEDS, SKIPPED, Action, ActionError, Context, Job, NotFound, Outcome, Setting
from . import source, thumbnail as thumbs

if TYPE_CHECKING:  # annotations only
    from ...core import iiif, media

TRANSCRIPTS = settings.BY_NAME["TRANSCRIBE_CONTAINER"]   # where `transcribe` leaves <ref>.vtt
RIGHTS = Setting("PUBLISH_RIGHTS", None, APP,
                 "IIIF `rights` of published manifests: a Creative Commons or RightsStatements.org URI.")
STATEMENT = Setting("PUBLISH_REQUIRED_STATEMENT", None, APP,
                    "IIIF `requiredStatement` (Attribution) text shown with every published manifest.")
MAX_FILES = Setting("PUBLISH_MAX_FILES", "500", APP,
                    "Most files of one access representation `publish` copies; an asset with more is skipped.")

CHUNK = 256 * 1024                 # bytes per read from Preservica
MAX_CAPTIONS = 5 * 1024 * 1024     # a WebVTT file larger than this is not published
CAPTIONS = "captions.vtt"
GONE = "not found"                 # why an asset Preservica answers 404 for is withdrawn


# A folder's or a file's other events (ingested, moved) change no asset's own tag: skipped before any request.
NOT_ACCESS = {"SO": "a folder's {} changes no asset's access", "CO": "a content object's {} changes no file's access"}


def perform(job: Job, ctx: Context) -> Outcome:
    from ...core import iiif, reconcile
    if job.entity_type in NOT_ACCESS and job.trigger not in reconcile.ALWAYS:
        return Outcome(SKIPPED, NOT_ACCESS[job.entity_type].format(job.trigger))
    if job.entity_type == "SO":   # the assets under a folder closed, hidden or opened (folder.py)
        from . import folder
        return folder.recheck(ctx, job, converge, public_store())
    if job.entity_type == "CO":   # one access file closed or opened: its asset converges (content_object.py)
        from . import content_object
        return content_object.recheck(ctx, job, converge)
    if iiif.blob_ref(job.entity_ref) is None:   # intake refuses these already; a blob prefix is built from nothing else
        return Outcome(SKIPPED, "reference is not a UUID")
    outcome = converge(ctx, job.entity_ref)
    if outcome.state == SKIPPED and outcome.reason == _unpublished(GONE):
        # No such asset and nothing under its ref: the reconciler's deletions come typeless (as assets), so
        # this may be a deleted content object whose files are public under its asset (one table read).
        from . import content_object
        return content_object.deleted(ctx, job.entity_ref, converge) or outcome
    return outcome


def public_store():
    store = ps.configured()
    store.ensure()
    return store


def converge(ctx: Context, preservica_ref: str, lock_wait: float | None = None) -> Outcome:
    """Make the public container match what Preservica says about this asset now (publish or withdraw)."""
    from ...clients import publish_lock
    from ...core import iiif
    ref = iiif.blob_ref(preservica_ref)
    with publish_lock.held(ctx.storage.blob_service(), ref, lock_wait) as lease:
        store = ps.Guarded(public_store(), lease.check)
        asset = source.current(ctx, preservica_ref)
        why = _not_public(asset)
        if why:
            return withdraw(store, ref, why)
        try:
            outcome = ctx.preservica(lambda api: _publish(api, ctx, store, ref, preservica_ref, asset))
        except NotFound:
            return withdraw(store, ref, GONE)
        except BaseException:   # files may be out: they stay only if Preservica confirms the asset is public
            why = _recheck(ctx, store, ref, preservica_ref)
            if why:
                withdraw(store, ref, why)
            raise
        if outcome.state == DONE and "publish_manifest" in outcome.extra:
            why = _recheck(ctx, store, ref, preservica_ref)   # what Preservica says now that all is out
            if why:
                return withdraw(store, ref, "no longer public")
        return outcome


def _not_public(asset) -> str | None:
    if asset is None:
        return GONE
    hidden = bool(getattr(asset, "hidden", False))
    if ps.is_public(asset.security_tag, hidden):
        return None
    return "hidden" if hidden else "not public"


def _recheck(ctx: Context, store, ref: str, preservica_ref: str) -> str | None:
    """Why the asset may no longer be public (None: it still may). A failed read withdraws, then raises:
    a publish that cannot confirm the asset is still open leaves nothing public behind it."""
    try:
        return _not_public(source.current(ctx, preservica_ref))
    except BaseException:
        withdraw(store, ref, "the re-check failed")
        raise


# ---- withdrawing -------------------------------------------------------------------------------

def withdraw(store, ref: str, why: str) -> Outcome:
    from ...clients import activity
    from ...core import iiif
    names = store.names(f"{ref}/")
    if not names:
        return Outcome(SKIPPED, _unpublished(why))
    manifest = f"{ref}/manifest.json"
    store.delete(sorted(names, key=lambda n: n != manifest))   # the entry point goes first
    extra = {"publish_deleted": len(names)}
    if manifest in names:   # files of a publish that never got to its manifest were never announced
        activity.append(store, "Delete", iiif.manifest_url(store.base, ref))
        extra["publish_activity"] = "Delete"
    return Outcome(DONE, f"withdrawn ({why})", extra)


def _unpublished(why: str) -> str:
    return f"not published ({why})"


# ---- publishing --------------------------------------------------------------------------------

def _publish(api, ctx: Context, store, ref: str, preservica_ref: str, asset) -> Outcome:
    from ...clients import published_files
    from ...core import iiif, transcript
    limit, rights = MAX_FILES.int_value(minimum=1), RIGHTS.value()
    if rights and not rights.startswith(("http://", "https://")):
        raise ActionError("PUBLISH_RIGHTS must be a Creative Commons or RightsStatements.org URI")
    try:
        found, withheld, alone = source.access_files(api, asset, limit)
    except source.Refused as exc:   # what was published stays, but never a file whose content object closed since
        # (or was deleted since): the tags of those with public files that the listing did not read, one read each
        public = {n.split("/")[2].rsplit("-", 1)[0] for n in store.names(f"{ref}/files/")}
        withheld = exc.withheld | source.closed_of(api, public - exc.seen)
        if withheld & public:   # the kept manifest shows that file (canvas, name) and captions made from it
            return withdraw(store, ref, f"{exc}, and a published file closed since")
        _withhold(store, ref, withheld, thumbs.stale(store, ref, thumbs.preservica_may(exc.alone, withheld), None))
        return Outcome(SKIPPED, str(exc))
    may = thumbs.preservica_may(alone, withheld)
    fixities = {name: transcript.fixity_text(b.fixity) for name, _, b in found}
    _withhold(store, ref, withheld, thumbs.stale(store, ref, may, fixities))
    # Before any file is out: should its content object be deleted, its deletion names only itself.
    published_files.remember(published_files.table(ctx.storage), ref, (co for _, co, _ in found))
    copies = [_copy(api, store, ref, name, bitstream) for name, _, bitstream in found]
    files = [f for f, _ in copies]
    thumbnail = _thumbnail(api, store, ref, asset, files, fixities if not may else None)
    captions = source.captions(ctx, TRANSCRIPTS.value(), preservica_ref, files,
                               {name: (co, b.fixity) for name, co, b in found}, MAX_CAPTIONS)
    if captions:
        store.upload(f"{ref}/{CAPTIONS}", captions[0], "text/vtt")
    else:   # no transcript of a file published here: none stays public from an earlier run
        store.delete([f"{ref}/{CAPTIONS}"])
    if not any(f.media.paintable for f in files):
        return withdraw(store, ref, "no image, audio or video to show")
    about = source.summary(api, asset)
    doc = iiif.Asset(ref=ref, title=asset.title, description=about[0] if about else None,
                     summary_language=about[1] if about else "none", identifiers=asset.identifiers,
                     files=files, thumbnail=thumbnail, captions=CAPTIONS if captions else None,
                     captions_on=captions[1] if captions else None, rights=rights,
                     required_statement=STATEMENT.value())
    try:
        body = iiif.manifest(doc, store.base)
    except ValueError as exc:   # pydantic's ValidationError; its text quotes the (untrusted) values
        raise ActionError(f"the IIIF manifest did not validate ({type(exc).__name__}): check PUBLISH_BASE_URL "
                          f"and PUBLISH_RIGHTS") from None
    why = _recheck(ctx, store, ref, preservica_ref)   # before anything announces the asset
    if why:
        return withdraw(store, ref, "no longer public")
    name, url = f"{ref}/manifest.json", iiif.manifest_url(store.base, ref)
    keep = {name} | {f"{ref}/{f.name}" for f in files} | {f"{ref}/{x.name}" for x in [thumbnail] if x} \
        | ({f"{ref}/{CAPTIONS}"} if captions else set())
    old, _ = store.read(name)
    copied = sum(1 for _, c in copies if c)
    extra = {"publish_manifest": url, "publish_files": len(files), "publish_copied": copied}
    if withheld:
        extra["publish_withheld"] = len(withheld)
    if old != body:
        store.upload(name, body, iiif.MANIFEST_TYPE)
    store.delete(n for n in store.names(f"{ref}/") if n not in keep)   # files no longer in the representation
    if old == body and not copied:
        return Outcome(DONE, "unchanged", extra)
    from ...clients import activity
    kind = "Update" if old else "Create"   # a replaced file under the same name is an Update too
    activity.append(store, kind, url)
    return Outcome(DONE, "", {**extra, "publish_activity": kind})



def _withhold(store, ref: str, withheld: set[str], thumbnail: bool) -> None:
    """Before anything is copied: the files of a content object closed under the open asset go, and the
    thumbnail when `thumbnail` (Preservica's that may show what is not published, thumbnail.stale)."""
    if withheld or thumbnail:
        store.delete(n for n in store.names(f"{ref}/") if (thumbnail and n == f"{ref}/{thumbs.NAME}")
                     or any(n.startswith(f"{ref}/files/{co}-") for co in withheld))


def _copy(api, store, ref: str, name: str, bitstream) -> tuple[iiif.File, bool]:
    """Stream one bitstream to `<ref>/<name>` unless the blob there already holds it (same fixity and size);
    the file, and whether it was copied. Never more bytes than PUBLISH_MAX_BYTES, whatever the length said."""
    from ...core import iiif, media, transcript
    label, blob = bitstream.filename or name, f"{ref}/{name}"
    fixity, known = transcript.fixity_text(bitstream.fixity), store.properties(blob)
    if known is not None and fixity and known.metadata.get("fixity") == fixity and known.size == bitstream.length:
        return iiif.File(name, _media_from(known), label), False
    most = source.MAX_BYTES.int_value(minimum=1)
    chunks = iter(api.bitstream_chunks(bitstream, chunk_size=CHUNK))
    head = bytearray()
    for chunk in chunks:               # enough to tell the type before the upload starts
        head += chunk
        if len(head) >= 64:
            break
    content_type, _ = media.sniff(bytes(head))

    def rest():
        sent = len(head)
        yield bytes(head)
        for chunk in chunks:
            sent += len(chunk)
            if sent > most:
                raise ActionError(f"a file grew past PUBLISH_MAX_BYTES {most} while it was copied")
            if len(head) < media.HEAD_BYTES:    # the header, for the size or duration: bounded
                head.extend(chunk[:media.HEAD_BYTES - len(head)])
            yield chunk
    store.upload(blob, rest(), content_type)
    found = media.describe(bytes(head), bitstream.length)
    store.set_metadata(blob, _metadata(found, fixity))   # known once the header went past
    return iiif.File(name, found, label), True


def _metadata(m: media.Media, fixity: str) -> dict:
    out = {"fixity": fixity, "kind": m.kind}
    out.update({k: str(v) for k, v in (("width", m.width), ("height", m.height), ("duration", m.duration)) if v})
    return out


def _media_from(props) -> media.Media:
    from ...core import media
    md = props.metadata or {}

    def num(key, kind=int):
        try:
            return kind(md[key])
        except (KeyError, ValueError):
            return None
    return media.Media(props.content_settings.content_type or "application/octet-stream", md.get("kind", "Dataset"),
                       num("width"), num("height"), num("duration", float))


def _thumbnail(api, store, ref: str, asset, files: list[iiif.File], made_from: dict[str, str] | None):
    """Preservica's thumbnail of the asset when `made_from` is None, else one made from the first published
    image (`made_from`: blob name -> fixity of the files published). Which file Preservica renders its own from
    is not documented (inferred: any of the asset's), so it is taken only where thumbnail.preservica_may."""
    from ...core import iiif, media
    if made_from is not None:
        return thumbs.made(store, ref, files, made_from)
    data = source.thumbnail(api, asset)
    if data is None:
        return None
    found = media.describe(data)
    if not (found.kind == "Image" and found.paintable):
        return None
    store.upload(f"{ref}/{thumbs.NAME}", data, found.content_type)
    return iiif.File(thumbs.NAME, found, thumbs.NAME)


ACTION = Action(name="publish", perform=perform,
                settings=(ps.CONTAINER, ps.SERVICE_URI, ps.BASE_URL, ps.PUBLIC_TAGS, RIGHTS, STATEMENT, MAX_FILES,
                          source.IDENTIFIER_TYPES, source.MAX_BYTES, TRANSCRIPTS, source.DESCRIBE_WRITE,
                          source.DESCRIBE_SCHEMA),
                required=(), secrets=(), preservica=NEEDS, reads=frozenset(), repeatable=False,
                entities=("asset", "folder", "content object"))
