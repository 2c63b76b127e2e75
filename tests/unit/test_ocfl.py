"""handlers.core.ocfl: the storage layout extension's own example, inventories built version by version, and
an inventory read back from storage treated as untrusted."""
from __future__ import annotations

import hashlib
import json

import pytest

from handlers.core import ocfl

A, B, C = (hashlib.sha512(x).hexdigest() for x in (b"a", b"b", b"c"))
USER = {"name": "test"}


def test_object_root_is_the_extensions_own_example():
    # 0004-hashed-n-tuple-storage-layout, "Example 1" (default configuration): id "object-01".
    assert ocfl.object_root("object-01") == \
        "3c0/ff4/240/3c0ff4240c1e116dba14c7627f2319b58aa3d77606d0d90dfc6161608ac987d4"


def test_preservica_algorithm_names_map_to_ocfl_ones():
    assert [ocfl.algorithm(n) for n in ("SHA1", "SHA-256", "sha512", "MD5", "CRC32", "")] == \
        ["sha1", "sha256", "sha512", "md5", None, None]


@pytest.mark.parametrize("name, expected", [("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"), ("..", "file"),
                                            (".", "file"), ("", "file"), ("a\\b", "a%5Cb"), ("x\ny", "x%0Ay"),
                                            ("100%.tif", "100%25.tif"), ("Café.tif", "Café.tif")])
def test_a_name_from_preservica_becomes_one_safe_segment(name, expected):
    assert ocfl.safe_segment(name) == expected


def test_versions_reference_unchanged_content_by_digest():
    v1 = ocfl.new_version(None, "id", {"m/a.xml": A, "p/b.tif": B}, {A: "m/a.xml", B: "p/b.tif"},
                          {"sha1": {"b1": B}}, "2026-01-01T00:00:00Z", "first", USER)
    v2 = ocfl.new_version(v1, "id", {"m/a.xml": C, "p/b.tif": B}, {C: "m/a.xml"}, {}, "2026-01-02T00:00:00Z",
                          "second", USER)
    assert v2["head"] == "v2" and v1["head"] == "v1"   # the previous inventory is not changed in place
    assert v2["manifest"] == {A: ["v1/content/m/a.xml"], B: ["v1/content/p/b.tif"], C: ["v2/content/m/a.xml"]}
    assert ocfl.version_state(v2, "v2") == {"m/a.xml": C, "p/b.tif": B}
    assert ocfl.known_fixity(v2, "sha1", "B1") == B and ocfl.known_fixity(v2, "sha1", "zz") is None
    assert ocfl.parse(ocfl.serialise(v2), "id") == v2


def test_a_state_without_content_is_refused():
    with pytest.raises(ocfl.InventoryError):
        ocfl.new_version(None, "id", {"a": A}, {}, {}, "t", "m", USER)


def test_the_sidecar_is_the_inventorys_digest():
    data = b'{"x": 1}\n'
    assert ocfl.sidecar(data) == f"{hashlib.sha512(data).hexdigest()} inventory.json\n".encode()


def _inventory(**change) -> bytes:
    inv = ocfl.new_version(None, "id", {"a.txt": A}, {A: "a.txt"}, {}, "t", "m", USER)
    inv.update(change)
    return json.dumps(inv).encode()


@pytest.mark.parametrize("change", [
    {"manifest": {A: ["v1/content/../../../etc/passwd"]}},
    {"manifest": {A: ["/etc/passwd"]}},
    {"manifest": {A: ["v1/other/a.txt"]}},
    {"manifest": {A: ["v2/content/a.txt"]}},
    {"manifest": {A: ["v1/content/a\\..\\b"]}},
    {"manifest": {"ABC": ["v1/content/a.txt"]}},
    {"versions": {"v1": {"state": {A: ["../outside"]}}}},
    {"versions": {"v1": {"state": {A: ["/abs"]}}}},
    {"versions": {"v1": {"state": {A: ["a//b"]}}}},
    {"versions": {"v1": {"state": {B: ["a.txt"]}}}},
    {"versions": {"v2": {"state": {A: ["a.txt"]}}}, "head": "v2"},
    {"head": "v3"},
    {"digestAlgorithm": "md5"},
    {"id": "another"},
])
def test_an_inventory_that_could_lead_a_restore_astray_is_refused(change):
    with pytest.raises(ocfl.InventoryError):
        ocfl.parse(_inventory(**change), "id")


def test_an_inventory_that_is_not_json_or_too_large_is_refused():
    with pytest.raises(ocfl.InventoryError):
        ocfl.parse(b"{not json", "id")
    with pytest.raises(ocfl.InventoryError):
        ocfl.parse(b" " * (ocfl.MAX_INVENTORY_BYTES + 1), "id")
