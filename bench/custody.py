"""Row 11: how fast the `custody` action copies a bitstream, against a raw blob upload of the same bytes from the
same Preservica double, measured in one run.

In this process, on the benchmark's Azurite, with the Preservica double in this process too (it generates the
bytes as it sends them; both sides share its cost and this process's GIL alike). Each run, in turn:
- raw: one GET of the bitstream's content through the app's Preservica boundary (`preservica_http.get`, streamed,
  as the action reads it) handed to azure-storage-blob's `upload_blob` with the SDK's defaults (its own
  chunking; no digest, no OCFL);
- custody: `copy.converge` of a new asset holding one bitstream of the same name and size (so the same bytes):
  the action's whole work for it (the asset, its metadata and files read from Preservica, the bitstream streamed
  into 4 MiB blocks with its sha512 and Preservica's SHA1 computed and compared on the way, the inventory
  written).
MB/s is the bitstream's bytes (10^6) over each side's wall time; the ratio is custody's over raw's within a run,
then the median over runs.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from contextlib import contextmanager

from bench.common import PASSWORD, TENANT, USER, median, ref

FILENAME = "master.tif"
FIRST = 900_000   # asset refs ref(FIRST + run): apart from the other rows' ref(0), ref(1) ...


@contextmanager
def _app_env(storage: str, server: str):
    """The app's settings for the double and the Azurite, put back afterwards."""
    from handlers.clients import preservica, shared
    saved = dict(os.environ)
    os.environ.update({"AzureWebJobsStorage": storage, "PRESERVICA_SERVER": server, "PRESERVICA_USERNAME": USER,
                       "PRESERVICA_PASSWORD": PASSWORD, "PRESERVICA_TENANT": TENANT, "PRESERVICA_PROTOCOL": "http",
                       "PRESERVICA_MAX_RPS": "100000", "CUSTODY_CONTAINER": "bench-custody",
                       "CUSTODY_ACCOUNT_URL": ""})
    for name in ("KEY_VAULT_URI", "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        os.environ.pop(name, None)
    shared.reset_all()
    preservica.forget_client()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shared.reset_all()
        preservica.forget_client()


def _timed(work: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = work()
    return time.perf_counter() - t0, out


def row(storage: str, size: int, runs: int, progress=print) -> dict:
    """Measure `runs` pairs (raw, custody) of a `size`-byte bitstream; the row's figures."""
    from azure.storage.blob import BlobServiceClient

    from handlers.actions.custody import config, copy
    from handlers.clients import custody_store, preservica, preservica_http
    from handlers.clients.secrets import default as secret_source
    from hookops.doubles.preservica import PreservicaDouble

    per_run = []
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double, \
            _app_env(storage, double.server):
        root = config.storage_root()
        custody_store.ensure(root)
        raw_container = BlobServiceClient.from_connection_string(storage).get_container_client("bench-custody-raw")
        custody_store.ensure(raw_container)
        secrets = secret_source()
        # Unmeasured: the login and the storage root's one-off files (0=ocfl_1.1, the layout), on a 1-byte asset.
        double.add_asset(ref(FIRST - 1), "Custody benchmark warm-up", bitstreams=[(FILENAME, 1)])
        preservica.call(secrets, lambda api: copy.converge(api, root, ref(FIRST - 1), 2, "2026-01-01T00:00:00Z", "warm"))
        for run in range(runs):
            asset = ref(FIRST + run)
            double.add_asset(asset, f"Custody benchmark {run}", bitstreams=[(FILENAME, size)])

            def raw(api, asset=asset, run=run):
                bitstream = next(copy.bitstreams(api, api.asset(asset)))[1]
                with preservica_http.get(api, bitstream.content_url, stream=True) as resp:
                    raw_container.upload_blob(f"run-{run}/{FILENAME}",
                                              resp.iter_content(chunk_size=preservica_http.CHUNK), length=size,
                                              overwrite=True)
                return bitstream.length

            def custody(api, asset=asset, run=run):
                created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
                return copy.converge(api, root, asset, size + 1, created, f"bench run {run}")

            raw_s, length = _timed(lambda raw=raw: preservica.call(secrets, raw))
            custody_s, result = _timed(lambda custody=custody: preservica.call(secrets, custody))
            if length != size or not result.changed or result.copied_bytes < size:
                raise RuntimeError(f"run {run}: raw read {length} of {size} bytes, custody {result}")
            x = {"raw_s": raw_s, "custody_s": custody_s, "raw_mb_s": size / 1e6 / raw_s,
                 "custody_mb_s": size / 1e6 / custody_s, "version": result.version,
                 "copied_bytes": result.copied_bytes, "files": result.files}
            x["ratio"] = x["custody_mb_s"] / x["raw_mb_s"]
            per_run.append(x)
            progress(f"  run {run + 1}/{runs}: raw {x['raw_mb_s']:.0f} MB/s, custody {x['custody_mb_s']:.0f} MB/s "
                     f"({x['ratio'] * 100:.0f}%)")
        fixity = double.fixity_algorithms
    return {"size": size, "runs": runs, "per_run": per_run, "fixity": list(fixity),
            "raw_mb_s": median([x["raw_mb_s"] for x in per_run]),
            "custody_mb_s": median([x["custody_mb_s"] for x in per_run]),
            "ratio": median([x["ratio"] for x in per_run])}


def render(r: dict) -> str:
    """The table row (seven cells: the storage-floor cells are added by __main__)."""
    def f(x, digits=0):
        return f"{x:,.{digits}f}"
    each = ", ".join(f"{f(x['ratio'] * 100)}%" for x in r["per_run"])
    return (f"| 11 | Custody copy: one {f(r['size'] / 2 ** 20)} MiB bitstream from the Preservica double into an OCFL "
            f"object on Azurite (median of {r['runs']}) | {f(r['custody_mb_s'])} MB/s | raw blob upload of the same "
            f"bytes from the same double: {f(r['raw_mb_s'])} MB/s | {f(r['ratio'] * 100)}% of the raw rate | – | "
            f"Per run: {each}. Custody streams the bytes into 4 MiB staged blocks computing sha512 and Preservica's "
            f"{', '.join(r['fixity'])} on the way, compares them, then commits the block list and writes the "
            f"inventory (plus the asset's metadata documents: a few requests more); the raw side is one GET handed "
            f"to `upload_blob` with the SDK's defaults. Both in the benchmark's process with the double, one "
            f"bitstream at a time |")
