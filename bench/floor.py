"""What the storage allows: the floor of a throughput row, measured in the same run on the same Azurite.

    python -m bench.floor '{"storage": ..., "concurrency": 32, "ops": [...]}'   -> one JSON document on stdout

A bare azure-storage client loop, in its own process (as the load generator is): `concurrency` threads,
each with its own clients built with the SDKs' defaults (no app policy, transport or retry settings),
take the operations from one shuffled list until it is empty. Each operation is one storage request of
the size the app's request had, so the wall time is what the same requests cost with nothing but the
SDK between them and Azurite. Operations (`op`, `count`, and per op):

  queue_put       send_message of a text of `bytes` characters (`base64`: encoded, as the app sends)
  queue_receive   one receive of up to `messages` messages from a queue filled beforehand, then one
                  delete per message received (`count` receives; the deletes are counted apart)
  blob_put        upload_blob of `bytes` bytes, overwrite, a new name each time
  table_tx        submit_transaction of `entities` upserts of `bytes` bytes in all, in one partition
  table_query     query_entities of one partition of `entities` rows, every page read

What is put beforehand (the receive queue, the query partitions) and the queues, containers and tables
themselves are made before the clock starts and deleted after. Per operation it reports its latency.
"""
from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from collections import defaultdict

from bench.common import pct

# The XML around a queue message's text (azure-storage-queue's serializer), so a put is as large as the app's.
QUEUE_XML = len("<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText></MessageText></QueueMessage>")


def run(spec: dict) -> dict:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    conn, tag = spec["storage"], "floor" + uuid.uuid4().hex[:10]
    ops = [o for o in spec["ops"] if o["count"] > 0]
    concurrency = max(1, spec["concurrency"])
    names = {"put": f"{tag}-put", "recv": f"{tag}-recv", "blob": tag, "table": tag}

    def clients() -> dict:   # one set per thread: a bare loop, nothing shared but the account
        b64 = {"message_encode_policy": TextBase64EncodePolicy()}
        return {"put": QueueClient.from_connection_string(conn, names["put"]),
                "put64": QueueClient.from_connection_string(conn, names["put"], **b64),
                "recv": QueueClient.from_connection_string(conn, names["recv"]),
                "blob": BlobServiceClient.from_connection_string(conn).get_container_client(names["blob"]),
                "table": TableServiceClient.from_connection_string(conn).get_table_client(names["table"])}

    setup = clients()
    setup["put"].create_queue()
    setup["recv"].create_queue()
    setup["blob"].create_container()
    setup["table"].create_table()
    tasks: list[tuple[str, dict, int]] = []
    try:
        for o in ops:
            if o["op"] == "queue_receive":
                text = "x" * max(1, o.get("bytes", 100) - QUEUE_XML)
                for _ in range(o["count"] * max(1, o.get("messages", 1))):
                    setup["recv"].send_message(text)
            if o["op"] == "table_query":
                rows = max(1, o.get("entities", 1))
                size = max(1, o.get("bytes", 200) // rows)
                for i in range(o["count"]):   # one partition per query, written in transactions of 100
                    part = [("upsert", {"PartitionKey": f"q{i}", "RowKey": f"{j:06d}", "data": "x" * size})
                            for j in range(rows)]
                    for k in range(0, rows, 100):
                        setup["table"].submit_transaction(part[k:k + 100])
            tasks += [(o["op"], o, i) for i in range(o["count"])]
        random.Random(0).shuffle(tasks)
        latencies: dict[str, list[float]] = defaultdict(list)
        requests = defaultdict(int)
        lock, errors = threading.Lock(), []
        gate = threading.Barrier(concurrency + 1)

        def worker() -> None:
            mine = clients()
            gate.wait()
            while True:
                with lock:
                    if not tasks:
                        return
                    kind, o, i = tasks.pop()
                t = time.perf_counter()
                try:
                    n = _do(mine, kind, o, i)
                except Exception as exc:   # reported, not retried: the floor would be wrong either way
                    with lock:
                        errors.append(f"{kind}: {type(exc).__name__}")
                    continue
                with lock:
                    latencies[kind].append((time.perf_counter() - t) * 1000)
                    requests[kind] += n

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
        for t in threads:
            t.start()
        gate.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        for cleanup in (setup["put"].delete_queue, setup["recv"].delete_queue, setup["blob"].delete_container,
                        setup["table"].delete_table):
            try:
                cleanup()
            except Exception:   # a leftover in a throwaway Azurite does not change the figures
                pass
    done = sum(len(v) for v in latencies.values())
    return {"wall_s": wall, "operations": done, "requests": sum(requests.values()), "concurrency": concurrency,
            "errors": errors, "rate": done / wall if wall else float("nan"),
            "by_op": {k: {"count": len(v), "requests": requests[k], "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
                      for k, v in sorted(latencies.items())}}


def _do(c: dict, kind: str, o: dict, i: int) -> int:
    """One operation; the storage requests it made."""
    if kind == "queue_put":
        text = "x" * max(1, o.get("text", o.get("bytes", 100) - QUEUE_XML))
        (c["put64"] if o.get("base64") else c["put"]).send_message(text)
        return 1
    if kind == "queue_receive":
        want = max(1, o.get("messages", 1))
        got = list(next(c["recv"].receive_messages(messages_per_page=want, max_messages=want).by_page(), []))
        for m in got:
            c["recv"].delete_message(m)
        return 1 + len(got)
    if kind == "blob_put":
        c["blob"].upload_blob(f"b{uuid.uuid4().hex}", b"x" * max(0, o.get("bytes", 0)), overwrite=True)
        return 1
    if kind == "table_tx":
        rows = max(1, o.get("entities", 1))
        size = max(1, o.get("bytes", 200) // rows)
        part = uuid.uuid4().hex
        c["table"].submit_transaction([("upsert", {"PartitionKey": part, "RowKey": f"{j:06d}", "data": "x" * size})
                                       for j in range(rows)])
        return 1
    if kind == "table_query":
        pages = list(c["table"].query_entities("PartitionKey eq @p", parameters={"p": f"q{i}"},
                                               results_per_page=1000).by_page())
        for page in pages:
            list(page)
        return max(1, len(pages))
    raise ValueError(f"unknown floor operation {kind!r}")


# ---- the benchmark's side -------------------------------------------------------------------------

def ops_from_counts(detail: dict) -> tuple[list[dict], dict]:
    """The floor's operations for the storage requests a run made (bench.probes.StorageCounter.detail()):
    the app's and the runner's (the host's receive and delete), with their mean sizes. Left out, and
    returned apart: receives that found nothing (they depend on time, not events), the one-off creation
    of queues, containers and tables, and refused requests (a 404 before a create, a 412 lost race)."""
    ops, left_out = [], {}
    merged: dict = defaultdict(lambda: {"requests": 0, "bytes": 0, "items": 0})
    for key, d in detail.items():
        owner, service, op = key.split("|", 2)
        if owner not in ("app", "runner"):
            continue
        if "(" in op or op.startswith("create") or op == "receive (empty)":
            left_out[key] = d["requests"]
            continue
        name = "blob put" if service == "blob" and op.startswith("put ") else f"{service} {op}"
        for k in ("requests", "bytes", "items"):
            merged[name][k] += d[k]
    deletes = merged.pop("queue delete", {"requests": 0})["requests"]
    for name, d in sorted(merged.items()):
        n = d["requests"]
        mean = d["bytes"] // n if n else 0
        if name == "queue put":
            ops.append({"op": "queue_put", "count": n, "bytes": mean})
        elif name == "queue receive":   # the deletes go with the messages received
            puts = merged.get("queue put", {"requests": 0, "bytes": 0})
            ops.append({"op": "queue_receive", "count": n, "messages": max(1, round(deletes / n)),
                        "bytes": puts["bytes"] // puts["requests"] if puts["requests"] else 100})
        elif name == "blob put":
            ops.append({"op": "blob_put", "count": n, "bytes": mean})
        elif name in ("table transaction", "table insert", "table upsert", "table merge"):
            ops.append({"op": "table_tx", "count": n, "bytes": mean, "entities": max(1, round(d["items"] / n))})
        elif name in ("table query", "table get"):
            ops.append({"op": "table_query", "count": n, "entities": max(1, round(d["items"] / n)), "bytes": 300})
        else:
            left_out[name] = n
    return _merge_same(ops), left_out


def _merge_same(ops: list[dict]) -> list[dict]:
    """Table writes of several kinds with the same shape: one entry."""
    out: dict = {}
    for o in ops:
        key = (o["op"], o.get("entities"), o.get("messages"))
        if key in out:
            a = out[key]
            a["bytes"] = (a["bytes"] * a["count"] + o["bytes"] * o["count"]) // (a["count"] + o["count"])
            a["count"] += o["count"]
        else:
            out[key] = dict(o)
    return list(out.values())


def measure(storage: str, concurrency: int, ops: list[dict], timeout: float = 600) -> dict:
    """Run the floor in its own process; its JSON answer."""
    import subprocess

    from bench.common import PYTHON, ROOT
    spec = {"storage": storage, "concurrency": concurrency, "ops": ops}
    proc = subprocess.run([PYTHON, "-m", "bench.floor", json.dumps(spec)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"storage floor failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def main() -> None:
    json.dump(run(json.loads(sys.argv[1])), sys.stdout)


if __name__ == "__main__":
    main()
