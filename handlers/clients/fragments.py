"""Writing one of the app's metadata fragments on an asset: replace the fragment of its schema, or add one, never a
second (`catalogue`, `ocr`, `transcribe`), and never over a person's edit.

Preservica's fragment API has no conditional write: pyPreservica's add_metadata is a plain POST and
update_metadata a PUT to each fragment URL the entity lists (entityAPI.py). So whether to add is decided from the
asset's fragments as read now, under a lease on `metadata/<ref>` (publish_lock's container), held only for the
read and the write: two runs of one asset (two events, a backfill beside the webhook, two instances) would
otherwise both see none and both add. An entity already in hand (the dispatcher's snapshot) is trusted only when
it lists the schema: its fragment URLs are Preservica's, and one deleted since (404 to the PUT) sends the write
to a new read, not to `not found`. A snapshot that lists none is trusted for an add only while the app has never
written the schema on the asset (its record, below): else a new read decides, since the snapshot may be older.
Busy (the lease held 75 s) puts the event back on its queue, as publish's and custody's do (pipeline.waits).

Before REPLACING (never before adding), each fragment of the schema is read (one GET, FRAGMENT_BYTES at most) and
its canonical digest (core/canonical.py) compared with the ones recorded when the app wrote it: in the metadata of
that lease's marker blob, one entry per schema, set under the lease just before the write, holding the content
then there (already checked) and the content written, so a write lost between the two leaves either accepted.
Not one of those: FragmentKept, nothing written (a staff correction stays). No record (written before this rule,
or by someone else): replaced only when `ours` says it is the app's own (ocr's and transcribe's provenance).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..core import canonical
from ..core.errors import FragmentKept, NotFound, TooLarge
from ..core.settings import PUBLISH_LOCK_CONTAINER

# Larger than any fragment the app writes (a text cut at a million characters, at most 5 bytes each escaped):
# a bigger one is not ours, and is not read further.
FRAGMENT_BYTES = 8 * 1024 * 1024
EDITED = "its fragment was edited in Preservica since this app wrote it: not replaced"
UNCHANGED = "unchanged"   # the write's outcome when what the app last wrote is what it would write now
UNRECORDED = "its fragment was not written by this app (no record of it): not replaced"
TOO_LARGE = f"its fragment is larger than this app writes (more than {FRAGMENT_BYTES} bytes): not replaced"
Ours = Callable[[Any], bool]


def write(service, secrets, ref: str, schema: str, xml: str | Callable[[Any], str], known=None,
          ours: Ours | None = None) -> str:
    """"replaced", "added" or "unchanged" (what the app last wrote, listed: nothing sent); FragmentKept when the
    fragment there is not ours unchanged. `known`: the asset as
    the event's snapshot has it, used when it lists the schema. `xml` may be made from the asset as read for the
    write, under the lease (never `known`): its tag and whether it is hidden are the ones at the write
    (fragment_text.py). `ours`: whether an unrecorded fragment (its element) is the app's own."""
    from pyPreservica.common import HTTPException  # here: actions import this module at their import

    from . import preservica, publish_lock, snapshot

    def put(api, asset, held, record: Record) -> str:
        text = xml(asset) if callable(xml) else xml
        new = canonical.digest_xml(text)
        if record.written == new and schema in (asset.metadata or {}).values():
            return UNCHANGED   # what the app last wrote, still listed: nothing to send (a person's edit since stays)
        there = [checked(canonical.digest(e), e, record.digests, new, ours) for e in current_all(api, asset, schema)]
        return send(api, service, ref, asset, schema, held, text, there, record)

    def work(api, held) -> str:
        listed = known is not None and schema in (known.metadata or {}).values()
        record = recorded(service, ref, schema)   # under the lease: no other write of it until the lease ends
        # Not listed and never written by the app on this asset: an add needs no new read, so Preservica is asked
        # once per event. Only a person's fragment of this very schema, added in the minutes since the snapshot,
        # would be missed: a second fragment then, nothing lost (inferred rare).
        if known is not None and not callable(xml) and (listed or not record.digests):
            try:
                return put(api, known, held, record)
            except HTTPException as exc:
                if exc.http_status_code != 404 or not listed:
                    raise
                record = recorded(service, ref, schema)   # send() changed it before the PUT's 404
        # pyPreservica's entity() GET, parsed as it parses it, with `hidden` besides (snapshot.asset_now).
        return put(api, snapshot.asset_now(api, ref), held, record)
    if known is not None and not callable(xml) and schema in (known.metadata or {}).values() \
            and recorded(service, ref, schema).written == canonical.digest_xml(xml):
        # What the app last wrote, confirmed and still listed: nothing to send, so no lease (one storage read, not
        # five). A run writing meanwhile cleared the confirmation first, or writes its own text after this look.
        return UNCHANGED
    with publish_lock.held(service, f"metadata/{ref}", doing="writing a metadata fragment of") as held:
        return preservica.call(secrets, lambda api: work(api, held))


def current(api, url: str):
    """The fragment at `url` (pyPreservica entityAPI.py metadata(): the MetadataResponse's `.//{xip}Content`'s
    child), read with get_xml's same-server guard and FRAGMENT_BYTES; None when it is gone (404) or empty.
    FragmentKept past the bound."""
    from .preservica_http import get_xml
    try:
        root = get_xml(api, url, limit=FRAGMENT_BYTES)
    except NotFound:
        return None
    except TooLarge:
        raise FragmentKept(TOO_LARGE) from None
    content = root.find(f".//{{{api.xip_ns}}}Content")
    return content[0] if content is not None and len(content) else None


def current_all(api, asset, schema: str) -> list:
    """The fragments of `schema` on the asset as Preservica has them now (one GET each; none when it lists none)."""
    found = (current(api, url) for url, s in (asset.metadata or {}).items() if s == schema)
    return [e for e in found if e is not None]


def checked(digest: str, element, record: set[str], new: str, ours: Ours | None) -> str:
    """`digest` when the fragment may be replaced: the content about to be written, one the app recorded, or with
    no record, one `ours` recognises. FragmentKept otherwise."""
    if digest == new or digest in record or (not record and ours is not None and ours(element)):
        return digest
    raise FragmentKept(EDITED if record else UNRECORDED)


def _key(schema: str) -> str:
    import hashlib
    return "fragment_" + hashlib.sha256(schema.encode()).hexdigest()[:24]   # blob metadata: an identifier


class Record(NamedTuple):
    digests: set[str]      # of the `schema` fragments the app wrote on the asset, or found there and let stand
    written: str | None    # the last write's, once Preservica answered it (None: none, or one not answered)
    metadata: dict         # the marker blob's metadata as read (every schema's record): send() writes it back


def recorded(service, ref: str, schema: str) -> Record:
    """What the app recorded of the `schema` fragment on `ref` (no digests: no record)."""
    from azure.core.exceptions import ResourceNotFoundError
    blob = service.get_blob_client(PUBLISH_LOCK_CONTAINER, f"metadata/{ref}")
    try:
        md = dict(blob.get_blob_properties().metadata or {})
    except ResourceNotFoundError:   # no lease ever taken on it (looked at without one): nothing recorded
        return Record(set(), None, {})
    return Record(set(md.get(_key(schema), "").split(",")) - {""}, md.get(_key(schema) + "_written") or None, md)


def send(api, service, ref: str, asset, schema: str, held, text: str, there: list[str], record: Record) -> str:
    """Write `text` as the `schema` fragment on `asset` (write_metadata: "added" or "replaced"), under the lease
    `held` on `metadata/<ref>` (publish_lock.held's), with `record` read under it. Before the write the record
    takes `there` (the fragments checked) and the new digest, unconfirmed; after Preservica answers, it is
    confirmed: a write whose answer is lost is read next time, never taken for unchanged (nor, being recorded,
    for a person's edit)."""
    blob = service.get_blob_client(PUBLISH_LOCK_CONTAINER, f"metadata/{ref}")
    new, md = canonical.digest_xml(text), dict(record.metadata)
    md[_key(schema)] = ",".join(list(dict.fromkeys([*there, new]))[-8:])   # a few: 8 KiB of metadata per blob
    md.pop(_key(schema) + "_written", None)
    # A leased blob's metadata is written only with its lease id (learn.microsoft.com/rest/api/storageservices/
    # set-blob-metadata, x-ms-lease-id); and it replaces all of it, so every schema's record goes back.
    blob.set_blob_metadata(md, lease=held.lease)
    how = api.write_metadata(asset, schema, text)
    blob.set_blob_metadata({**md, _key(schema) + "_written": new}, lease=held.lease)
    return how
