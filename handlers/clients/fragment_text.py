"""Where `ocr` and `transcribe` keep a file's text out of an open asset's metadata fragment (core/withheld.py).

They read files for staff, closed ones too (an access file whose content object's own tag is closed, the
preservation file they fall back to), and keep the text in a private blob and in a fragment on the asset. While
the asset is public, Preservica's public access may index that fragment (inferred), so a text read from a file
that is not public goes into the private blob only: decided at the write, from the asset read for the write, and
again when the asset's tag or visibility changes, or a file's under it (`changed`): no file is read again then.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.envelope import is_ref
from ..core.errors import FragmentKept, NotFound
from . import public_store, snapshot

MAX_SOURCES = 100   # content objects recorded on a text blob (37 bytes each of its 8 KiB of metadata); more: unknown


@dataclass(frozen=True)
class Kept:
    """Where an action keeps an asset's text: the private container, the blobs' suffixes (the first holds the
    record read back), the blob metadata naming the content objects read (comma-separated), and the fragment:
    its schema, its element, the elements that carry the text or a file's name, and a provenance element that
    only the app writes (`mark`: an unrecorded fragment with it is taken as the app's, fragments.py)."""
    container: str
    suffixes: tuple[str, ...]
    sources: str
    schema: str
    element: str
    drop: tuple[str, ...]
    mark: str

    def ours(self, element) -> bool:
        ns = f"{{{self.schema}}}"
        return element.tag == f"{ns}{self.element}" and element.find(f"{ns}{self.mark}") is not None


def sources(refs: list[str]) -> str:
    """The content objects read, as the blob records them: empty (unknown) past MAX_SOURCES."""
    refs = list(dict.fromkeys(r.lower() for r in refs if is_ref(r)))
    return ",".join(refs) if len(refs) <= MAX_SOURCES else ""


def write(storage, secrets, ref: str, kept: Kept, xml: str, closed: bool) -> tuple[str, bool]:
    """Replace the fragment or add one (fragments.write: under its lease, the asset read now): without the text
    when a file it was read from is not public (`closed`) and the asset is, by its tag and visibility as read for
    the write, not at the event. (added or replaced, withheld). FragmentKept over a fragment edited since the
    app wrote it (the text stays in the blob): logged as an error when that fragment should have lost its text."""
    from ..core import withheld
    from . import fragments
    bare = [False]

    def shaped(asset) -> str:
        bare[0] = closed and public_store.is_public(asset.security_tag, asset.hidden)
        return withheld.bare_xml(xml, kept.schema, kept.element, kept.drop) if bare[0] else xml
    try:
        how = fragments.write(storage.blob_service(), secrets, ref, kept.schema, shaped, ours=kept.ours)
    except FragmentKept as exc:
        if bare[0]:
            _unwithheld(ref, kept, str(exc))
        raise
    return how, bare[0]


def _unwithheld(ref: str, kept: Kept, why: str) -> None:
    # A person's edit is the archive's own record: not overwritten, even to withhold (docs/actions.md). An operator
    # is alerted (bicep/modules/alerts.bicep): what Preservica's public access shows of it is theirs to decide.
    from . import telemetry
    telemetry.alert_signal("closed-text-kept", f"asset {ref}: {why}; it may hold the text of a file that is not "
                           f"public while the asset is: check it in Preservica (the {kept.schema} fragment)")


# ---- a change of access: the asset opened or shown, a file under it closed --------------------------

def changed(kind: str, ref: str, kept: Kept, storage, call: Callable, snap: Callable[[], dict]) -> tuple[bool, str]:
    """For a security or visibility change of an asset ("IO") or a content object ("CO"): (text withheld now,
    why). Nothing is read again but tags: a public asset's fragment loses its text when a file it was read from
    is not public now. A closed asset's is left as it is, and a withheld text is not put back (the next reading
    writes it by the rule above). `call` runs work with the Preservica client; `snap` is the event's snapshot."""
    if kind == "CO":
        return _file_changed(ref, kept, storage, call)
    found = snap()
    if found.get("gone"):
        raise NotFound()
    if not public_store.is_public(found.get("securityTag"), bool(found.get("hidden"))):
        return False, "the asset is not public: its fragment may hold the text"
    return _recheck(snapshot.entity("IO", ref, found), kept, storage, call, None)


def _file_changed(ref: str, kept: Kept, storage, call: Callable) -> tuple[bool, str]:
    """A content object's tag changed on its own: its asset is checked when the content object is not public."""
    # pyPreservica entityAPI.py content_object(): one GET; `parent` is its asset (publish/content_object.py).
    co = call(lambda api: api.content_object(ref))   # 404: NotFound, the runner's `gone`
    if public_store.is_public(co.security_tag, False):
        return False, "the file is public: nothing to withhold"
    parent = (co.parent or "").strip() if isinstance(co.parent, str) else ""
    if not is_ref(parent):   # never a blob name or a URL from it
        return False, "the content object's parent is not an asset reference (a UUID)"
    asset = call(lambda api: snapshot.asset_now(api, parent))
    if not public_store.is_public(asset.security_tag, asset.hidden):
        return False, f"its asset {parent.lower()}: not public: its fragment may hold the text"
    done, why = _recheck(asset, kept, storage, call, ref.lower())
    return done, f"its asset {parent.lower()}: {why}"


def _recheck(asset, kept: Kept, storage, call: Callable, closed_co: str | None) -> tuple[bool, str]:
    """The asset is public now: its fragment without the text when a file the text was read from is not public
    now (`closed_co`: a content object just read closed)."""
    record = _record(storage, kept, asset.reference)
    if record is None:
        return False, "no text kept for this asset"
    read = [r for r in record.get(kept.sources, "").split(",") if is_ref(r)]
    if read and closed_co is not None and closed_co not in read:
        return False, "its text was not read from this file"
    if read:   # the tags now: an asset opened with its files is not withheld, a file closed since is
        closed = any(not _public(call, co) for co in read)
    elif closed_co is not None:   # no record of the files read (an older text): this file may be one
        closed = True
    elif "source_closed" not in record:
        return False, "no record of the files its text was read from: read it again (hookops backfill) to decide"
    else:   # the files' tags when they were read
        closed = record["source_closed"] == "true"
    if not closed:
        return False, "the files its text was read from are public"
    from . import publish_lock
    # fragments.write's lease: a reading's write of the same fragment lands before this read or after this write.
    service = storage.blob_service()
    with publish_lock.held(service, f"metadata/{asset.reference}", doing="writing a metadata fragment of") as held:
        return call(lambda api: _strip(api, asset, kept, service, held))


def _public(call: Callable, co: str) -> bool:
    try:
        return public_store.is_public(call(lambda api: api.content_object(co)).security_tag, False)
    except NotFound:   # deleted since it was read: nothing says it is public
        return False


def _record(storage, kept: Kept, ref: str) -> dict | None:
    """The text blob's metadata (the files read, their tags then); None when there is no text."""
    from azure.core.exceptions import ResourceNotFoundError
    blob = storage.blob_service().get_blob_client(kept.container, f"{ref}{kept.suffixes[0]}")
    try:
        return dict(blob.get_blob_properties().metadata or {})
    except ResourceNotFoundError:
        return None


def _strip(api, asset, kept: Kept, service, held) -> tuple[bool, str]:
    """The asset's fragment rewritten without the text and the file names, unless it holds none, or is not the
    app's unchanged (fragments.checked: then left, and logged for an operator)."""
    from ..core import canonical, withheld
    from . import fragments
    try:
        found = fragments.current_all(api, asset, kept.schema)
        if not found:   # an event's snapshot may predate the fragment (or its URL): the asset as it is now
            asset = snapshot.asset_now(api, asset.reference)
            found = fragments.current_all(api, asset, kept.schema)
        if not found:
            return False, "no fragment of its text on the asset"
        element = found[0]
        if withheld.is_bare(element, kept.schema, kept.drop):
            return False, "its fragment holds no text"
        record = fragments.recorded(service, asset.reference, kept.schema)
        # The PUT replaces every fragment of the schema (pyPreservica update_metadata): each is checked.
        there = [fragments.checked(canonical.digest(e), e, record.digests, "", kept.ours) for e in found]
    except FragmentKept as exc:
        _unwithheld(asset.reference, kept, str(exc))
        return False, f"{exc}: its text was not withheld (an operator is told)"
    fragments.send(api, service, asset.reference, asset, kept.schema, held, withheld.bare(element, kept.schema, kept.drop),
                   there, record)
    return True, "text withheld from the fragment: a file it was read from is not public, the asset is"
