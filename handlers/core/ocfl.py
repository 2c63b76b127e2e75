"""OCFL 1.1 objects, their inventories and the storage root's layout. Pure: names, JSON and digests only.

The spec is https://ocfl.io/1.1/spec/ (sections cited as "spec 3.5.3" etc.); the storage root uses the
extension 0004-hashed-n-tuple-storage-layout (https://ocfl.github.io/extensions/0004-hashed-n-tuple-storage-layout.html)
with its default configuration. An inventory read back from storage crosses a trust boundary (anyone with
write access to the account, or a bug): `parse` checks every path and digest before restore or audit use it.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import InventoryError as InventoryError

ROOT_DECLARATION = "0=ocfl_1.1"                     # spec 4.2: the storage root's Namaste file...
ROOT_DECLARATION_TEXT = "ocfl_1.1\n"                # ...and its content
OBJECT_DECLARATION = "0=ocfl_object_1.1"            # spec 3.1
OBJECT_DECLARATION_TEXT = "ocfl_object_1.1\n"
INVENTORY = "inventory.json"                        # spec 3.5
SIDECAR = "inventory.json.sha512"                   # spec 3.5.6: named after the digestAlgorithm
INVENTORY_TYPE = "https://ocfl.io/1.1/spec/#inventory"
DIGEST = "sha512"                                   # spec 3.5.1: sha512 is the SHOULD
CONTENT = "content"                                 # spec 3.3: the default contentDirectory
LAYOUT = "0004-hashed-n-tuple-storage-layout"
LAYOUT_CONFIG: dict[str, Any] = {"extensionName": LAYOUT, "digestAlgorithm": "sha256", "tupleSize": 3, "numberOfTuples": 3,
                 "shortObjectRoot": False}          # the extension's defaults
PREFIXES = 16 ** int(LAYOUT_CONFIG["tupleSize"])   # first-level folders of the layout: the audit's unit
LAYOUT_DESCRIPTION = "Each object under the sha256 of its id: three 3-character tuples, then the whole digest."
MAX_INVENTORY_BYTES = 32 * 1024 * 1024
# Digest algorithms the spec registers (spec 3.5.1, table), by Preservica's names for them: FixityAlgorithmRef
# values "SHA1", "SHA256", "SHA512" as pyPreservica's fixity callbacks name them (common.py Sha1FixityCallBack ...),
# with or without a hyphen as its replace_generation accepts (entityAPI.py); "MD5" is inferred.
ALGORITHMS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
_VERSION = re.compile(r"v([1-9][0-9]*)")
_HEX = re.compile(r"[0-9a-f]+")


Inventory = dict[str, Any]   # an inventory as JSON gives it


def algorithm(preservica_name: str) -> str | None:
    """The OCFL (and hashlib) name of a Preservica fixity algorithm; None when it is not one we compute."""
    return ALGORITHMS.get((preservica_name or "").replace("-", "").strip().lower())


def digest_bytes(data: bytes, algo: str = DIGEST) -> str:
    return hashlib.new(algo, data).hexdigest()


# ---- storage root --------------------------------------------------------------------------------

def object_root(object_id: str) -> str:
    """The object's directory under the storage root (0004 with its default configuration)."""
    digest = hashlib.sha256(object_id.encode("utf-8")).hexdigest()
    size, count = int(LAYOUT_CONFIG["tupleSize"]), int(LAYOUT_CONFIG["numberOfTuples"])
    return "/".join([digest[i * size:(i + 1) * size] for i in range(count)] + [digest])


def root_files() -> dict[str, bytes]:
    """The storage root's own files: declaration, layout (spec 4.3: ocfl_layout.json) and the extension's config."""
    return {ROOT_DECLARATION: ROOT_DECLARATION_TEXT.encode(),
            "ocfl_layout.json": _json({"extension": LAYOUT, "description": LAYOUT_DESCRIPTION}),
            f"extensions/{LAYOUT}/config.json": _json(LAYOUT_CONFIG)}


# ---- versions and paths -----------------------------------------------------------------------------

def version_name(number: int) -> str:
    return f"v{number}"                              # spec 3.3: unpadded, consistently


def version_number(name: str) -> int:
    match = _VERSION.fullmatch(name or "")
    if not match:
        raise InventoryError(f"not a version name: {name!r}")
    return int(match[1])


def safe_segment(text: str, fallback: str = "file") -> str:
    """One path segment from a name Preservica gives (a filename, a reference): no separators, no control
    characters, never '.' or '..' or empty (spec 3.3.3: such segments are not allowed in content paths)."""
    out = "".join(c if c.isprintable() and c not in '/\\%' else f"%{ord(c):02X}" for c in (text or "").strip())
    out = out[:200]
    return fallback if out in ("", ".", "..") else out


def _path_ok(path: str) -> bool:
    return bool(path) and not path.startswith("/") and "\\" not in path and "\x00" not in path \
        and all(seg not in ("", ".", "..") for seg in path.split("/"))


# ---- inventories ----------------------------------------------------------------------------------

def new_version(previous: Inventory | None, object_id: str, state: Mapping[str, str], new_content: Mapping[str, str],
                fixity: Mapping[str, Mapping[str, str]], created: str, message: str, user: Mapping[str, str]) -> Inventory:
    """The inventory of the next version.

    state:       logical path -> sha512 of every file of the new version;
    new_content: sha512 -> logical path for the digests the manifest lacks (copied into this version's content);
    fixity:      algorithm -> {digest: sha512} for the content's other digests (Preservica's, spec 3.5.4).
    Unchanged content is referenced by its digest, never copied again (spec 3.5.2's deduplication)."""
    inv: Inventory = json.loads(json.dumps(previous)) if previous else {
        "id": object_id, "type": INVENTORY_TYPE, "digestAlgorithm": DIGEST, "manifest": {},
        "versions": {}}
    head = version_name(version_number(inv["head"]) + 1 if previous else 1)
    manifest = inv["manifest"]
    for digest, logical in sorted(new_content.items()):
        if digest not in manifest:
            manifest[digest] = [f"{head}/{CONTENT}/{logical}"]
    missing = sorted(set(state.values()) - set(manifest))
    if missing:
        raise InventoryError(f"state refers to digests with no content: {missing[:3]}")
    by_digest: dict[str, list[str]] = {}
    for logical, digest in sorted(state.items()):
        by_digest.setdefault(digest, []).append(logical)
    inv["versions"][head] = {"created": created, "state": by_digest, "message": message, "user": dict(user)}
    inv["head"] = head
    block = inv.setdefault("fixity", {})
    for algo, values in fixity.items():
        for value, sha512 in values.items():
            paths = block.setdefault(algo, {}).setdefault(value, [])
            paths += [p for p in manifest.get(sha512, ()) if p not in paths]
    if not any(block.values()):
        inv.pop("fixity")
    return inv


def head_state(inv: Inventory | None) -> dict[str, str]:
    """logical path -> sha512 of the head version ({} before the first)."""
    return version_state(inv, inv["head"]) if inv else {}


def version_state(inv: Inventory, version: str) -> dict[str, str]:
    if version not in inv["versions"]:
        raise InventoryError(f"no version {version!r}; the object has {', '.join(inv['versions'])}")
    return {path: digest for digest, paths in inv["versions"][version]["state"].items() for path in paths}


def known_fixity(inv: Inventory | None, algo: str, value: str) -> str | None:
    """The sha512 of content the inventory's fixity block records with `value` for `algo`, if any."""
    if not inv:
        return None
    paths = set(inv.get("fixity", {}).get(algo, {}).get(value.lower(), ()))
    for digest, content in inv["manifest"].items():
        if paths & set(content):
            return str(digest)
    return None


def serialise(inv: Inventory) -> bytes:
    return _json(inv)


def sidecar(inventory_bytes: bytes) -> bytes:
    return f"{digest_bytes(inventory_bytes)} {INVENTORY}\n".encode()   # spec 3.5.6


def parse(data: bytes, object_id: str | None = None) -> Inventory:
    """An inventory read from storage, checked: InventoryError when it is not one this code may act on
    (paths that could leave a directory, digests that are not hex, versions out of sequence)."""
    if len(data) > MAX_INVENTORY_BYTES:
        raise InventoryError(f"inventory larger than {MAX_INVENTORY_BYTES} bytes")
    try:
        inv = json.loads(data)
    except ValueError:
        raise InventoryError("inventory is not JSON") from None
    if not isinstance(inv, dict) or inv.get("type") != INVENTORY_TYPE or inv.get("digestAlgorithm") != DIGEST:
        raise InventoryError(f"not an OCFL 1.1 {DIGEST} inventory")
    if object_id is not None and inv.get("id") != object_id:
        raise InventoryError("inventory is for another object")
    manifest, versions = inv.get("manifest"), inv.get("versions")
    if not isinstance(manifest, dict) or not isinstance(versions, dict) or not versions:
        raise InventoryError("inventory has no manifest or versions")
    numbers = sorted(version_number(v) for v in versions)
    if numbers != list(range(1, len(numbers) + 1)) or inv.get("head") != version_name(numbers[-1]):
        raise InventoryError("versions are not v1..head")
    for digest, paths in manifest.items():
        _check_digest(digest)
        for path in _paths(paths, "manifest"):
            version, _, rest = path.partition("/")
            if version not in versions or not rest.startswith(CONTENT + "/") or not _path_ok(path):
                raise InventoryError(f"content path not allowed: {path!r}")
    for name, version in versions.items():
        state = version.get("state") if isinstance(version, dict) else None
        if not isinstance(state, dict):
            raise InventoryError(f"{name} has no state")
        for digest, paths in state.items():
            _check_digest(digest)
            if digest not in manifest:
                raise InventoryError(f"{name} refers to a digest the manifest lacks")
            for path in _paths(paths, name):
                if not _path_ok(path):
                    raise InventoryError(f"logical path not allowed: {path!r}")
    return inv


def _check_digest(digest: object) -> None:
    if not isinstance(digest, str) or len(digest) != 128 or not _HEX.fullmatch(digest):
        raise InventoryError("a digest is not a lowercase sha512")


def _paths(paths: object, where: str) -> list[str]:
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise InventoryError(f"{where}: paths must be a non-empty list of strings")
    return paths


def _json(doc: object) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
