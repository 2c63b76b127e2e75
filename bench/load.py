"""The load generator, run as its own process so that its work does not share a GIL with a server.

    python -m bench.load '{"url": ..., "count": ..., ...}'   -> one JSON document on stdout

Sends `count` signed deliveries, as Preservica does (JSON body with `Transfer-Encoding: chunked`,
header `Preservica-Signature`), from `concurrency` threads, each a client with its own
`http.client` connection, kept alive where the server allows it and reopened where it does not.
Bodies are built and signed before the clock starts. Bounded: every request has a socket timeout,
and no new request starts after `deadline` seconds.

A delivery whose exchange fails (no answer, connection reset) or is answered 5xx/429 is sent
again after `retry_pause` seconds, until it is acknowledged or `give_up` seconds have passed since
its first attempt: a sender that retries, as a webhook sender should. Per delivery it reports:
first attempt started, status line received, response complete (seconds from the first send, on
the last attempt), the final status (None when the last exchange failed), the last error type,
the attempts, and what went wrong first (None when the first attempt was acknowledged).
"""
from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

from bench.common import WEBHOOK_PATH, catalogue_id, delivery_body, ref


def build(spec: dict) -> list[tuple[bytes, dict]]:
    from handlers.core.signature import sign
    per, n_refs, first = spec["events_per_delivery"], spec["refs"], spec.get("first_ref", 0)
    out = []
    for i in range(spec["count"]):
        numbers = [(first + i * per + j) % n_refs for j in range(per)]
        # With "identifiers": each event carries its asset's catalogue identifier, as a subscription made
        # with includeIdentifiers=true delivers it.
        ids = [[{"catalogue": catalogue_id(n)}] for n in numbers] if spec.get("identifiers") else None
        # Distinct timestamps, like Preservica.
        body = delivery_body([ref(n) for n in numbers], spec["subscription"], spec["ms"] + i, identifiers=ids)
        out.append((body, {"Content-Type": "application/json", "Preservica-Signature": sign(spec["secret"], body)}))
    return out


def run(spec: dict) -> dict:
    deliveries = build(spec)
    target = urlsplit(spec["url"])
    path = target.path or WEBHOOK_PATH
    timeout, deadline = spec.get("timeout", 120.0), spec.get("deadline", 600.0)
    results: list = [None] * len(deliveries)
    errors: Counter = Counter()
    lock = threading.Lock()
    next_index = [0]
    start_gate = threading.Event()
    t0 = [0.0]

    def take() -> int | None:
        with lock:
            i = next_index[0]
            if i >= len(deliveries) or time.perf_counter() - t0[0] > deadline:
                return None
            next_index[0] += 1
            return i

    retry_pause, give_up = spec.get("retry_pause", 1.0), spec.get("give_up", 120.0)

    def attempt(conn, body, headers):
        """One exchange: (connection to keep or None, status or None, error, t status line, t done)."""
        try:
            if conn is None:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
            # An iterator body: http.client sends it chunked, as Preservica does.
            conn.request("POST", path, body=iter([body]), headers=headers, encode_chunked=True)
            resp = conn.getresponse()
            h = time.perf_counter()
            resp.read()
            d = time.perf_counter()
            if resp.will_close:
                conn.close()
                conn = None
            return conn, resp.status, None, h, d
        except (OSError, http.client.HTTPException) as exc:
            if conn is not None:
                conn.close()
            now = time.perf_counter()
            return None, None, type(exc).__name__, now, now

    def client() -> None:
        conn = None
        start_gate.wait()
        while (i := take()) is not None:
            body, headers = deliveries[i]
            s = time.perf_counter()
            tries, first_error = 0, None
            while True:   # a sender that retries what was not acknowledged, after a pause, for a while
                tries += 1
                conn, status, error, h, d = attempt(conn, body, headers)
                first_error = first_error or error or (str(status) if status != 200 else None)
                if status is not None and status < 500 and status != 429:
                    break
                if time.perf_counter() + retry_pause - s > give_up:
                    break
                time.sleep(retry_pause)
            results[i] = (s - t0[0], h - t0[0], d - t0[0], status, error, tries, first_error)
            with lock:
                if first_error:
                    errors[first_error] += 1
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(min(spec["concurrency"], len(deliveries)))]
    for t in threads:
        t.start()
    first_post = time.time()
    t0[0] = time.perf_counter()
    start_gate.set()
    for t in threads:
        t.join(deadline + timeout + 30)
    wall = time.perf_counter() - t0[0]
    done = [r for r in results if r is not None]
    return {"first_post": first_post, "wall": wall, "sent": len(done), "requested": len(deliveries),
            "not_sent": len(deliveries) - len(done), "errors": dict(errors), "results": done,
            "body_bytes": sum(len(b) for b, _ in deliveries) / max(1, len(deliveries))}


def _exit_with_parent() -> None:
    """Stop sending if the benchmark that started this process is gone."""
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(3)


def main() -> None:
    spec = json.loads(sys.argv[1])
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    json.dump(run(spec), sys.stdout)


if __name__ == "__main__":
    main()
