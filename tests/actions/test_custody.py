"""The `custody` action through the real runner: real pyPreservica against the Preservica double, real blob
clients against Azurite, and every object it writes checked by ocfl-py's validator (the vendor's code, not
our reading of the spec)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.actions.custody.copy import FixityFailure
from handlers.clients import custody_config as config, journal
from handlers.core import ocfl as layout
from hookops.doubles.preservica.model import bitstream_bytes
from hookops.doubles.preservica.streamed import chunks
from tests.support import ocfl_validator
from tests.support.actions import ASSET
from tests.support.jobs import row, run_one, run_traced

TIF = "letter-p1.tif"   # the asset's preservation file (1 MiB); letter.pdf is its access file
ROOT = layout.object_root(config.object_id(ASSET))


@pytest.fixture
def custody(env, pres):
    pres.fixity_algorithms = ("SHA1", "MD5", "SHA-256")   # three, in the spellings Preservica uses
    return env


def container(conn: str):
    return BlobServiceClient.from_connection_string(conn).get_container_client("custody")


def names(conn: str) -> set[str]:
    return {b.name for b in container(conn).list_blobs()}


def download(conn: str, to: Path) -> Path:
    for name in names(conn):
        target = to / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(container(conn).download_blob(name).readall())
    return to


def valid(conn: str, tmp_path: Path, tag: str = "root") -> bool:
    """ocfl-py validates every object of the storage root as downloaded (structure, inventories, sidecars,
    every content digest and fixity value). Objects one by one: ocfl-py 2.1's storage root validation knows
    no 0004 layout (its layout_registry.py registers 0002, 0003 and its own), E071 for ours, so the layout is
    checked against the extension's own example in tests/unit/test_ocfl.py."""
    root = download(conn, tmp_path / tag)
    objects = [p.parent for p in root.rglob(layout.OBJECT_DECLARATION)]
    assert objects
    for ok, status in ocfl_validator.validate(objects):
        assert ok, status
        assert "[W" not in status, status   # not even a warning
    return True


def inventory(conn: str) -> dict:
    return json.loads(container(conn).download_blob(f"{ROOT}/inventory.json").readall())


def content_reads(pres) -> int:
    return sum(1 for m, p in pres.requests if m == "GET" and p.endswith("/content"))


def test_a_new_asset_becomes_a_valid_ocfl_object_with_preservicas_fixity(custody, pres, jobs, tmp_path):
    [raw] = jobs("custody")
    outcome = run_one("custody", raw)
    assert (outcome.state, outcome.extra["custody_version"]) == (journal.DONE, "v1")
    conn = custody.connection_string
    assert valid(conn, tmp_path)
    inv = inventory(conn)
    state = layout.version_state(inv, "v1")
    [tif] = [p for p in state if p.endswith("/" + TIF)]
    assert tif.startswith("preservation/") and not any(p.endswith("letter.pdf") for p in state)  # access: not kept
    assert {"metadata/entity.xml", "metadata/identifiers.xml"} <= set(state)
    body = bitstream_bytes(TIF, 1_048_576)
    assert state[tif] == hashlib.sha512(body).hexdigest()
    assert container(conn).download_blob(f"{ROOT}/v1/content/{tif}").readall() == body
    for algo in ("sha1", "md5", "sha256"):
        assert inv["fixity"][algo] == {hashlib.new(algo, body).hexdigest(): [f"v1/content/{tif}"]}
    entity = container(conn).download_blob(f"{ROOT}/v1/content/metadata/entity.xml").readall()
    assert b"Caf\xc3\xa9 on the harbour" in entity and b"AdditionalInformation" not in entity


def test_the_storage_root_follows_the_hashed_n_tuple_layout(custody, jobs):
    run_one("custody", jobs("custody")[0])
    client = container(custody.connection_string)
    assert client.download_blob("0=ocfl_1.1").readall() == b"ocfl_1.1\n"
    layout_doc = json.loads(client.download_blob("ocfl_layout.json").readall())
    assert layout_doc["extension"] == "0004-hashed-n-tuple-storage-layout"
    digest = hashlib.sha256(f"preservica:io:{ASSET}".encode()).hexdigest()
    assert ROOT == f"{digest[:3]}/{digest[3:6]}/{digest[6:9]}/{digest}"
    assert client.download_blob(f"{ROOT}/0=ocfl_object_1.1").readall() == b"ocfl_object_1.1\n"


def test_a_repeated_event_writes_nothing(custody, pres, jobs):
    [raw] = jobs("custody")
    run_one("custody", raw)
    before, reads = names(custody.connection_string), content_reads(pres)
    inv_before = inventory(custody.connection_string)
    [again] = jobs("custody")
    outcome = run_one("custody", again)
    assert (outcome.state, outcome.reason) == (journal.DONE, "no change (v1)")
    assert names(custody.connection_string) == before and inventory(custody.connection_string) == inv_before
    assert content_reads(pres) == reads   # Preservica's fixity matched what the copy holds: not read again


def test_a_metadata_change_is_a_small_second_version(custody, pres, jobs, tmp_path):
    run_one("custody", jobs("custody")[0])
    reads = content_reads(pres)
    pres.set_security_tag(ASSET, "closed")
    [raw] = jobs("custody", trigger="CHANGED_SECURITY_DESCRIPTOR")
    outcome = run_one("custody", raw)
    assert outcome.extra["custody_version"] == "v2"
    conn = custody.connection_string
    assert sorted(n for n in names(conn) if "/v2/content/" in n) == [f"{ROOT}/v2/content/metadata/entity.xml"]
    assert content_reads(pres) == reads
    inv = inventory(conn)
    assert layout.version_state(inv, "v2").keys() == layout.version_state(inv, "v1").keys()
    assert valid(conn, tmp_path)


def test_a_fixity_mismatch_fails_the_event_and_commits_nothing(custody, pres, jobs):
    pres.set_fixity(ASSET, TIF, "SHA1", "0" * 40)
    [raw] = jobs("custody")
    with pytest.raises(FixityFailure):
        run_one("custody", raw)
    recorded = row(raw)
    assert journal.state_of(recorded, "custody") == journal.FAILED and "fixity failure" in json.dumps(recorded)
    assert not any(n.startswith(ROOT) for n in names(custody.connection_string))


def test_a_fixity_mismatch_on_a_later_version_leaves_the_inventory_untouched(custody, pres, jobs):
    run_one("custody", jobs("custody")[0])
    conn = custody.connection_string
    before, inv_before = names(conn), container(conn).download_blob(f"{ROOT}/inventory.json").readall()
    pres.set_security_tag(ASSET, "closed")
    pres.set_fixity(ASSET, TIF, "MD5", "f" * 32)   # no longer what the copy holds: read again, and it differs
    [raw] = jobs("custody", trigger="CHANGED_SECURITY_DESCRIPTOR")
    with pytest.raises(FixityFailure):
        run_one("custody", raw)
    assert names(conn) == before
    assert container(conn).download_blob(f"{ROOT}/inventory.json").readall() == inv_before


def test_a_bitstream_larger_than_the_bound_fails_before_anything_is_written(custody, jobs, monkeypatch):
    monkeypatch.setenv("CUSTODY_MAX_BYTES", "1000")
    [raw] = jobs("custody")
    with pytest.raises(Exception, match="more than 1000 bytes"):
        run_one("custody", raw)
    assert not any(n.startswith(ROOT) for n in names(custody.connection_string))


def test_memory_stays_flat_while_a_large_bitstream_is_copied(custody, pres, jobs, tmp_path):
    size = 96 * 1024 * 1024   # streamed by the double as generated, never held whole by either side
    pres.add_asset(ASSET, "Large", bitstreams=[("scan.tif", size)])
    [raw] = jobs("custody")
    outcome, peak = run_traced("custody", raw)
    assert outcome.state == journal.DONE
    assert peak < size // 4, f"peak {peak} bytes for a {size}-byte bitstream"
    inv = inventory(custody.connection_string)
    [(path, digest)] = [(p, d) for p, d in layout.version_state(inv, "v1").items() if p.endswith("scan.tif")]
    expected = hashlib.sha512()
    for piece in chunks("scan.tif", size):   # the bytes the double sent, generated again
        expected.update(piece)
    assert digest == expected.hexdigest()
    blob = container(custody.connection_string).get_blob_client(f"{ROOT}/v1/content/{path}")
    assert blob.get_blob_properties().size == size


def test_a_hostile_file_name_from_preservica_stays_one_path_segment(custody, pres, jobs, tmp_path):
    pres.add_asset(ASSET, "Hostile", bitstreams=[("../../evil\n.tif", 64), ("..", 32)])
    run_one("custody", jobs("custody")[0])
    state = layout.version_state(inventory(custody.connection_string), "v1")
    names_kept = sorted(p.rsplit("/", 1)[-1] for p in state if p.startswith("preservation/"))
    assert names_kept == ["..%2F..%2Fevil%0A.tif", "file"]
    assert valid(custody.connection_string, tmp_path)
