"""Rows 2, 3 and 5: acknowledgement under load, pipeline throughput, intake CPU (row 4: bench/large.py).

Rows 2 and 3 go over real HTTP through the local runner (the Functions host's stand-in, in this
process, with timers around the app's stages) and real Azurite; the load generator, the Preservica
double and the reference receiver are separate processes. Row 5 calls `intake.handle` in process, with
storage stubbed out.
"""
from __future__ import annotations

import contextlib
import hmac
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
    delivery_body,
    median,
    pct,
    process_cpu_seconds,
    ratio,
    ref,
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


# ---- row 2 -------------------------------------------------------------------------------------

def intake_only_runner(runner_cls):
    """A runner that serves the HTTP function and runs no queue trigger: the intake on instances of
    its own, as Flex Consumption scales HTTP functions apart from queue-triggered ones."""
    class IntakeOnlyRunner(runner_cls):
        def load(self):
            functions = super().load()
            self.queue_functions.clear()   # the runner starts one poller per entry; none here
            return functions
    return IntakeOnlyRunner


def intake_alone(runner, storage: str, *, deliveries: int, concurrency: int, assets: int, runs: int,
                 progress=print) -> list[dict]:
    """Each run followed by its floor: the one storage request intake makes per delivery (a queue put of
    the message intake builds for these deliveries, base64 as the app sends it), `deliveries` times by a
    bare client loop at the same concurrency on the same Azurite (bench/floor.py)."""
    from bench import floor
    out = []
    for r in range(runs):
        spec = load_spec(runner.url, deliveries, concurrency, assets)
        cpu = time.process_time()   # this process is the runner's: the intake's and its front end's CPU
        a = ack_summary(run_load(spec))
        a["process_cpu_ms_per_delivery"] = (time.process_time() - cpu) / max(1, a["ok"]) * 1000
        fl = a["floor"] = floor.measure(storage, concurrency, [{"op": "queue_put", "count": deliveries,
                                                                "text": intake_message_chars(spec),
                                                                "base64": True}])
        put = fl["by_op"].get("queue_put", {})
        a["floor_rate"], a["floor_p50_ms"], a["floor_p99_ms"] = fl["rate"], put.get("p50_ms"), put.get("p99_ms")
        a["of_floor"] = ratio(a["rate"], fl["rate"])   # deliveries/s against bare puts/s
        a["p50_over_floor"] = ratio(a["p50_ms"], a["floor_p50_ms"] or float("nan"))
        out.append(a)
        progress(f"  ack run {r + 1}/{runs} intake alone: p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, "
                 f"{a['rate']:.0f}/s, {a['ok']}/{deliveries} acknowledged; bare queue puts: p50 "
                 f"{a['floor_p50_ms']:.1f} ms, {fl['rate']:.0f}/s ({a['of_floor']:.0%} of it)")
    return out


def intake_profile(runner, azurite_pid, *, deliveries: int, concurrency: int, assets: int, progress=print) -> dict:
    """One more intake-alone run, not in the medians, with bench.probes.CpuSampler over every thread of this
    process (the runner's), and the CPU of this process and of Azurite over the run: where the intake's time
    goes under row 2's load."""
    from bench.probes import CpuSampler
    sampler = CpuSampler()
    cpu0 = (time.process_time(), process_cpu_seconds(azurite_pid))
    sampler.start()
    a = ack_summary(run_load(load_spec(runner.url, deliveries, concurrency, assets)))
    sampler.stop()
    cpu1 = (time.process_time(), process_cpu_seconds(azurite_pid))
    wall = a["wall_s"]
    out = {**sampler.result(), "rate": a["rate"], "p50_ms": a["p50_ms"], "deliveries": a["ok"], "run_wall_s": wall,
           "process_cpu_s": cpu1[0] - cpu0[0],
           "azurite_cpu_s": (cpu1[1] - cpu0[1]) if None not in (cpu0[1], cpu1[1]) else float("nan")}
    out["process_cpu_ms_per_delivery"] = out["process_cpu_s"] / max(1, a["ok"]) * 1000
    out["process_busy"] = out["process_cpu_s"] / wall if wall else float("nan")
    progress(f"  intake alone with the CPU sampler: {a['rate']:.0f}/s; this process {out['process_cpu_s']:.1f} s CPU "
             f"({out['process_cpu_ms_per_delivery']:.2f} ms per delivery, {out['process_busy']:.0%} of a core), "
             f"Azurite {out['azurite_cpu_s']:.1f} s; by library: " + ", ".join(
                 f"{k} {v / max(out['cpu_s'], 1e-9):.0%}" for k, v in list(out["by_library"].items())[:6]))
    return out


def intake_message_chars(spec: dict) -> int:
    """Characters of the queue message intake builds for one of the load's deliveries (before base64)."""
    from bench.load import build
    from handlers.core import envelope, messages
    body, _ = build({**spec, "count": 1})[0]
    _, text = envelope.parse_delivery(body)
    return len(messages.intake_message(envelope.delivery_id(body), "2026-01-01T00:00:00.000+00:00", text))


def clear_queue(storage: str, name: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient
    try:
        QueueClient.from_connection_string(storage, name).clear_messages()
    except ResourceNotFoundError:
        pass


def ack_latency(runner, clock, double, reference, *, deliveries: int, ref_deliveries: int, concurrency: int,
                latency: float, assets: int, runs: int, alone: dict | None = None, progress=print) -> dict:
    """`alone`: {"runs": intake_alone()'s list, "profile": intake_profile()'s answer or None}."""
    profile = (alone or {}).get("profile")
    alone = (alone or {}).get("runs")
    double.call(cmd="latency", seconds=latency)
    os.environ["PRESERVICA_ROUTES"] = "*=thumbnail"     # the same work as the reference's do_WORK
    ours, theirs, ratios = [], [], []
    for r in range(runs):
        clock.reset()
        spec = load_spec(runner.url, deliveries, concurrency, assets)
        res = run_load(spec)
        a = ack_summary(res)
        # Let the queued thumbnails finish before the next measurement, so runs do not overlap. An action
        # message carries a batch of events: count events performed, not invocations.
        drained = runner.wait_for(lambda a=a: clock.performed("action_thumbnail") >= a["ok"],
                                  timeout=max(120.0, a["ok"] * 2 * latency))
        last = clock.snapshot().get("action_thumbnail", {}).get("last")
        a["drained"] = drained
        a["all_thumbnails_s"] = (last - res["first_post"]) if (drained and last) else float("nan")
        a["thumbnails_done"] = clock.performed("action_thumbnail")
        ours.append(a)
        progress(f"  ack run {r + 1}/{runs} app: p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, "
                 f"{a['rate']:.0f}/s, {a['ok']}/{deliveries} acknowledged; thumbnails done after "
                 f"{a['all_thumbnails_s']:.1f} s")

        done_before = reference.call(cmd="stats")
        rspec = load_spec(f"http://127.0.0.1:{reference.info['port']}", ref_deliveries, concurrency, assets,
                          first_ref=deliveries % max(1, assets))
        b = ack_summary(run_load(rspec))
        done_after = reference.call(cmd="stats")
        b["work_done"] = done_after["deliveries"] - done_before["deliveries"]
        b["work_failed"] = done_after["failed"] - done_before["failed"]
        theirs.append(b)
        ratios.append(ratio(b["p99_ms"], a["p99_ms"]))
        progress(f"  ack run {r + 1}/{runs} reference: p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms, "
                 f"{b['rate']:.2f}/s, {b['ok']}/{ref_deliveries} acknowledged; p99 ratio {ratios[-1]:.0f}x")

    def med(rows, key):
        return median([x[key] for x in rows])

    keys = ("p50_ms", "p99_ms", "rate", "head_p50_ms", "head_p99_ms", "max_ms")
    floor_keys = ("floor_rate", "floor_p50_ms", "floor_p99_ms", "of_floor", "p50_over_floor",
                  "process_cpu_ms_per_delivery")
    alone_part = None
    if alone:
        alone_part = {**{k: med(alone, k) for k in keys + floor_keys}, "ok": sum(x["ok"] for x in alone),
                      "retried": sum(x["retried"] for x in alone),
                      "sent": sum(x["sent"] for x in alone), "statuses": _merge([x["statuses"] for x in alone]),
                      # alone is the caller's list: its length is not tied to this loop's runs
                      "p99_ratio": median([ratio(b["p99_ms"], x["p99_ms"])
                                           for b, x in zip(theirs, alone, strict=False)]),
                      "per_run": alone, "profile": profile}
        # The app in one process against the floor of the intake-alone run of the same index.
        alone_part["ours_of_floor"] = median([ratio(a["rate"], x["floor_rate"])
                                              for a, x in zip(ours, alone, strict=False)])
    return {"deliveries": deliveries, "ref_deliveries": ref_deliveries, "concurrency": concurrency,
            "latency_ms": latency * 1000, "runs": runs,
            "ours": {**{k: med(ours, k) for k in keys}, "all_thumbnails_s": med(ours, "all_thumbnails_s"),
                     "ok": sum(x["ok"] for x in ours), "sent": sum(x["sent"] for x in ours),
                     "statuses": _merge([x["statuses"] for x in ours]),
                     "retried": sum(x["retried"] for x in ours), "failed": sum(x["failed"] for x in ours),
                     "thumbnails_done": sum(x["thumbnails_done"] for x in ours),
                     "listen_backlog": runner.http_server.request_queue_size},
            "reference": {**{k: med(theirs, k) for k in keys}, "ok": sum(x["ok"] for x in theirs),
                          "sent": sum(x["sent"] for x in theirs), "statuses": _merge([x["statuses"] for x in theirs]),
                          "work_done": sum(x["work_done"] for x in theirs),
                          "work_failed": sum(x["work_failed"] for x in theirs),
                          "failed": sum(x["failed"] for x in theirs),
                          "retried": sum(x["retried"] for x in theirs),
                          "attempts": sum(x["attempts"] for x in theirs),
                          "first_errors": _merge([x["first_errors"] for x in theirs]),
                          "server_class": reference.info.get("server_class"),
                          "listen_backlog": reference.info.get("listen_backlog")},
            "p99_ratio": median(ratios), "p99_ratios": ratios, "intake_alone": alone_part,
            "per_run": {"ours": ours, "reference": theirs}}


def _merge(dicts) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


# ---- row 3 -------------------------------------------------------------------------------------

def pipeline(runner, clock, double, azurite_pid, storage: str, *, events: int, batch: int, concurrency: int,
             runs: int, profile: bool = False, progress=print) -> dict:
    """Row 3: `runs` measured runs, each followed by its storage floor (bench/floor.py: the storage requests
    the run made, counted at the client, repeated by a bare client loop at `concurrency` on the same
    Azurite); then (with `profile`) one more run with bench.probes.CpuSampler running, which is reported
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
        from bench.probes import CpuSampler
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


# ---- row 5 -------------------------------------------------------------------------------------

class _NullStorage:
    def send(self, queue_name, message):
        pass

    def put_blob(self, *args, **kwargs):
        pass


def _per_call_us(fn, iterations: int, repeats: int = 5) -> float:
    """Microseconds per call: the best of `repeats` timings of iterations/repeats calls each (as
    timeit advises: the others measure the machine's other work, not this code)."""
    n = max(1, iterations // repeats)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def intake_cpu(env: dict, *, iterations: int, runs: int, sizes=(1, 100), progress=print) -> dict:
    from handlers import intake
    from handlers.clients import storage
    from handlers.core import envelope, messages, signature
    out = {}
    key = SECRET.encode()
    with environment(env):
        real_default = storage.default
        storage.default = lambda: _NullStorage()
        try:
            for n in sizes:
                body = delivery_body([ref(i) for i in range(n)], new_subscription(), now_ms())
                req = signed_request(body)
                header = signature.sign(SECRET, body)
                message = b"preservica-webhook-auth" + body
                assert intake.handle(req).status_code == 200

                # Timed in this iteration only: each binds this size's body as a default argument.
                def pure(body=body, header=header):
                    signature.verify([SECRET], body, header)
                    did = envelope.delivery_id(body)
                    _, text = envelope.parse_delivery(body)
                    messages.intake_message(did, "2026-01-01T00:00:00.000+00:00", text)

                def handle(req=req):
                    return intake.handle(req)

                def floor(message=message):
                    return hmac.digest(key, message, "sha256")
                its = max(10, iterations // max(1, n // 10))    # fewer iterations for bigger bodies
                samples = {"handle": [], "pure": [], "hmac": [], "ratio": [], "pure_ratio": []}
                for _ in range(runs):
                    h, p, f = _per_call_us(handle, its), _per_call_us(pure, its), _per_call_us(floor, its)
                    for k, v in (("handle", h), ("pure", p), ("hmac", f), ("ratio", h / f), ("pure_ratio", p / f)):
                        samples[k].append(v)
                out[n] = {"events": n, "body_bytes": len(body), "iterations": its,
                          **{f"{k}_us" if "ratio" not in k else k: median(v) for k, v in samples.items()}}
                progress(f"  intake CPU, {n} event(s) ({len(body)} B): intake.handle {out[n]['handle_us']:.1f} us, "
                         f"verify+parse+envelope {out[n]['pure_us']:.1f} us, HMAC {out[n]['hmac_us']:.2f} us")
        finally:
            storage.default = real_default
    return {"iterations": iterations, "runs": runs, "sizes": out}
