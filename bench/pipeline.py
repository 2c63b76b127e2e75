"""Row 3, pipeline throughput, and what rows 2 to 9 share: the app's settings, the load generator, signed
requests (row 2: bench/ack.py; row 4: bench/large.py; row 5: bench/intake_cpu.py).

Rows 2 and 3 go over real HTTP through the local runner (the Functions host's stand-in, in this
process, with timers around the app's stages) and real Azurite; the load generator, the Preservica
double and the reference receiver are separate processes.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import time
import uuid
from pathlib import Path

from bench.common import (
    PASSWORD,
    PYTHON,
    ROOT,
    SECRET,
    TENANT,
    USER,
    WEBHOOK_PATH,
    median,
    pct,
    process_cpu_seconds,
    ratio,
)

THUMBNAIL_CONTAINER = "bench-thumbnails"


# Preservica requests per second per process (PRESERVICA_MAX_RPS) in every row but row 8: high enough
# never to bind here (the double answers a few hundred a second), so that rows 2, 3, 6 and 7 measure the
# pipeline, as the figures of 2026-11-29 (before the limit existed) did. Row 8 sets a binding one.
UNBOUND_RPS = 100_000


def app_env(storage: str, preservica_server: str, routes: str) -> dict:
    """Every setting the app reads, explicitly: nothing leaks in from a local.settings.json or the
    environment. Settings not named here are blank, which means their default."""
    from handlers.core.settings import HOST
    from handlers.pipeline import registry
    blank = {s.name: "" for s in registry.all_settings() if s.where != HOST}
    return {**blank, "AzureWebJobsStorage": storage, "PRESERVICA_WEBHOOK_SECRET": SECRET,
            "PRESERVICA_ROUTES": routes, "PRESERVICA_SERVER": preservica_server, "PRESERVICA_USERNAME": USER,
            "PRESERVICA_PASSWORD": PASSWORD, "PRESERVICA_TENANT": TENANT, "PRESERVICA_PROTOCOL": "http",
            "THUMBNAIL_CONTAINER": THUMBNAIL_CONTAINER, "PRESERVICA_MAX_RPS": str(UNBOUND_RPS)}




def bench_host_json(path: Path) -> Path:
    """The project's host.json, as deployed. (With maxPollingInterval at the 100 ms minimum the
    runner's six idle Python pollers alone took ~28% of a core here, and Azurite another ~23%:
    on a 2-core machine that is taken from the app being measured; the real host polls in .NET.)"""
    path.write_text((ROOT / "host.json").read_text())
    return path


@contextlib.contextmanager
def environment(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def new_subscription() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- load --------------------------------------------------------------------------------------

def load_spec(url: str, count: int, concurrency: int, assets: int, per: int = 1, first_ref: int = 0,
              timeout: float = 120, deadline: float = 300) -> dict:
    return {"url": url + WEBHOOK_PATH, "count": count, "concurrency": concurrency, "events_per_delivery": per,
            "refs": assets, "first_ref": first_ref, "subscription": new_subscription(), "ms": now_ms(),
            "secret": SECRET, "timeout": timeout, "deadline": deadline}


def start_load(spec: dict) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "bench.load", json.dumps(spec)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_load(proc: subprocess.Popen, spec: dict) -> dict:
    limit = spec["deadline"] + spec["timeout"] + 90
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()   # the load generator we started, by its own handle
        proc.communicate()
        raise RuntimeError(f"load generator still running after {limit:.0f}s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err[-2000:]}")
    return json.loads(out)


def run_load(spec: dict) -> dict:
    return finish_load(start_load(spec), spec)


def ack_summary(res: dict) -> dict:
    """Latency of a delivery: its first attempt's start to the end of the answer that acknowledged it
    (retries included, as the sender waits through them)."""
    rows = res["results"]
    ok = [(s, h, d) for s, h, d, status, *_ in rows if status == 200]
    lat = [(d - s) * 1000 for s, _, d in ok]
    head = [(h - s) * 1000 for s, h, _ in ok]
    last = max((d for _, _, d in ok), default=0.0)
    statuses: dict = {}
    for _, _, _, status, error, *_ in rows:
        key = str(status) if status is not None else (error or "error")
        statuses[key] = statuses.get(key, 0) + 1
    first_errors: dict = {}
    for *_, first_error in rows:
        if first_error:
            first_errors[first_error] = first_errors.get(first_error, 0) + 1
    return {"ok": len(ok), "sent": res["sent"], "not_sent": res["not_sent"], "statuses": statuses,
            "failed": sum(1 for r in rows if r[3] != 200), "retried": sum(first_errors.values()),
            "first_errors": first_errors, "attempts": sum(r[5] for r in rows),
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat, default=float("nan")),
            "head_p50_ms": pct(head, 50), "head_p99_ms": pct(head, 99),
            "rate": len(ok) / last if last else float("nan"), "wall_s": res["wall"]}


# ---- row 3 -------------------------------------------------------------------------------------

def pipeline(runner, clock, double, azurite_pid, storage: str, *, events: int, batch: int, concurrency: int,
             runs: int, profile: bool = False, progress=print) -> dict:
    """Row 3: `runs` measured runs, each followed by its storage floor (bench/floor.py: the storage requests
    the run made, counted at the client, repeated by a bare client loop at `concurrency` on the same
    Azurite); then (with `profile`) one more run with bench.cpu_sampler.CpuSampler running, which is reported
    apart and not in the medians (the sampler takes some of the GIL)."""
    from bench import floor
    from bench.probes import StorageCounter
    double.call(cmd="latency", seconds=0.0)
    os.environ["PRESERVICA_ROUTES"] = "*=journal,thumbnail"
    n_deliveries = math.ceil(events / batch)
    results = []
    counter = StorageCounter(storage).install()
    try:
        for r in range(runs):
            settle(runner)
            counter.reset()
            row = _pipeline_once(runner, clock, double, azurite_pid, n_deliveries=n_deliveries, batch=batch,
                                 concurrency=concurrency)
            row["floor_ops"], row["floor_left_out"] = floor.ops_from_counts(counter.detail())
            fl = row["floor"] = floor.measure(storage, concurrency, row["floor_ops"])
            row["floor_events_per_s"] = row["events"] / fl["wall_s"] if fl["wall_s"] else float("nan")
            row["of_floor"] = ratio(row["events_per_s"], row["floor_events_per_s"])
            results.append(row)
            progress(f"  pipeline run {r + 1}/{runs}: {row['events']} events in {row['total_s']:.1f} s = "
                     f"{row['events_per_s']:.0f} events/s; acks done {row['last_ack_s']:.1f} s, dispatch done "
                     f"{row['dispatch_done_s']:.1f} s; journal rows with both actions done: "
                     f"{row['journal_rows_done']}; storage floor {fl['requests']} requests in {fl['wall_s']:.1f} s "
                     f"= {row['floor_events_per_s']:.0f} events/s ({row['of_floor']:.0%} of it)")
    finally:
        counter.remove()
    best = sorted(results, key=lambda x: x["events_per_s"] if x["completed"] else -1)[len(results) // 2]
    out = {"events": events, "batch": batch, "runs": runs, "concurrency": concurrency,
           "events_per_s": median([x["events_per_s"] for x in results]),
           "total_s": median([x["total_s"] for x in results]),
           "floor_events_per_s": median([x["floor_events_per_s"] for x in results]),
           "of_floor": median([x["of_floor"] for x in results]),
           "completed": all(x["completed"] for x in results), "median_run": best, "per_run": results}
    if profile:
        from bench.cpu_sampler import CpuSampler
        sampler = CpuSampler()
        row = _pipeline_once(runner, clock, double, azurite_pid, n_deliveries=n_deliveries, batch=batch,
                             concurrency=concurrency, sampler=sampler)
        out["profile"] = {**sampler.result(), "events_per_s": row["events_per_s"], "cpu_s_run": row["cpu_s"],
                          "stages": row["stages"], "completed": row["completed"]}
        progress(f"  pipeline run with the CPU sampler: {row['events_per_s']:.0f} events/s; sampled "
                 f"{sampler.total:.1f} s of CPU of the app process's {row['cpu_s']['app_process']:.1f} s")
    return out


def _pipeline_once(runner, clock, double, azurite_pid, *, n_deliveries: int, batch: int, concurrency: int,
                   sampler=None) -> dict:
    expected = n_deliveries * batch
    settle(runner)
    clock.reset()
    double.call(cmd="mark")
    cpu0 = (time.process_time(), process_cpu_seconds(azurite_pid), process_cpu_seconds(double.pid))
    spec = load_spec(runner.url, n_deliveries, min(concurrency, n_deliveries), expected, per=batch)
    if sampler:
        sampler.start()
    proc = start_load(spec)
    # One invocation performs a batch of events: wait until every event is performed by both actions
    # (re-checked whenever an invocation ends).
    done = runner.wait_for(lambda: all(clock.performed(f"action_{a}") >= expected
                                       for a in ("journal", "thumbnail")),
                           timeout=max(180.0, expected * 0.1))
    if sampler:
        sampler.stop()
    res = finish_load(proc, spec)
    cpu1 = (time.process_time(), process_cpu_seconds(azurite_pid), process_cpu_seconds(double.pid))
    stages = clock.snapshot()
    tally = double.call(cmd="tally")
    acks = ack_summary(res)
    first = res["first_post"]
    last_action = max((stages.get(f"action_{a}", {}).get("last") or 0) for a in ("journal", "thumbnail"))
    total = (last_action - first) if done else float("nan")
    journaled = count_done(spec["subscription"])
    cpu = {"app_process": cpu1[0] - cpu0[0],
           "azurite": (cpu1[1] - cpu0[1]) if None not in (cpu0[1], cpu1[1]) else float("nan"),
           "preservica_double": (cpu1[2] - cpu0[2]) if None not in (cpu0[2], cpu1[2]) else float("nan")}
    return {"events": expected, "deliveries": n_deliveries, "completed": done, "total_s": total,
            "events_per_s": expected / total if done and total else float("nan"),
            "acked": acks["ok"], "last_ack_s": acks["wall_s"], "journal_rows_done": journaled,
            "dispatch_done_s": (stages.get("dispatch", {}).get("last") or first) - first,
            "stages": {k: {**v, "first": (v["first"] or first) - first, "last": (v["last"] or first) - first}
                       for k, v in stages.items()},
            "preservica_requests": tally["requests"], "preservica_by_endpoint": tally["by_endpoint"],
            "cpu_s": cpu}


def settle(runner, timeout: float = 60.0) -> bool:
    """Wait until no invocation is in flight: every message the runner took is finished (deleted, or
    released after a failure), so that what a run counts belongs to it."""
    return runner.wait_for(lambda: all(s["invoked"] == s["succeeded"] + s["failed"]
                                       for s in runner.stats.values()), timeout)


def count_done(subscription: str, actions=("journal", "thumbnail")) -> int:
    """Journal rows of this run's events with every routed action done: one filtered query, few
    columns. A Teams digest's own row (its entityRef says "(digest of N events)") is not an event."""
    from handlers.clients import journal
    table = journal.default().table
    rows = table.query_entities("subscriptionId eq @s", parameters={"s": subscription},
                                select=["entityRef", *(f"{a}_state" for a in actions)], results_per_page=1000)
    return sum(1 for e in rows if not str(e.get("entityRef", "")).startswith("(digest")
               and all(e.get(f"{a}_state") == "done" for a in actions))


# ---- rows 4 and 5 --------------------------------------------------------------------------------

def signed_request(body: bytes):
    import azure.functions as func

    from handlers.core.signature import sign
    return func.HttpRequest("POST", "http://127.0.0.1" + WEBHOOK_PATH, body=body,
                            headers={"Content-Type": "application/json", "Preservica-Signature": sign(SECRET, body)})
