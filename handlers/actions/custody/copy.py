"""Converge one asset's OCFL object to what Preservica holds now.

Read from Preservica with pyPreservica 4.2 (entityAPI.py): asset(), representations(), content_objects(),
generations() (each Generation's bitstreams come from bitstream(): filename, length, fixity dict, content_url,
gen_index, bs_index). The content: every bitstream of every generation of the Preservation representations,
streamed through `custody_store.BlockWriter` (hashed on the way); the metadata: the asset's XIP entity
document, its identifiers and each metadata fragment, as the Entity API answers them less their
AdditionalInformation (links naming the server, which would make every copy differ).

Nothing is committed until every bitstream's digests matched Preservica's; then the new content, the
version's inventory and, last, the object's inventory (a conditional write): a failure before that leaves
the object as it was (staged blocks are never committed; the service discards them).

One run per asset at a time (the caller holds a lease, `check` renews it before each write and while it
streams): two runs of one asset write the same version's paths, and the later one's bytes would stand under
the other's inventory (a MOVED right after ingest: two entity documents, one path). Under the lease, a version
whose inventory is written but not the object's (a run stopped between the two, or whose answer to the first
was lost) is a stopped run's, whole: it is committed as it is, before anything else (`_resume`).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from ...clients import custody_store as store, preservica_http
from ...core import ocfl
from ...core.errors import FixityFailure as FixityFailure
from ...pipeline.contract import ActionError

USER = {"name": "preservica-webhooks-azure custody", "address": "https://ocfl.io/1.1/spec/#inventory"}
REPRESENTATION = "Preservation"   # RepresentationType.PRESERVATION.value (pyPreservica common.py)


@dataclass
class Result:
    version: str
    changed: bool
    copied_bytes: int = 0
    read_bytes: int = 0
    files: int = 0
    new_files: list[str] = field(default_factory=list)
    resumed: str = ""          # the version a stopped run left that this run committed
    gone: bool = False         # the asset was deleted in Preservica (after `resumed` was committed)


def converge(api, root, ref: str, limit: int, created: str, message: str,
             check: Callable[..., None] = lambda force=False: None, made: Callable[[], None] = lambda: None) -> Result:
    """Bring the object of asset `ref` in the storage root `root` (a ContainerClient) up to date, under the
    asset's lease (`check(force=False)`: renewed when due; raises when it is lost). `made` is called once the
    object's v1 is committed (this run's, or a stopped run's it resumed), whatever happens after."""
    object_id = _object_id(ref)
    prefix = ocfl.object_root(object_id)
    inventory, etag = _inventory(root, prefix, object_id)
    if inventory is None:
        store.ensure(root)
    before = inventory
    inventory, etag = _resume(root, prefix, object_id, inventory, etag, check)
    resumed = inventory["head"] if inventory is not before else ""
    if resumed == "v1":
        made()
    head = ocfl.version_number(inventory["head"]) if inventory else 0
    next_version = ocfl.version_name(head + 1)

    try:
        asset = api.asset(ref)
    except Exception as exc:   # deleted since the stopped run: its version is committed all the same
        if resumed and isinstance(preservica_http.classify(exc), preservica_http.NotFound):
            return Result(resumed, True, resumed=resumed, gone=True)
        raise
    metadata = _metadata(api, asset)
    state = {path: ocfl.digest_bytes(data) for path, data in metadata.items()}
    writers, fixity, read = [], {}, 0
    for logical, bitstream in bitstreams(api, asset):
        recorded = _recorded(bitstream)
        known = {ocfl.known_fixity(inventory, a, v) for a, v in recorded.items()}
        if recorded and len(known) == 1 and None not in known:   # every digest Preservica has is one we hold
            state[logical] = known.pop()
            continue
        check()
        try:
            writer = _stream(api, root, f"{prefix}/{next_version}/{ocfl.CONTENT}/{logical}", bitstream, recorded,
                             limit - read, check)
        except FixityFailure as exc:   # the event page and `hookops events` show which version the copy kept
            kept = f"the copy stays at {inventory['head']}" if inventory else "no copy yet"
            raise FixityFailure(f"{exc}; {kept}") from None
        read += writer.size
        digest = writer.digests()[ocfl.DIGEST]
        state[logical] = digest
        for algo, value in recorded.items():
            fixity.setdefault(algo, {})[value] = digest
        if digest not in (inventory or {}).get("manifest", {}) and all(w[1] != digest for w in writers):
            writers.append((logical, digest, writer))

    if inventory and state == ocfl.head_state(inventory):
        check()   # the lease still ours before the sidecar's write, as before every write
        _mend_sidecar(root, prefix, inventory)
        return Result(inventory["head"], bool(resumed), 0, read, len(state), resumed=resumed)
    new_content = {digest: logical for logical, digest, _ in writers}   # where each new digest is stored
    for logical in sorted(metadata):
        if state[logical] not in (inventory or {}).get("manifest", {}) and state[logical] not in new_content:
            new_content[state[logical]] = logical
    copied = 0
    for _, _, writer in writers:
        check()
        writer.commit()
        copied += writer.size
    for logical, data in metadata.items():
        if new_content.get(state[logical]) == logical:
            check()
            store.put(root, f"{prefix}/{next_version}/{ocfl.CONTENT}/{logical}", data)
            copied += len(data)
    new_inventory = ocfl.new_version(inventory, object_id, state, new_content, fixity, created, message, USER)
    check(force=True)   # the lease is ours for a whole LEASE_SECONDS from here: the inventories go in one stretch
    data = ocfl.serialise(new_inventory)
    store.put(root, f"{prefix}/{next_version}/{ocfl.INVENTORY}", data, create=True, content_type="application/json")
    _commit(root, prefix, next_version, data, etag, first=inventory is None)
    if inventory is None:
        made()
    return Result(next_version, True, copied, read, len(state), sorted(new_content.values()), resumed)


def _object_id(ref: str) -> str:
    from ...clients.custody_config import object_id
    return object_id(ref)


def _inventory(root, prefix: str, object_id: str) -> tuple[dict | None, str | None]:
    data, etag = store.read(root, f"{prefix}/{ocfl.INVENTORY}", ocfl.MAX_INVENTORY_BYTES)
    if data is None:
        return None, None
    try:
        return ocfl.parse(data, object_id), etag
    except ocfl.InventoryError as exc:   # never written over: an operator looks first
        raise ActionError(f"the custody object's inventory is not usable ({exc}); nothing written") from None


def _metadata(api, asset) -> dict[str, bytes]:
    """logical path -> bytes of the asset's XIP metadata, as the Entity API gives it."""
    base = f"{api.protocol}://{api.server}/api/entity/{asset.path}/{asset.reference}"
    files = {"metadata/entity.xml": _document(api, base),
             "metadata/identifiers.xml": _document(api, f"{base}/identifiers")}
    for url, _schema in sorted(asset.metadata.items()):   # Entity.metadata: fragment URL -> schema
        name = ocfl.safe_segment(url.rstrip("/").rsplit("/", 1)[-1])
        files[f"metadata/fragments/{name}.xml"] = _document(api, url)
    return files


def _document(api, url: str) -> bytes:
    root = preservica_http.get_xml(api, url)   # bounded, DTD refused, on PRESERVICA_SERVER only
    for child in list(root):
        if child.tag.endswith("}AdditionalInformation"):
            root.remove(child)
    return ET.tostring(root, encoding="utf-8")


def bitstreams(api, asset):
    """(logical path, Bitstream) of every generation's bitstreams in the Preservation representations."""
    from ...clients import preservica
    seen: set[str] = set()
    for f in preservica.files(api, asset, (REPRESENTATION,), active_only=False):
        bs = f.bitstream
        logical = (f"{REPRESENTATION.lower()}/{ocfl.safe_segment(f.content_object)}/g{bs.gen_index}/"
                   f"b{bs.bs_index}/{ocfl.safe_segment(bs.filename)}")
        if logical not in seen:
            seen.add(logical)
            yield logical, bs


def _recorded(bitstream) -> dict[str, str]:
    """Preservica's fixity for a bitstream by OCFL algorithm name; ActionError for one we cannot compute
    (its copy could not be checked)."""
    out = {}
    for name, value in (bitstream.fixity or {}).items():
        algo = ocfl.algorithm(name)
        if algo is None:
            raise ActionError(f"Preservica records fixity with {name!r}, which the custody copy cannot check")
        out[algo] = (value or "").strip().lower()
    return out


def _stream(api, root, path: str, bitstream, recorded: dict[str, str], budget: int, check) -> store.BlockWriter:
    if bitstream.length is not None and bitstream.length > budget:
        raise preservica_http.TooLarge(budget)
    writer = store.BlockWriter(root, path, tuple({ocfl.DIGEST, *recorded}), check)
    preservica_http.download(api, bitstream.content_url, writer, budget)
    digests = writer.digests()
    wrong = sorted(a for a, v in recorded.items() if digests[a] != v)
    name = ocfl.safe_segment(bitstream.filename)
    if bitstream.length is not None and writer.size != bitstream.length:
        raise FixityFailure(f"fixity failure: {name} has {writer.size} bytes, Preservica records {bitstream.length}")
    if wrong:
        raise FixityFailure(f"fixity failure: {name}: {', '.join(wrong)} of the bytes Preservica sent differ "
                            f"from the values it records; nothing written")
    return writer


def _resume(root, prefix: str, object_id: str, inventory: dict | None, etag: str | None, check):
    """(inventory, etag) after committing the next version if a stopped run wrote it whole: its inventory is
    written after every file of it, so its content is as it says (one read when there is none, as usual).
    One that does not extend the object by that version is left for an operator (ActionError): the storage
    is WORM, and nothing is written over it."""
    head = ocfl.version_number(inventory["head"]) if inventory else 0
    name = ocfl.version_name(head + 1)
    data, _ = store.read(root, f"{prefix}/{name}/{ocfl.INVENTORY}", ocfl.MAX_INVENTORY_BYTES)
    if data is None:
        return inventory, etag
    unusable = f"the custody object's uncommitted {name} (a stopped run's) has an inventory that"
    try:
        found = ocfl.parse(data, object_id)
    except ocfl.InventoryError as exc:
        raise ActionError(f"{unusable} is not usable ({exc}); nothing written") from None
    if not _extends(found, inventory, name):
        raise ActionError(f"{unusable} does not extend the object's; nothing written")
    check(force=True)
    return found, _commit(root, prefix, name, data, etag, first=inventory is None)


def _extends(found: dict, inventory: dict | None, name: str) -> bool:
    """Whether `found` is `inventory` and version `name` more, as ocfl.new_version makes it: the same versions
    before it, the same manifest and fixity entries, and new content only under `name`/."""
    head = ocfl.version_number(name) - 1
    old = inventory or {"versions": {}, "manifest": {}}
    if found["head"] != name or len(found["versions"]) != head + 1 \
            or any(found["versions"].get(v) != old["versions"][v] for v in old["versions"]):
        return False
    if any(found["manifest"].get(d) != paths for d, paths in old["manifest"].items()):
        return False
    new_paths = [p for d, paths in found["manifest"].items() if d not in old["manifest"] for p in paths]
    if any(not p.startswith(f"{name}/{ocfl.CONTENT}/") for p in new_paths):
        return False
    for algo, values in old.get("fixity", {}).items():
        for value, paths in values.items():
            if found.get("fixity", {}).get(algo, {}).get(value, [])[:len(paths)] != paths:
                return False
    return True


def _commit(root, prefix: str, version: str, data: bytes, etag: str | None, first: bool) -> str:
    """Make `data`, the inventory already in `version`'s folder, the object's: its new ETag."""
    store.put(root, f"{prefix}/{version}/{ocfl.SIDECAR}", ocfl.sidecar(data), content_type="text/plain")
    if first:
        _ensure_root(root)
        store.put(root, f"{prefix}/{ocfl.OBJECT_DECLARATION}", ocfl.OBJECT_DECLARATION_TEXT.encode(),
                  content_type="text/plain")
    new = store.put(root, f"{prefix}/{ocfl.INVENTORY}", data, etag=etag, create=first, content_type="application/json")
    store.put(root, f"{prefix}/{ocfl.SIDECAR}", ocfl.sidecar(data), content_type="text/plain")
    return new


def _mend_sidecar(root, prefix: str, inventory: dict) -> None:
    """A run that stopped between the inventory and its sidecar left them apart: the sidecar follows."""
    data, _ = store.read(root, f"{prefix}/{ocfl.INVENTORY}", ocfl.MAX_INVENTORY_BYTES)
    side, _ = store.read(root, f"{prefix}/{ocfl.SIDECAR}", 1024)
    if data is not None and side != ocfl.sidecar(data):
        store.put(root, f"{prefix}/{ocfl.SIDECAR}", ocfl.sidecar(data), content_type="text/plain")


def _ensure_root(root) -> None:
    """The storage root's declaration, layout and extension config, written once."""
    if store.exists(root, ocfl.ROOT_DECLARATION):
        return
    for path, data in ocfl.root_files().items():
        try:
            store.put(root, path, data, create=True)
        except store.Conflict:
            pass   # another writer made it first: the same bytes
