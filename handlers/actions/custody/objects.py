"""Reading custody objects back: check one against its inventory (the audit, `hookops custody verify`) and
restore a version's files to a folder (`hookops custody restore`). An inventory read from storage is
untrusted (handlers.core.ocfl.parse): a path in it never leaves the folder it is restored to."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...clients import custody_config as config, custody_store as store
from ...core import ocfl
from ...core.errors import RestoreError as RestoreError


@dataclass
class Check:
    """One object's audit: content files read back, with those whose bytes differ and those not there."""
    prefix: str
    head: str = ""
    files: int = 0
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problem: str = ""   # the inventory itself: absent, unusable, or not what its sidecar says
    compared: bool = False   # with Preservica's current fixity (the audit)
    not_preservicas: list[str] = field(default_factory=list)   # stored bytes that differ from Preservica's fixity now

    @property
    def state(self) -> str:
        if self.missing or self.problem == "missing":
            return "missing"
        return "mismatched" if self.mismatched or self.not_preservicas or self.problem else "ok"


def prefix_of(ref: str) -> str:
    return ocfl.object_root(config.object_id(ref))


def load(root, prefix: str, object_id: str | None = None) -> tuple[ocfl.Inventory | None, str]:
    """(inventory, problem): the object's inventory checked against its sidecar and parsed; None and why
    when it cannot be used."""
    data, _ = store.read(root, f"{prefix}/{ocfl.INVENTORY}", ocfl.MAX_INVENTORY_BYTES)
    if data is None:
        return None, "missing"
    side, _ = store.read(root, f"{prefix}/{ocfl.SIDECAR}", 1024)
    if side is None or side.split()[:1] != ocfl.sidecar(data).split()[:1]:   # spec 3.5.6: digest, whitespace, name
        return None, "the inventory does not match its sidecar digest"
    try:
        inv = ocfl.parse(data, object_id)
    except ocfl.InventoryError as exc:
        return None, f"unusable inventory: {exc}"
    if ocfl.object_root(str(inv.get("id"))) != prefix:   # the audit asks Preservica about the id it holds
        return None, "unusable inventory: its id is of an object stored elsewhere"
    return inv, ""


Current = Callable[[str], "dict[str, dict[str, str]] | None"]


def check(root, prefix: str, object_id: str | None = None, current: Current | None = None) -> Check:
    """Every content file of the object read back and its sha512 (and each fixity value the inventory
    records for it) compared with the inventory; with `current` (object id -> Preservica's fixity now by
    logical path, None when it has none), the head's bitstreams compared with that too, in the same read."""
    result = Check(prefix)
    inv, result.problem = load(root, prefix, object_id)
    if inv is None:
        return result
    result.head = inv["head"]
    fixity = _fixity_by_path(inv)
    now = current(inv["id"]) if current else None
    theirs = _by_content_path(inv, now) if now is not None else {}
    result.compared = now is not None
    for digest, paths in sorted(inv["manifest"].items()):
        for path in paths:
            result.files += 1
            expected = {ocfl.DIGEST: digest, **fixity.get(path, {})}
            got = _digests(root, f"{prefix}/{path}", tuple({*expected, *(a for a, _ in theirs.get(path, ()))}))
            if got is None:
                result.missing.append(path)
                continue
            if any(got[a] != v for a, v in expected.items()):
                result.mismatched.append(path)
            if any(got[a] != v for a, v in theirs.get(path, ())):
                result.not_preservicas.append(path)
    return result


def current_fixity(api, ref: str) -> dict[str, dict[str, str]]:
    """Preservica's fixity now for each bitstream the action keeps of asset `ref` (its logical path ->
    algorithm -> value), read as the action reads it; algorithms the copy cannot compute are left out."""
    from .copy import bitstreams
    out = {}
    for logical, bitstream in bitstreams(api, api.asset(ref)):
        named = {ocfl.algorithm(n): (v or "").strip().lower() for n, v in (bitstream.fixity or {}).items()}
        out[logical] = {a: v for a, v in named.items() if a}
    return out


def _by_content_path(inv: ocfl.Inventory, now: dict[str, dict[str, str]]) -> dict[str, set[tuple[str, str]]]:
    """Preservica's values for each content path that holds a bitstream of the head version. A bitstream the
    head lacks (a generation added since) is the action's to copy, not the audit's to judge."""
    state = ocfl.version_state(inv, inv["head"])
    out: dict[str, set[tuple[str, str]]] = {}
    for logical, values in now.items():
        for path in inv["manifest"].get(state.get(logical, ""), ()):
            out.setdefault(path, set()).update(values.items())
    return out


def _fixity_by_path(inv: ocfl.Inventory) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for algo, values in (inv.get("fixity") or {}).items():
        if algo in ocfl.ALGORITHMS.values() and isinstance(values, dict):
            for value, paths in values.items():
                for path in paths if isinstance(paths, list) else ():
                    out.setdefault(path, {})[algo] = str(value).lower()
    return out


def _digests(root, name: str, algorithms: tuple[str, ...]) -> dict[str, str] | None:
    from azure.core.exceptions import ResourceNotFoundError
    hashes = {a: hashlib.new(a) for a in algorithms}
    try:
        for piece in store.chunks(root, name):
            for h in hashes.values():
                h.update(piece)
    except ResourceNotFoundError:
        return None
    return {a: h.hexdigest() for a, h in hashes.items()}


def restore(root, ref: str, to: Path, version: str | None = None) -> tuple[str, list[str]]:
    """Write the files of `version` (default: the head) of asset `ref`'s object under `to`, each checked
    against its digest before it takes its name. (version, logical paths written)."""
    prefix = prefix_of(ref)
    inv, problem = load(root, prefix, config.object_id(ref))
    if inv is None:
        raise RestoreError(f"no usable custody object for {ref}: {problem}")
    version = version or inv["head"]
    try:
        state = ocfl.version_state(inv, version)
    except ocfl.InventoryError as exc:
        raise RestoreError(str(exc)) from None
    base = to.resolve()
    written = []
    for logical, digest in sorted(state.items()):
        target = (base / logical).resolve()
        if base not in target.parents:   # parse() refused such paths already: a second fence
            raise RestoreError(f"refused: {logical!r} would be written outside {base}")
        _restore_file(root, f"{prefix}/{inv['manifest'][digest][0]}", target, digest)
        written.append(logical)
    return version, written


def _restore_file(root, name: str, target: Path, digest: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    h = hashlib.sha512()
    try:
        with open(partial, "xb") as out:   # never through a file or link already there
            for piece in store.chunks(root, name):
                h.update(piece)
                out.write(piece)
        if h.hexdigest() != digest:
            raise RestoreError(f"{name}: the stored bytes do not match the inventory's digest; not restored")
        os.replace(partial, target)
    except ResourceNotFoundError:
        raise RestoreError(f"{name} is missing from the custody copy") from None
    finally:
        if partial.exists():
            partial.unlink()
