"""What `publish` reads: the asset as Preservica has it now (tag, visibility, identifiers), its access files
(counted and sized before anything is downloaded; none of a content object whose own tag is not public), its
thumbnail (read with a bound) and the transcript's captions (only for a published file they were made from).
A helper of the publish action."""
from __future__ import annotations

from ...core import settings
from ...core.errors import Refused as Refused, TooMany
from ...pipeline.contract import APP, NotFound, Setting

IDENTIFIER_TYPES = Setting("PUBLISH_IDENTIFIER_TYPES", None, APP,
                           "Comma-separated identifier types `publish` puts in the public manifest's metadata; "
                           "unset: none (identifiers are often internal: accession or catalogue numbers).")
MAX_BYTES = Setting("PUBLISH_MAX_BYTES", "1073741824", APP,
                    "Largest access file `publish` copies (bytes, from Preservica's bitstream length, checked before "
                    "the download); an asset with a larger one is skipped.")
MAX_THUMBNAIL = 5 * 1024 * 1024
DESCRIBE_WRITE, DESCRIBE_SCHEMA = settings.BY_NAME["DESCRIBE_WRITE"], settings.BY_NAME["DESCRIBE_SCHEMA"]


def current(ctx, ref: str):
    """The asset as Preservica has it now (None: deleted), with `.hidden` and the public `.identifiers`."""
    def read(api):
        from ...clients import snapshot
        asset = snapshot.asset_now(api, ref)
        types = {t.strip() for t in (IDENTIFIER_TYPES.value() or "").split(",") if t.strip()}
        asset.identifiers = sorted((t, v) for t, v in api.identifiers_for_entity(asset) if t in types) if types else []
        return asset
    try:
        return ctx.preservica(read)
    except NotFound:
        return None


def summary(api, asset) -> tuple[str, str] | None:
    """(text, language) of the manifest's summary: the asset's description (DESCRIBE_WRITE=description, or no
    reviewed text to take), or with DESCRIBE_WRITE=fragment the text a person accepted into the
    DESCRIBE_SCHEMA fragment while the description is still the one they saw (core.describe.reviewed_summary).
    The fragment's URL comes with the entity GET already made (pyPreservica common.py entity_from_string:
    `metadata` maps each Metadata/Fragment URL to its schema): one GET more, only for an asset that has one.
    Never the drafts container: a draft nobody accepted is in no fragment and no description."""
    from ...clients.preservica import get_xml
    from ...core import describe
    description = (asset.description or "").strip()
    url = next((u for u, schema in (asset.metadata or {}).items() if schema == DESCRIBE_SCHEMA.value()), None)
    if DESCRIBE_WRITE.value() == "fragment" and url:
        # The fragment document is a MetadataResponse holding our element (pyPreservica entityAPI.metadata:
        # `.//{xip}Content`'s child); read with get_xml's bound, on PRESERVICA_SERVER only.
        try:
            found = describe.reviewed_summary(get_xml(api, url), DESCRIBE_SCHEMA.value(), asset.description)
        except NotFound:   # the fragment went since the entity was read: not the asset (converge withdraws on that)
            found = None
        if found:
            return found
    return (description, "none") if description else None


def access_files(api, asset, limit: int) -> tuple[list, set[str], bool]:
    """([(blob name, content object ref, Bitstream)], refs of the content objects withheld, whether that
    representation is the asset's only one) of the active generations of the first Access representation, in
    order. A content object whose own security tag is not public (public_store.is_public) is withheld: none of
    its files is listed. Counted from the representation's list before any content object is read (never more
    than `limit`), and each listed length checked against PUBLISH_MAX_BYTES before any download. Refused carries
    `.alone` too."""
    from ...clients import preservica, public_store
    found: list = []
    withheld: set[str] = set()
    others: list = []   # the asset's other representations, from the list read anyway
    most, index = MAX_BYTES.int_value(minimum=1), {}
    try:
        for f in preservica.files(api, asset, ("Access",), first_only=True, most=limit, others=others):
            if not public_store.is_public(f.security_tag, False):   # closed under an open asset
                withheld.add(f.content_object)
                continue
            place = (f.content_object, id(f.generation))   # blobs are numbered within their generation
            index[place] = index.get(place, 0) + 1
            found.append((f"files/{f.content_object}-{index[place]}", f.content_object, f.bitstream))
            if len(found) > limit:
                raise _refused(f"too many files ({len(found)}+ > PUBLISH_MAX_FILES {limit})", withheld, found,
                               others)
    except TooMany as exc:   # from the list, before any content object (or its tag) was read
        raise _refused(f"too many files ({exc.count} > PUBLISH_MAX_FILES {limit})", set(), [], others) from None
    for _, _, bitstream in found:
        if not 0 <= (bitstream.length or 0) <= most:   # pyPreservica's Bitstream: length = int(<FileSize>)
            raise _refused(f"a file too large ({bitstream.length} > PUBLISH_MAX_BYTES {most})", withheld, found,
                           others)
    return found, withheld, not others


def _refused(reason: str, withheld: set[str], found: list, others: list) -> Refused:
    """Refused with `.withheld`, the closed content objects seen so far, `.seen`, every content object whose
    tag was read (closed or open): publish reads the tags of the others it has public files of (closed_of), and
    `.alone`, whether the Access representation is the asset's only one."""
    exc = Refused(reason)
    exc.withheld = withheld   # type: ignore[attr-defined]
    exc.seen = withheld | {co for _, co, _ in found}   # type: ignore[attr-defined]
    exc.alone = not others   # type: ignore[attr-defined]
    return exc


def closed_of(api, refs: set[str]) -> set[str]:
    """Which of these content objects (those with files public now) are not public: one read each, only when
    publish refuses an asset before it read their tags, so an earlier copy kept public is still allowed.
    A deleted one (404) is not public; its files go, not the whole asset."""
    from pyPreservica.common import ReferenceNotFoundException

    from ...clients import public_store
    from ...core.envelope import is_ref

    def public(r: str) -> bool:
        try:   # pyPreservica entityAPI.py content_object(): ReferenceNotFoundException on 404
            return public_store.is_public(api.content_object(r).security_tag, False)
        except ReferenceNotFoundException:
            return False
    return {r for r in refs if not is_ref(r)   # not a name publish writes: not vouched for, not read (a URL)
            or not public(r)}


def thumbnail(api, asset) -> bytes | None:
    """The large thumbnail, at most MAX_THUMBNAIL bytes (None: none, or larger). The request is
    pyPreservica's EntityAPI.thumbnail() (entityAPI.py: /api/content/thumbnail?id=sdb:IO|ref&size=large),
    streamed here with a running count instead of written whole to a file first."""
    from pyPreservica.common import Thumbnail

    from ...clients import preservica
    params = {"id": f"sdb:{asset.entity_type.value}|{asset.reference}", "size": Thumbnail.LARGE.value}
    try:
        resp = preservica.get(api, f"{api.protocol}://{api.server}/api/content/thumbnail", params, stream=True)
    except NotFound:
        return None
    with resp:
        data = bytearray()
        for chunk in resp.iter_content(chunk_size=64 * 1024):
            data += chunk
            if len(data) > MAX_THUMBNAIL:
                return None
    return bytes(data)


def captions(ctx, container: str, preservica_ref: str, files: list, sources: dict, most: int):
    """(WebVTT bytes, name of the file they caption) when `transcribe` left `<ref>.vtt` made from the content
    object and fixity of a published audio or video file (core.transcript.same_source); else None."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    from ...core import transcript
    blob = ctx.storage.blob_service().get_blob_client(container, f"{preservica_ref}.vtt")
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    target = next((f for f in files if f.media.paintable and f.media.kind in ("Sound", "Video")
                   and transcript.same_source(props.metadata, *sources[f.name])), None)
    if target is None or props.size > most:
        return None
    try:   # the transcript as it was when its metadata matched, not one written since
        data = blob.download_blob(etag=props.etag, match_condition=MatchConditions.IfNotModified).readall()
    except (ResourceNotFoundError, ResourceModifiedError):
        return None
    if not data.removeprefix(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        return None
    return data, target.name
