"""Row 2: acknowledgement latency under load, the intake alone and with the queue triggers in one process, against
pyPreservica's reference receiver, each run followed by its storage floor (a bare queue put per delivery)."""
from __future__ import annotations

import os
import time

from bench.common import median, process_cpu_seconds, ratio
from bench.pipeline import ack_summary, load_spec, run_load


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
    """One more intake-alone run, not in the medians, with bench.cpu_sampler.CpuSampler over every thread of this
    process (the runner's), and the CPU of this process and of Azurite over the run: where the intake's time
    goes under row 2's load."""
    from bench.cpu_sampler import CpuSampler
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
