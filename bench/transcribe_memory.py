"""Peak memory of one `transcribe` of a large file: the bitstream streamed from the Preservica double
(generated as it is sent) to a temporary file, and from there to the Speech double (spooled to disk
as it arrives), with the real pyPreservica and azure-ai-transcription clients.

    python -m bench.transcribe_memory [--mb 500]

tracemalloc's peak covers every Python allocation of the process during the action: the app's and
both doubles' (they run in this process), so it is an upper bound for the action. TRANSCRIBE_MAX_BYTES
is raised above the file for the run: the real service takes 250 MB, and beyond the limit the action
skips the file before fetching a byte, so this measures the streaming path at twice the size it ever
meets. tests/test_transcribe_memory.py runs the same measurement at 64 MiB and holds it to a bound.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path

REF = "0d9d4a4e-0000-4000-8000-00000000f001"
KEY = "bench-speech-key"


def measure(size: int, storage_connection: str) -> dict:
    """Transcribe a generated `size`-byte bitstream once; peak traced memory, what Speech got, seconds."""
    from handlers.actions import transcribe
    from handlers.clients import preservica, shared
    from handlers.pipeline.contract import Context
    from hookops.doubles.preservica import PreservicaDouble
    from hookops.doubles.preservica.streamed import chunks
    from hookops.doubles.speech import SpeechDouble

    saved, here = dict(os.environ), os.getcwd()
    try:
        with PreservicaDouble(username="u", password="p", tenant="T") as pres, SpeechDouble(key=KEY) as speech, \
                tempfile.TemporaryDirectory() as cwd:
            os.chdir(cwd)  # no stray credentials.properties for pyPreservica
            pres.add_asset(REF, "Large recording", bitstreams=[("large.wav", size, "Access")])
            os.environ.update({"AzureWebJobsStorage": storage_connection, "PRESERVICA_SERVER": pres.server,
                               "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p", "PRESERVICA_TENANT": "T",
                               "PRESERVICA_PROTOCOL": "http", "SPEECH_ENDPOINT": speech.endpoint, "SPEECH_KEY": KEY,
                               "TRANSCRIBE_MAX_BYTES": str(size + 1), "REQUESTS_CA_BUNDLE": speech.ca_bundle,
                               "NO_PROXY": "127.0.0.1,localhost"})
            os.environ.pop("KEY_VAULT_URI", None)
            shared.reset_all()
            preservica.forget_client()
            job = types.SimpleNamespace(entity_type="IO", entity_ref=REF, trigger="FULL_TEXT_INDEXED", snapshot=None,
                                        event={}, attempt=1)
            started = time.perf_counter()
            tracemalloc.start()
            try:
                outcome = transcribe.perform(job, Context())
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            seconds = time.perf_counter() - started
            expected = hashlib.sha256()
            for piece in chunks("large.wav", size):
                expected.update(piece)
            [call] = speech.calls
            return {"size": size, "peak": peak, "seconds": seconds, "state": outcome.state,
                    "audio_size": call.audio_size, "same_bytes": call.audio_sha256 == expected.hexdigest()}
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
        preservica.forget_client()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=500, help="file size in MB (10^6 bytes)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from hookops import azurite
    with tempfile.TemporaryDirectory() as data, azurite.start_on_free_ports(Path(data)) as store:
        result = measure(args.mb * 1_000_000, store.connection_string)
    print(f"transcribe of a {result['size'] / 1e6:.0f} MB file: peak traced memory {result['peak'] / 2**20:.1f} MiB, "
          f"{result['seconds']:.1f} s, outcome {result['state']}, Speech received {result['audio_size']} bytes "
          f"({'identical' if result['same_bytes'] else 'DIFFERENT'})")
    return 0 if result["same_bytes"] and result["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
