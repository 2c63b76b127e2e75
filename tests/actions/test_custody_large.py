"""Memory stays flat while `custody` copies a 2 GiB bitstream: the real action through the runner, real
pyPreservica against the Preservica double (which generates the bytes as it sends them and hashes its fixity
from the same pieces), real blob clients against an Azurite of its own that stores to a temporary folder
removed at the end. A small bitstream's copy is measured in the same test: the large one's peak is held to it.
The large copy takes about a minute on a shared 2-core machine (docs/development.md)."""
from __future__ import annotations

import shutil

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.clients import custody_config as config, journal, shared
from handlers.clients.custody_store import BLOCK
from handlers.core import ocfl as layout
from hookops import azurite
from hookops.doubles.preservica.streamed import streamed_digest
from tests.support.actions import ASSET, OTHER
from tests.support.jobs import run_traced

LARGE = 2 * 1024 ** 3    # the 2 GB
SMALL = 32 * 1024 ** 2   # 8 blocks: past the double's MAX_CONTENT_BYTES, so streamed as generated too
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]   # a hang guard, above the suite's 300 s


@pytest.fixture
def own_azurite(env, tmp_path, monkeypatch):
    """An Azurite for this test alone, its data in a folder removed afterwards (2 GiB would otherwise stay in
    the session Azurite's folder, which pytest keeps)."""
    location = tmp_path / "azurite-large"
    location.mkdir()
    free = shutil.disk_usage(location).free
    if free < LARGE + SMALL + 2 * 1024 ** 3:
        pytest.skip(f"{free / 1024 ** 3:.1f} GiB free where Azurite stores: the 2 GiB copy needs about 4")
    try:
        with azurite.start_on_free_ports(location) as server:
            monkeypatch.setenv("AzureWebJobsStorage", server.connection_string)
            shared.reset_all()   # the app's storage clients are built again, on this Azurite
            yield server
    finally:
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture
def md5_blocks(monkeypatch):
    """Each block the app stages carries its Content-MD5 (azure-storage-blob's `validate_content=True`), so that
    Azurite checks an MD5 with node's crypto instead of computing the CRC64 it returns for a Put Block without
    one, byte by byte in JavaScript (azurite 3.37 BlockBlobHandler.stageBlock, CRC64Hash in
    common/utils/utils.js): over half of this test's time before. The app's process only gains an MD5 of each
    block (no copy: azure-storage-blob 12.31 _shared/policies.py StorageContentValidation hashes the request's
    bytes in place, _shared/validation.py calculate_content_md5), and the bytes, blocks and commit are the app's
    own."""
    from azure.storage.blob import BlobClient
    real = BlobClient.stage_block

    def stage_block(self, block_id, data, length=None, **kwargs):
        return real(self, block_id, data, length, validate_content=True, **kwargs)
    monkeypatch.setattr(BlobClient, "stage_block", stage_block)


def copy(pres, jobs, ref: str, name: str, size: int) -> tuple[int, dict]:
    """Copy a `size`-byte bitstream of asset `ref` with tracemalloc on; (peak traced bytes, the outcome's extra)."""
    pres.add_asset(ref, f"{name}, {size} bytes", bitstreams=[(name, size)])
    [raw] = jobs("custody", refs=[ref])
    outcome, peak = run_traced("custody", raw)
    assert (outcome.state, outcome.extra["custody_version"]) == (journal.DONE, "v1")
    return peak, outcome.extra


def stored(conn: str, ref: str, name: str) -> tuple[str, int]:
    """(sha512 the inventory records, size of the blob) of the object's one bitstream `name`."""
    root = layout.object_root(config.object_id(ref))
    client = BlobServiceClient.from_connection_string(conn).get_container_client("custody")
    inv = layout.parse(client.download_blob(f"{root}/inventory.json").readall(), config.object_id(ref))
    [(path, digest)] = [(p, d) for p, d in layout.version_state(inv, "v1").items() if p.endswith("/" + name)]
    return digest, client.get_blob_client(f"{root}/v1/content/{path}").get_blob_properties().size


def test_memory_stays_flat_while_a_2_gib_bitstream_is_copied(own_azurite, md5_blocks, pres, jobs):
    # Preservica's SHA512 for each bitstream: the action checks it on the way in (a difference fails the event)
    # and it is the inventory's digest, so the bytes are hashed once; the double computes it apart, from the pieces
    # it sends. (SHA512 as pyPreservica spells it: common.py Sha512FixityCallBack.)
    pres.fixity_algorithms = ("SHA512",)
    small_peak, _ = copy(pres, jobs, ASSET, "small.tif", SMALL)
    large_peak, extra = copy(pres, jobs, OTHER, "large.tif", LARGE)
    conn = own_azurite.connection_string
    assert extra["custody_copied_bytes"] >= LARGE
    assert stored(conn, OTHER, "large.tif") == (streamed_digest("large.tif", LARGE, "sha512"), LARGE)
    assert stored(conn, ASSET, "small.tif") == (streamed_digest("small.tif", SMALL, "sha512"), SMALL)
    # 64 times the bytes, the same memory: at most half a block more than the small copy's peak, and a few
    # blocks in all (the block being filled, the copy staged from it, and the pieces in flight).
    print(f"peak traced memory: {small_peak / 2 ** 20:.1f} MiB for 32 MiB, {large_peak / 2 ** 20:.1f} MiB for 2 GiB")
    assert large_peak <= small_peak + BLOCK // 2, f"peak {large_peak} bytes for 2 GiB, {small_peak} for 32 MiB"
    assert large_peak < 4 * BLOCK, f"peak {large_peak} bytes for a 2 GiB bitstream"


def test_a_byte_count_past_int32_is_journaled(env):
    """azure-data-tables refuses a Python int of 2**31 or more (it writes Edm.Int32): the outcome of a copy of
    more than 2 GiB keeps its byte count as decimal text, read back whole."""
    book = journal.default()
    book.set_state("00000001", "large", "custody", journal.DONE, extra={"custody_copied_bytes": LARGE + 506,
                                                                       "custody_files": 3})
    row = book.get("00000001", "large")
    assert (row["custody_copied_bytes"], row["custody_files"]) == (str(LARGE + 506), 3)
