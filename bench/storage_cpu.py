"""CPU per storage request through the app's client, with and without requests' per-request environment look-ups.

    python -m bench.storage_cpu [--calls 60] [--rounds 7]

Starts Azurite, then times (thread CPU, `time.thread_time`) queue puts of a 700-character message, the size
of intake's message for a one-event delivery, in one thread, interleaving three clients round by round so
that the machine's other load falls on all three alike: the app's client as it is
(handlers/clients/storage.py: `trust_env` off, the environment read once), the same client with `trust_env`
turned back on (what requests then reads on every request: ~/.netrc, the proxy variables, REQUESTS_CA_BUNDLE),
and a bare `QueueClient` with the SDK's defaults. Prints the best and the median round, in ms per put.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import median


def _session_of(client):
    t = client._pipeline._transport
    while not hasattr(t, "session"):   # azure-core wraps the transport it was given
        t = t._transport
    return t.session


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.storage_cpu", description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=60)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args(argv)
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    from bench import pipeline
    from hookops import azurite
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        az = azurite.start_on_free_ports(Path(tmp) / "azurite")
        try:
            with pipeline.environment(pipeline.app_env(az.connection_string, "127.0.0.1:9", "*=journal")):
                from handlers.clients import storage
                as_is, trusting = storage.Storage(dict(os.environ)), storage.Storage(dict(os.environ))
                _session_of(trusting.queue("cpu")).trust_env = True
                bare = QueueClient.from_connection_string(az.connection_string, "cpu",
                                                          message_encode_policy=TextBase64EncodePolicy())
                message = "x" * 700
                sends = {"app client (environment read once)": lambda: as_is.send("cpu", message),
                         "app client with trust_env on": lambda: trusting.send("cpu", message),
                         "bare QueueClient (SDK defaults)": lambda: bare.send_message(message)}
                for send in sends.values():   # connections open, queue made
                    send()
                rounds: dict[str, list[float]] = {k: [] for k in sends}
                for _ in range(a.rounds):
                    for name, send in sends.items():
                        cpu = time.thread_time()
                        for _ in range(a.calls):
                            send()
                        rounds[name].append((time.thread_time() - cpu) / a.calls * 1000)
        finally:
            az.stop()
    print(json.dumps({k: {"best_ms": round(min(v), 3), "median_ms": round(median(v), 3)} for k, v in rounds.items()},
                     indent=1))


if __name__ == "__main__":
    main()
