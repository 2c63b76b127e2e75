"""`python -m bench`: run the benchmarks and print one markdown table.

    python -m bench [--deliveries 2000] [--concurrency 32] [--latency 0.2] [--events 10000]
                    [--large 5000] [--cost-events 100] [--rate 20] [--rate-events 200]
                    [--runs 3] [--quick] [--out bench/results/latest.md]

Starts Azurite, the Preservica double, the Teams/catalogue/relay doubles, the reference receiver
and the local runner on free 127.0.0.1 ports and stops them all at the end. Progress goes to
stderr, the table to stdout and to --out (with the raw figures next to it as .json).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import budget, coldstart, cost, cost_row, costmodel, custody, large, pipeline
from bench.common import ROOT, Service, machine
from bench.probes import StageClock, StorageCounter

RESULTS = ROOT / "bench" / "results"
QUICK = {"deliveries": 20, "concurrency": 4, "latency": 0.05, "events": 60, "batch": 30, "cost_events": 30,
         "rate_events": 40, "million_events": 12, "runs": 1, "cold_samples": 2, "cpu_iterations": 200, "ref_deliveries": 8,
         "custody_mib": 4}
ROWS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
# The figures of the design before "Cost per event" (README, 2026-11-29), which is not in the tree any more:
# counts of requests per event, which do not depend on the machine. Throughput rows divide only by figures of
# the same run (their storage floors, bench/floor.py).
OLD = {"date": "2026-11-29", "preservica_per_event": 12.7, "storage_per_event": 25}
FLOOR_TARGET = {"pipeline": 0.5, "intake": 0.5}   # of the floor's rate: the pipeline ≥ 50%; intake within 2×


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--deliveries", type=int, default=400,
                   help="row 2: deliveries sent to the app (default 400; the table's notes say why not 2,000)")
    p.add_argument("--ref-deliveries", type=int, default=None,
                   help="row 2: deliveries sent to the reference receiver (default: 1.5 x concurrency, at most "
                        "--deliveries; it serves one at a time, so N take N x the action time)")
    p.add_argument("--concurrency", type=int, default=32, help="row 2 and 3: concurrent senders (default 32)")
    p.add_argument("--latency", type=float, default=0.2,
                   help="row 2: seconds the Preservica double adds to each response (default 0.2)")
    p.add_argument("--events", type=int, default=600, help="row 3: events through the pipeline (default 600)")
    p.add_argument("--batch", type=int, default=100, help="row 3: events per delivery (default 100)")
    p.add_argument("--large", type=int, default=None,
                   help="row 4: events in the first large delivery (default 5000: five dispatcher pages at "
                        "MAX_EVENTS_PER_DELIVERY's default; any number within MAX_BODY_BYTES is accepted)")
    p.add_argument("--cost-events", type=int, default=100,
                   help="rows 6 and 7: events in the one delivery routed to all five actions (default 100)")
    p.add_argument("--million-events", type=int, default=100,
                   help="row 10: events per configuration whose costs are measured (default 100)")
    p.add_argument("--custody-mib", type=int, default=256,
                   help="row 11: MiB of the bitstream copied by custody and by a raw upload (default 256)")
    p.add_argument("--rate", type=int, default=20,
                   help="row 8: PRESERVICA_MAX_RPS while the pipeline runs flat out (default 20)")
    p.add_argument("--rate-events", type=int, default=200,
                   help="row 8: events through the pipeline at that rate (default 200)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; each figure is the median (default 3)")
    p.add_argument("--cold-samples", type=int, default=9, help="row 1: fresh interpreters per import (default 9)")
    p.add_argument("--cpu-iterations", type=int, default=5000, help="row 5: calls per timing (default 5000)")
    p.add_argument("--reference-server", choices=("http", "threading"), default="http",
                   help="row 2: the reference's server class: HTTPServer as documented (default) "
                        "or ThreadingHTTPServer")
    budget.add_arguments(p)
    p.add_argument("--rows", default=",".join(map(str, ROWS)), help="which rows to run, e.g. 2,3 (default all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one run: checks that every row works (CI)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to save the table (default bench/results/latest.md; quick.md with --quick)")
    a = p.parse_args(argv)
    if a.quick:
        for k, v in QUICK.items():
            setattr(a, k, v)
    if a.ref_deliveries is None:
        a.ref_deliveries = min(a.deliveries, max(1, 3 * a.concurrency // 2))
    try:
        a.rows = sorted({int(x) for x in str(a.rows).split(",") if x.strip()})
    except ValueError:
        p.error("--rows takes row numbers 1-11, e.g. 2,3")
    if not a.rows or not set(a.rows) <= set(ROWS):
        p.error("--rows takes row numbers 1-11, e.g. 2,3")
    a.out = a.out or RESULTS / ("quick.md" if a.quick else "latest.md")
    if a.large is None:
        from handlers.core.settings import BY_NAME
        a.large = 5 * int(BY_NAME["MAX_EVENTS_PER_DELIVERY"].default)
    for name in ("deliveries", "ref_deliveries", "concurrency", "events", "batch", "large", "cost_events", "rate",
                 "rate_events", "million_events", "runs", "cold_samples", "cpu_iterations", "custody_mib"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(a: argparse.Namespace) -> dict:
    from hookops import azurite as azurite_mod
    from hookops.runner import Runner

    rows: dict = {}
    failures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        started: list = []
        try:
            progress("starting Azurite")
            az = azurite_mod.start_on_free_ports(tmp / "azurite")
            started.append(az)
            storage = az.connection_string

            if 1 in a.rows:
                progress("row 1: cold start")
                rows[1] = _guard(failures, 1, lambda: coldstart.run(a.cold_samples, storage, progress))

            preservica_server = "127.0.0.1:9"   # rows 4 and 5 never reach Preservica
            if {2, 3, 6, 7, 8} & set(a.rows):
                assets = max(a.deliveries if 2 in a.rows else 0, a.events + a.batch if 3 in a.rows else 0,
                             a.cost_events if {6, 7} & set(a.rows) else 0,
                             a.rate_events + a.batch if 8 in a.rows else 0, 1)
                progress(f"starting the Preservica double ({assets:,} assets)")
                double = Service(["-m", "bench.preservica_proc", "--assets", str(assets), "--latency",
                                  str(a.latency)], "Preservica double", tmp / "logs" / "preservica.log").start()
                started.append(double)
                preservica_server = double.info["server"]
                env = pipeline.app_env(storage, preservica_server, "*=thumbnail")
                alone = None
                if 2 in a.rows:
                    progress("row 2: acknowledgement latency, the intake alone (no queue trigger in its process)")
                    solo = pipeline.intake_only_runner(Runner)(
                        ROOT, port=0, host_json=pipeline.bench_host_json(tmp / "host.json"), env=env).start()
                    started.append(solo)
                    alone = _guard(failures, "2 (intake alone)", lambda: pipeline.intake_alone(
                        solo, storage, deliveries=a.deliveries, concurrency=a.concurrency, assets=assets, runs=a.runs,
                        progress=progress))
                    if alone is not None:
                        profile = _guard(failures, "2 (intake profile)", lambda: pipeline.intake_profile(
                            solo, az.proc.pid, deliveries=a.deliveries, concurrency=a.concurrency, assets=assets,
                            progress=progress))
                        alone = {"runs": alone, "profile": profile}
                    solo.stop()
                    started.remove(solo)
                    pipeline.clear_queue(storage, "preservica-deliveries")   # nobody is to dispatch those
                clock = StageClock().install()
                started.append(clock)
                runner = Runner(ROOT, port=0, host_json=pipeline.bench_host_json(tmp / "host.json"), env=env).start()
                started.append(runner)
                progress(f"local runner on {runner.url}")

                if 2 in a.rows:
                    progress("starting the reference receiver")
                    reference = Service(["-m", "bench.reference", "--preservica", preservica_server, "--storage",
                                         storage, "--server", a.reference_server], "reference receiver",
                                        tmp / "logs" / "reference.log").start()
                    started.append(reference)
                    progress("row 2: acknowledgement latency under load")
                    rows[2] = _guard(failures, 2, lambda: pipeline.ack_latency(
                        runner, clock, double, reference, deliveries=a.deliveries, ref_deliveries=a.ref_deliveries,
                        concurrency=a.concurrency, latency=a.latency, assets=assets, runs=a.runs, alone=alone,
                        progress=progress))
                    reference.stop()
                    started.remove(reference)
                if 3 in a.rows:
                    progress("row 3: pipeline throughput")
                    rows[3] = _guard(failures, 3, lambda: pipeline.pipeline(
                        runner, clock, double, az.proc.pid, storage, events=a.events, batch=a.batch,
                        concurrency=a.concurrency, runs=a.runs, profile=True, progress=progress))
                if {6, 7} & set(a.rows):
                    progress("rows 6 and 7: Preservica and storage requests per event, five actions")
                    receivers = Service(["-m", "bench.receivers_proc", "--assets", str(assets)],
                                        "Teams/catalogue/relay doubles", tmp / "logs" / "receivers.log").start()
                    started.append(receivers)
                    counter = StorageCounter(storage).install()
                    started.append(counter)
                    double.call(cmd="latency", seconds=0.0)
                    five = _guard(failures, 6 if 6 in a.rows else 7, lambda: cost.five_actions(
                        runner, clock, counter, double, receivers, events=a.cost_events, runs=a.runs,
                        progress=progress))
                    for n in (6, 7):
                        if n in a.rows:
                            rows[n] = five
                            if five is None:
                                failures.setdefault(n, failures.get(6) or failures.get(7))
                    counter.remove()
                    started.remove(counter)
                    receivers.stop()
                    started.remove(receivers)
                if 8 in a.rows:
                    progress(f"row 8: Preservica request rate with PRESERVICA_MAX_RPS={a.rate}")
                    double.call(cmd="latency", seconds=0.0)
                    rows[8] = _guard(failures, 8, lambda: cost.rate_limit(
                        runner, clock, double, rate=a.rate, events=a.rate_events, batch=a.batch,
                        concurrency=a.concurrency, progress=progress))
                runner.stop()   # rows 4 and 5 run in process: no queue trigger may pick their messages up
                budget.forget_share()
                started.remove(runner)
                clock.remove()
                started.remove(clock)

            env = pipeline.app_env(storage, preservica_server, "*=journal")
            if 4 in a.rows:
                progress("row 4: large deliveries")
                rows[4] = _guard(failures, 4, lambda: large.large_delivery(
                    env, events=a.large, runs=a.runs, quick=a.quick, progress=progress))
            if 5 in a.rows:
                progress("row 5: intake CPU")
                rows[5] = _guard(failures, 5, lambda: pipeline.intake_cpu(env, iterations=a.cpu_iterations,
                                                                          runs=max(a.runs, 3), progress=progress))
            if 9 in a.rows:
                progress("row 9: one Preservica budget shared by runner processes")
                rows[9] = _guard(failures, 9, lambda: budget.from_bench(a, storage, tmp, progress))
            if 11 in a.rows:
                progress(f"row 11: custody copy of {a.custody_mib} MiB against a raw upload")
                rows[11] = _guard(failures, 11, lambda: custody.row(storage, a.custody_mib * 2 ** 20, a.runs, progress))
            if 10 in a.rows:   # last: it sets up the OpenTelemetry SDK in this process
                progress("row 10: what a million events cost")
                rows[10] = _guard(failures, 10, lambda: cost_row.row(storage, tmp, events=a.million_events,
                                                                   progress=progress))
        finally:
            for thing in reversed(started):
                try:
                    thing.remove() if isinstance(thing, (StageClock, StorageCounter)) else thing.stop()
                except Exception:
                    progress(f"could not stop {type(thing).__name__}: {traceback.format_exc()}")
    return {"rows": rows, "failures": failures}


def _ack_ahead(r: dict, intake_last: float) -> str:
    """How much sooner Preservica has its answers than the work is done: the point of queuing."""
    try:
        return f"{r['total_s'] / intake_last:,.0f}×"
    except (TypeError, ZeroDivisionError):
        return "n/a"


def _guard(failures: dict, row: int, fn):
    try:
        return fn()
    except Exception:
        failures[row] = traceback.format_exc()
        progress(f"row {row} failed:\n{failures[row]}")
        return None


# ---- the table ---------------------------------------------------------------------------------

def f(x, digits=0, unit="") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _ms(x) -> str:
    """Milliseconds, or seconds once over 10 s."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x / 1000:,.1f} s" if x >= 10_000 else f"{x:,.0f} ms"


def _retries(x: dict, who: str) -> str:
    if not x.get("retried"):
        return f"{who}: {x['ok']:,}/{x['sent']:,} acknowledged at the first attempt"
    firsts = ", ".join(f"{k} ×{v}" for k, v in sorted(x.get("first_errors", {}).items()))
    return (f"{who}: {x['ok']:,}/{x['sent']:,} acknowledged, {x['retried']:,} of them only after a retry "
            f"(first failure: {firsts or '?'})" + (f", {x['failed']:,} never" if x.get("failed") else ""))


def render(result: dict, a: argparse.Namespace, info: dict, wall: float, command: str) -> str:
    rows, failures = result["rows"], result["failures"]
    out = [f"`{command}` on {dt.datetime.now(dt.UTC):%Y-%m-%d} — total wall time {wall / 60:.1f} min.",
           "",
           f"Machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
           f"{f(info['memory_mib'])} MiB RAM, {info['os']}, {info['implementation']} {info['python']}; "
           f"load average at start {info['loadavg']}, at end {machine()['loadavg']}.",
           "",
           "| # | Benchmark | This app | Reference | Ratio | Storage floor, same run | Of the floor | Target | Detail |",
           "|---|---|---|---|---|---|---|---|---|"]

    r = rows.get(1)
    if r:
        pkgs = r["intake_third_party"]
        out.append(
            f"| 1 | Cold start: import in a fresh interpreter (median of {r['samples']}) | `import function_app` "
            f"{f(r['app_ms'])} ms | `import azure.functions` {f(r['base_ms'])} ms | {f(r['ratio'], 2)}× | "
            f"≤ 1.25×: {_check(r['ratio'] <= 1.25)} | third-party packages `import function_app` adds: "
            f"{', '.join(r['app_third_party']) or 'none'}. The first `intake.handle` (signed delivery, Azurite) loads "
            f"{len(pkgs)}: {', '.join(pkgs) or 'none'} ({r['intake_new_modules']} modules) and takes "
            f"{f(r['first_ms'])} ms; the next {f(r['second_ms'], 1)} ms |")
    elif 1 in a.rows:
        out.append(_failed(1, "Cold start", failures))

    r = rows.get(2)
    if r:
        o, t, al = r["ours"], r["reference"], r.get("intake_alone")
        alone_ratio = f" (intake alone: {f(al['p99_ratio'])}×)" if al else ""
        alone_check = f" (intake alone: {_check(al['p99_ratio'] >= 50)})" if al else ""
        alone = (f"Intake alone: p50 {_ms(al['p50_ms'])}, p99 {_ms(al['p99_ms'])}, {f(al['rate'])}/s; its "
                 f"process (the runner's front end and the intake) {f(al['process_cpu_ms_per_delivery'], 2)} ms CPU "
                 f"per delivery. "
                 f"{_intake_profile_text(al.get('profile'))}") if al else ""
        out.append(
            f"| 2 | Ack latency: signed chunked deliveries, {r['concurrency']} concurrent senders, thumbnail action, "
            f"Preservica +{f(r['latency_ms'])} ms (median of {r['runs']}) | {r['deliveries']:,} deliveries, local "
            f"runner + Azurite, all functions in one process: p50 {_ms(o['p50_ms'])}, p99 {_ms(o['p99_ms'])}, "
            f"{f(o['rate'])}/s | `WebHookHandler` on `{t['server_class']}`, {r['ref_deliveries']:,} deliveries: "
            f"p50 {_ms(t['p50_ms'])}, p99 {_ms(t['p99_ms'])}, {f(t['rate'], 1)}/s | p99 {f(r['p99_ratio'])}× lower"
            f"{alone_ratio} | ≥ 50×: {_check(r['p99_ratio'] >= 50)}{alone_check}{_floor_target2(al)} | {alone}"
            f"{_retries(o, 'App')}; {_retries(t, 'reference')}. Reference status line p99 {_ms(t['head_p99_ms'])}. "
            f"Behind its acknowledgements the app stored every run's {r['deliveries']:,} thumbnails within "
            f"{f(o['all_thumbnails_s'], 1)} s of the run's first POST ({o['thumbnails_done']:,} in all) |")
    elif 2 in a.rows:
        out.append(_failed(2, "Ack latency under load", failures))

    _row(out, rows, a.rows, failures, 3, "Pipeline throughput", _row3)

    _row(out, rows, a.rows, failures, 4, "Large deliveries", large.row_text)

    r = rows.get(5)
    if r:
        sizes = list(r["sizes"].values())
        one, rest = sizes[0], sizes[1:]
        more = "; ".join(f"{s['events']} events ({s['body_bytes']:,} B): {f(s['handle_us'])} µs "
                         f"({f(s['pure_us'])} µs) vs {f(s['hmac_us'], 1)} µs: {f(s['ratio'], 1)}× "
                         f"({f(s['pure_ratio'], 1)}×)" for s in rest)
        out.append(
            f"| 5 | Intake CPU per delivery, {one['events']} event ({one['body_bytes']:,} B), storage call stubbed "
            f"(median of {r['runs']}) | `intake.handle` {f(one['handle_us'], 1)} µs (verify + parse + envelope "
            f"{f(one['pure_us'], 1)} µs) | HMAC-SHA256 of the same bytes {f(one['hmac_us'], 2)} µs | "
            f"{f(one['ratio'], 1)}× ({f(one['pure_ratio'], 1)}×) | – | {more} |")
    elif 5 in a.rows:
        out.append(_failed(5, "Intake CPU", failures))
    for n, title, render in ((6, "Preservica requests per event", _row6), (7, "Storage requests per event", _row7),
                             (8, "Preservica request rate", _row8), (9, "One Preservica budget", budget.render),
                             (10, "What a million events cost", lambda r: costmodel.render(r, a.million_events)),
                             (11, "Custody copy", custody.render)):
        _row(out, rows, a.rows, failures, n, title, render)
    notes = list(NOTES)
    if a.reference_server != "http":
        notes.append("- This run served the reference with `ThreadingHTTPServer` (`--reference-server threading`), one "
                     "thread per request: not the documented `HTTPServer` setup.")
    if not a.quick and (a.deliveries < 2000 or a.events < 10000):
        notes.append(_sizes_note(a, rows))
    out += ["", "Notes:", *notes]
    return "\n".join(_floor_cells(line, rows) for line in out) + "\n"


# ---- the storage floors (bench/floor.py) -------------------------------------------------------

def _floor_cells(line: str, rows: dict) -> str:
    """A row of seven cells gets the two floor cells after its Ratio: its own floor where it has one
    (rows 2 and 3), "–" elsewhere."""
    m = re.match(r"^\| (\d+) \|", line)
    if not m:
        return line
    cells = [c.strip() for c in line.strip()[1:-1].split(" | ")]
    if len(cells) != 7:
        return line
    n, r = int(m[1]), rows.get(int(m[1]))
    extra = {2: _floor2, 3: _floor3}.get(n)
    floor, of = extra(r) if (extra and r) else ("–", "–")
    return "| " + " | ".join(cells[:5] + [floor, of] + cells[5:]) + " |"


def _floor2(r: dict) -> tuple[str, str]:
    al = r.get("intake_alone")
    if not al or al.get("floor_rate") is None:
        return "n/a", "n/a"
    return (f"bare `send_message` loop, {r['concurrency']} threads, {r['deliveries']:,} puts of intake's message: "
            f"p50 {_ms(al['floor_p50_ms'])}, p99 {_ms(al['floor_p99_ms'])}, {f(al['floor_rate'])}/s",
            f"intake alone {f(al['of_floor'] * 100)}% of the puts' rate (p50 {f(al['p50_over_floor'], 1)}× a "
            f"put's); one process {f(al['ours_of_floor'] * 100)}%")


def _intake_profile_text(p: dict | None) -> str:
    """Where the intake-alone runner's CPU went in its one sampled run (bench.probes.CpuSampler)."""
    if not p or not p.get("cpu_s"):
        return ""
    total = p["cpu_s"]
    libs = ", ".join(f"{k} {f(v / total * 100)}%" for k, v in list(p["by_library"].items())[:6])
    threads = ", ".join(f"{k} {f(v / total * 100)}%" for k, v in list(p["by_thread"].items())[:3])
    inc = p["inclusive"]
    labels = list(inc)
    return (f"Where its process's CPU went (one more run, {f(p['rate'])}/s, sampled; the sampler's own CPU "
            f"included: {f(p['process_cpu_ms_per_delivery'], 2)} ms per delivery, {f(p['process_busy'] * 100)}% of "
            f"a core; Azurite {f(p['azurite_cpu_s'], 1)} s CPU over the run): by library: {libs}; by thread: "
            f"{threads}; requests' environment look-ups {f((inc[labels[1]] + inc[labels[2]]) / total * 100)}%. ")


def _floor_target2(al) -> str:
    if not al or al.get("of_floor") is None:
        return ""
    t = FLOOR_TARGET["intake"]
    return f"; intake alone ≥ {f(t * 100)}% of the floor (within 2×): {_check(al['of_floor'] >= t)}"


def _floor3(r: dict) -> tuple[str, str]:
    m = r["median_run"]
    fl = m["floor"]
    return (f"bare client loop, {fl['concurrency']} threads, the run's {fl['requests']:,} storage requests: "
            f"{f(r['floor_events_per_s'])} events/s ({f(fl['wall_s'], 1)} s)",
            f"{f(r['of_floor'] * 100)}%")


def _floor_detail3(r: dict) -> str:
    m = r["median_run"]
    ops = "; ".join(_op_text(o) for o in m["floor_ops"])
    lat = ", ".join(f"{k} p50 {_ms(v['p50_ms'])}" for k, v in m["floor"]["by_op"].items())
    each = ", ".join(f(x["of_floor"] * 100) + "%" for x in r.get("per_run", []))
    return (f"Floor: the median run's storage requests (the app's and the runner's receive/delete; not empty "
            f"polls or one-off creates) repeated with their sizes: {ops}; latency {lat}"
            f"{f' (runs: {each} of their floors)' if len(r.get('per_run', [])) > 1 else ''}. ")


def _op_text(o: dict) -> str:
    if o["op"] == "queue_receive":
        return f"{o['count']:,} receives of {o['messages']} + their deletes"
    if o["op"] == "table_tx":
        return f"{o['count']:,} table transactions of {o['entities']} ({f(o['bytes'] / 1024, 1)} KiB)"
    if o["op"] == "table_query":
        return f"{o['count']:,} table queries of {o['entities']} rows"
    what = {"queue_put": "queue puts", "blob_put": "blob puts"}.get(o["op"], o["op"])
    return f"{o['count']:,} {what} ({f(o['bytes'] / 1024, 1)} KiB)"


def _row3(r: dict) -> str:
    m = r["median_run"]
    st, cpu = m["stages"], m["cpu_s"]

    def stage(name):
        return st.get(name) or {"calls": 0, "wall": 0.0, "cpu": 0.0, "pool_cpu": 0.0, "events": 0,
                                "last": float("nan")}
    names = (("intake", "intake"), ("dispatch", "dispatch"), ("action_journal", "journal"),
             ("action_thumbnail", "thumbnail"))
    ends = ", ".join(f"{label} {f(stage(k)['last'], 1)} s" for k, label in names)
    per_call = ", ".join(f"{label} {_ms(stage(k)['wall'] / stage(k)['calls'] * 1000) if stage(k)['calls'] else '–'}"
                         for k, label in names)
    batches = ", ".join(f"{label} {f(stage(k)['events'] / stage(k)['calls'])}" for k, label in names[1:]
                        if stage(k)["calls"])
    cpus = ", ".join(f"{label} {f(stage(k)['cpu'], 1)}" for k, label in names)
    staged = sum(stage(k)["cpu"] for k, _ in names)
    intake_last = stage("intake")["last"]
    pres = m.get("preservica_by_endpoint") or {}
    per_process = sum(pres.get(k, 0) for k in ("login", "version", "user details"))
    pres_text = ", ".join(f"{k} {f(v / m['events'], 2)}" for k, v in sorted(pres.items())
                          if k not in ("login", "version", "user details"))
    cpu_per_event = cpu["app_process"] / m["events"] * 1000
    busy = cpu["app_process"] / m["total_s"] if m["total_s"] else float("nan")
    return (
        f"| 3 | Pipeline: {m['events']:,} events ({m['deliveries']} deliveries of {r['batch']}) routed "
        f"`journal,thumbnail`, Preservica +0 ms, `PRESERVICA_MAX_RPS` not binding (median of {r['runs']}) | "
        f"{f(r['events_per_s'])} events/s: {f(r['total_s'], 1)} s from the first POST to the last action done"
        f"{_runs(r)} | "
        f"– | – | ≥ {f(FLOOR_TARGET['pipeline'] * 100)}% of the floor: "
        f"{_check(r['of_floor'] >= FLOOR_TARGET['pipeline'])}{_by(r['of_floor'], FLOOR_TARGET['pipeline'])} | "
        f"{_floor_detail3(r)}Acknowledged: all {m['events']:,} events in "
        f"{f(intake_last, 1)} s, {_ack_ahead(r, intake_last)} ahead of the work. Last one done at: {ends}. "
        f"Wall per call: {per_call}; events per call: {batches}. CPU s: app process {f(cpu['app_process'], 1)} "
        f"({cpus}, each with its thread pools; host/runner {f(cpu['app_process'] - staged, 1)}: the host's share, "
        f".NET in Azure), Azurite {f(cpu['azurite'], 1)}, Preservica double {f(cpu['preservica_double'], 1)}. "
        f"App process: {f(cpu_per_event, 1)} ms CPU per event, busy {f(busy * 100)}% of one core over the run. "
        f"Preservica requests per event: {pres_text} (+{per_process} per process). {_profile_text(r.get('profile'))}"
        f"Journal rows with both actions done: {m['journal_rows_done']:,} |")


def _runs(r: dict) -> str:
    """Each run's events/s, when there are several: a median near a target says little without them."""
    each = [x["events_per_s"] for x in r.get("per_run", [])]
    return f" (runs: {', '.join(f(x) for x in each)})" if len(each) > 1 else ""


def _by(ratio: float, target: float) -> str:
    """By how much a ratio target is missed."""
    if ratio >= target or math.isnan(ratio):
        return ""
    return f" (by {f((1 - ratio / target) * 100)}%)"


def _profile_text(p: dict | None) -> str:
    """Where the app process's CPU went in the sampled run (bench.probes.CpuSampler), in a sentence."""
    if not p or not p.get("cpu_s"):
        return ""
    total = p["cpu_s"]

    def share(x):
        return f"{f(x / total * 100)}%"
    inc = p["inclusive"]
    labels = list(inc)
    owner = p.get("by_owner", {})
    libs = ", ".join(f"{k} {share(v)}" for k, v in list(p["by_library"].items())[:5])
    return (f"Where the app process's CPU went (one more run, {f(p['events_per_s'])} events/s, sampled "
            f"{f(total, 1)} s of CPU in every thread): the app's invocations {share(owner.get('app', 0))}, "
            f"the runner's polling/receive/delete/HTTP {share(owner.get('runner', 0))}; "
            f"HTTP through `requests` {share(inc[labels[0]])} (pyPreservica and the storage SDKs alike), of which "
            f"what it looks up on every request with `trust_env` on (every session of the app's, pyPreservica's "
            f"and the runner's reads the environment once; any share here is a session that still does): "
            f"`.netrc` and proxy variables "
            f"{share(inc[labels[1]])}, and the CA bundle path (`REQUESTS_CA_BUNDLE` is set on this machine) "
            f"{share(inc[labels[2]])}; azure-core pipelines {share(inc[labels[3]])}; pyPreservica "
            f"{share(inc[labels[4]])}; the thumbnail's temporary file {share(inc[labels[5]])}; by library: {libs}. ")


def _row6(r: dict) -> str:
    ind, ask = r["in_delivery"], r["asked_for"]
    best = ind["preservica_per_event"]
    ratio = OLD["preservica_per_event"] / best if best else float("nan")

    def endpoints(x):
        return ", ".join(f"{k} {f(v, 2)}" for k, v in sorted(x["preservica_by_endpoint_per_event"].items(),
                                                             key=lambda kv: -kv[1])
                         if k not in ("login", "version", "user details") and v)
    digest = (f"Teams as one digest card per delivery ({r['events']} events > `TEAMS_DIGEST_THRESHOLD` "
              f"{r['digest_threshold']})" if r["teams_digest"] else "one Teams card per event")
    rc = ind["receivers"]
    return (
        f"| 6 | Preservica requests per event: one delivery of {r['events']} events routed to all five actions, each "
        f"against a local double, until every journal row has all five done (median of {r['runs']}) | "
        f"{f(best, 2)} per event with the identifiers in the delivery; {f(ask['preservica_per_event'], 2)} with "
        f"them asked for | README of {OLD['date']}: {OLD['preservica_per_event']} per event | {f(ratio, 1)}× "
        f"fewer ({f(OLD['preservica_per_event'] / ask['preservica_per_event'], 1)}×) | ≤ 4: "
        f"{_check(best <= 4 and ask['preservica_per_event'] <= 4)} | Per event, identifiers in the delivery: "
        f"{endpoints(ind)}; asked for: {endpoints(ask)}. Login, version and user details come once per process and "
        f"are not counted per event ({ind['preservica_per_process']} in these runs). "
        f"{digest}. Journal rows with all five done: {ind['rows_all_done']}/{r['events']} and "
        f"{ask['rows_all_done']}/{r['events']}; the doubles received {rc.get('relay_deliveries', 0)} relay "
        f"deliveries, {rc.get('teams_cards', 0)} Teams card(s), {rc.get('catalogue_requests', 0)} catalogue look-ups "
        f"per run; {f(ind['total_s'], 1)} s from the POST to the last action done |")


def _row7(r: dict) -> str:
    x = r["in_delivery"]
    per = x["storage_per_event"]
    ratio = OLD["storage_per_event"] / per if per else float("nan")
    services = ", ".join(f"{k} {f(v, 2)}" for k, v in sorted(x["storage_by_service_per_event"].items()))
    ops = ", ".join(f"{k.split('|', 1)[1].replace('|', ' ')} {f(v, 2)}"
                    for k, v in sorted(x["storage_by_operation_per_event"].items(), key=lambda kv: -kv[1]) if v)
    empty = x["empty_receives_per_event"]
    runs = [y["storage_per_event"] for v in ("in_delivery", "asked_for") for y in r["per_run"][v]]
    fallbacks = [y for v in ("in_delivery", "asked_for") for y in r["per_run"][v]
                 if any(k.startswith("app|table|get") for k in y["storage"]["by_operation"])]
    spread = f" Runs, both variants: {f(min(runs), 2)}–{f(max(runs), 2)} per event." if len(runs) > 1 else ""
    if fallbacks:
        worst = max(fallbacks, key=lambda y: y["storage_per_event"])
        spread += (f" In {len(fallbacks)} of {len(runs)} runs an action's claim of its batch (one read and one "
                   f"conditional transaction) lost three races with the other actions' writes to the same journal "
                   f"rows and fell back to a read and a conditional write per event "
                   f"({f(worst['storage_per_event'], 2)} per event in that run).")
    return (
        f"| 7 | Storage requests per event, same runs as row 6: every request at the client, the app's and the "
        f"runner's (standing in for the host's receive and delete) (median of {r['runs']}) | {f(per, 2)} per event "
        f"({services}); {f(per - empty, 2)} without the runner's empty polls | README of {OLD['date']}: "
        f"~{OLD['storage_per_event']} per event | {f(ratio, 1)}× fewer | ≤ 3: {_check(per <= 3)} | Of them the "
        f"thumbnail blob itself: {f(x['thumbnail_puts_per_event'], 2)} per event. By operation, per event: {ops}. "
        f"Identifiers asked for: {f(r['asked_for']['storage_per_event'], 2)} per event.{spread} The empty polls "
        f"depend on time, not events: six idle queues polled with back-off up to `maxPollingInterval` (2 s) while "
        f"the run lasts |")


def _row(out: list, rows: dict, wanted, failures, n: int, title: str, render) -> None:
    """Row n rendered, or the line saying it failed when it was asked for."""
    if rows.get(n):
        out.append(render(rows[n]))
    elif n in wanted:
        out.append(_failed(n, title, failures))


def _row8(r: dict) -> str:
    rate = r["rate"]
    later = r["max_1s_after_first_second"]
    why = ""
    return (
        f"| 8 | Preservica request rate: the row 3 pipeline flat out, {r['events']:,} events ({r['deliveries']} "
        f"deliveries), `PRESERVICA_MAX_RPS={rate}` | at most {r['max_1s']} requests in any one second at the "
        f"double ({r['max_1s_first_second']} in the first, {later} later); {f(r['mean_rps'], 1)}/s on "
        f"average over {f(r['span_s'], 1)} s | the setting: {rate}/s | {f(r['max_1s'] / rate, 2)}× the setting "
        f"in the busiest second | ≤ {rate} + 1 in any second: {_check(r['met'])}{why}; within the bucket's "
        f"envelope (rate × T + 1 in any T s): {_check(r['within_envelope'])} | "
        f"{r['requests']:,} requests ({f(r['requests_per_event'], 2)} per event), so this process's ceiling at "
        f"this setting is {f(r['bound_events_per_s'], 1)} events/s; it moved {f(r['events_per_s'], 1)} events/s. "
        f"The bucket holds one token, so requests are spaced 1/{rate} s apart whatever the pauses. At the "
        f"default (10) the ceiling is {f(10 / r['requests_per_event'], 1)} events/s per instance for "
        f"`journal,thumbnail` |")


def _sizes_note(a, rows) -> str:
    """Why the sizes are below the issue's, with what they would cost here, from this run's own rates."""
    text = (f"- Sizes: {a.deliveries:,} deliveries (row 2) and {a.events:,} events (row 3), not the issue's 2,000 "
            f"and 10,000, to keep `make bench` short: with every row it takes about a quarter of an hour on this 2-core "
            f"machine, row 4's `MAX_BODY_BYTES` delivery (35 pages) a few minutes of it.")
    r2, r3 = rows.get(2), rows.get(3)
    try:
        thumbs = a.deliveries / r2["ours"]["all_thumbnails_s"]
        events = r3["events_per_s"]
        minutes = a.runs * (2000 / thumbs + 10000 / events) / 60
        text += (f" Here the app's one process stores ~{thumbs:.0f} thumbnails/s behind its acknowledgements (row 2 "
                 f"waits for them between runs) and moves ~{events:.0f} events/s end to end, so the issue's sizes "
                 f"would take about {minutes:.0f} min for rows 2 and 3")
    except (TypeError, KeyError, ZeroDivisionError):
        pass
    return text + "; `python -m bench --deliveries 2000 --events 10000` runs them."


NOTES = [
    "- Each figure is the median of the runs; each ratio is taken within one run, then its median.",
    "- Row 2: latency runs from a delivery's first attempt to the end of the answer that acknowledged it. Senders "
    "(their own process; `http.client`, chunked bodies, keep-alive where the server allows it) retry a failed "
    "connection or a 5xx after 1 s for up to 120 s. Closed loop: each sender sends its next delivery once the last is "
    "answered, so latency ≈ senders ÷ throughput.",
    "- Reference: pyPreservica's `WebHookHandler`, by default served as its documentation shows (`HTTPServer`: one "
    "request at a time, listen backlog 5), `do_WORK` = `EntityAPI.asset` + `EntityAPI.thumbnail` + a Blob upload "
    "per event, with one "
    "`EntityAPI` built at start (the documented example builds one per delivery: a login and two more calls each). It "
    "answers HTTP/1.0 without a length, so its answer ends only when `do_WORK` returns; its listen queue overflows "
    "under concurrent senders (connection resets). It gets 1.5 deliveries per sender (`--ref-deliveries`), since it "
    "serves one at a time: its latencies stay below its steady state (senders × action time), which flatters it.",
    "- App: the local runner with the project's `host.json` (queue polling up to 2 s; at the 100 ms minimum the "
    "runner's idle pollers alone took ~28% of a core here and Azurite ~23%). The runner's listen backlog is "
    "512, as Kestrel's in front of the real host (http.server's default of 5 resets connections of 32 concurrent "
    "senders). \"Intake alone\" is a runner with no queue trigger: Flex Consumption scales HTTP "
    "functions on instances apart from queue-triggered ones; in \"one process\" the thumbnail work shares its CPU.",
    "- Row 3: per-stage wall time and CPU from timers around `intake.handle`, `dispatch.dispatch` and "
    "`pipeline.runner.run` in the runner's process (wall includes waiting on storage and for the GIL); a stage's CPU "
    "includes the thread pools it hands work to (Preservica snapshots, queue puts, a batch's events); \"host/runner\" "
    "is the rest of that process (queue polling, receive and delete, HTTP). An action message carries a batch of "
    "events: the run ends when every event is performed (the outcomes `pipeline.runner.run` returns), not after a "
    "number of invocations. Azurite's and the double's CPU from /proc. \"Where the CPU went\" is one more run, "
    "not in the medians, with a sampler that every 10 ms charges each thread's CPU (its own CPU clock) to the stack "
    "it is on (`bench/probes.py` `CpuSampler`; cProfile with a per-thread CPU timer slowed the run 5× and charged "
    "its per-call overhead to the most-called functions); the full breakdown is in the JSON (`rows.3.profile`).",
    "- Storage floors (rows 2 and 3), measured after each run on the same Azurite by `bench/floor.py` in its own "
    "process: threads as many as the senders (`--concurrency`), each with its own SDK clients built with the "
    "defaults, repeat the row's storage requests with their sizes. Row 2: one queue put of intake's message per "
    "delivery sent (base64, as the app sends it); \"of the puts' rate\" is deliveries acknowledged per second "
    "over puts per second, so 50% means intake takes twice a bare put per delivery. Row 3: the run's requests as "
    "counted at the client (the app's, and the runner's receives and deletes; not the empty polls, which depend "
    "on time, nor the one-off creation of queues, containers and tables), a receive repeated with its deletes, "
    "a table transaction with as many upserts as the app's had; the floor is the run's events over the floor's "
    "wall time. The counter is installed during row 3's runs (a few µs per request). The floor leaves out "
    "Preservica and the app's own CPU: it is what the storage allows, not what the app could do.",
    "- `PRESERVICA_MAX_RPS` is set to 100,000 (never binding here) in rows 2, 3, 6 and 7, so that they measure the "
    "pipeline as the figures of 2026-11-29 did, before the limit existed; row 8 sets a binding one.",
    "- Row 4: a delivery of five dispatcher pages (5,000 events at `MAX_EVENTS_PER_DELIVERY`'s default; until the "
    "paging dispatcher, anything over 1,000 events was answered 400) and one of as many events as fit in "
    "`MAX_BODY_BYTES` (4 MiB: about 34,000), each acknowledged by `intake.handle` and then dispatched a message "
    "at a time from the delivery queue, as the queue trigger would; the app's storage requests counted at the "
    "client, every event's journal job and row counted after. The second delivery runs once (35 pages).",
    "- Rows 6 and 7: one delivery POSTed through the local runner, all five actions routed and configured against "
    "local doubles (Preservica in its own process; Teams, catalogue and relay receiver in another), run until every "
    "event's journal row has all five done; once with each event carrying its identifiers (`\"identifiers\": "
    "[{\"catalogue\": \"C/1\"}]`, what a subscription made with includeIdentifiers=true sends), once without, so "
    "the dispatcher asks Preservica for them. Preservica requests are counted at the double, by endpoint; login, "
    "version and user details happen once per process and are not counted per event. Storage requests are counted "
    "at the client (a wrapper around azure-core's `RequestsTransport.send`, installed in the benchmark's process), "
    "the app's and the local runner's (which stands in for the host's receive and delete), retries included: an "
    "action claims its batch with one read and one conditional transaction, and one that lost a race with another "
    "action's write to the same journal rows reads and writes again (after three lost races, one event at a time; "
    "a lost conditional write shows as 412). The figures of 2026-11-29 are quoted from the README of that date: the "
    "design they measured is not in the tree any more.",
    "- Row 8: arrival times at the Preservica double. The app's token bucket holds one token refilled at "
    "`PRESERVICA_MAX_RPS`, so requests are spaced 1/rate apart: at most rate × T + 1 in any T seconds, rate + 1 in "
    "any one second, after a pause as at the start.",
    "- Row 5: each timing is the best of 5 within a run (timeit's advice: the others measure other load), then the "
    "median across runs; the floor is `hmac.digest` (one OpenSSL call) over the signed bytes.",
    "- The Preservica double, the load generator and the reference each run in their own process; all on 127.0.0.1.",
    "- Row 10: each configuration is one delivery run through intake, the dispatcher and the routed action's queue "
    "in the benchmark's process (after one unmeasured pass that creates the queues, tables and containers); its "
    "assumptions, the price table (`bench/prices.toml`, with each price's page, date and status) and what each line "
    "buys are in docs/benchmarks.md.",
]


def _failed(n: int, name: str, failures: dict) -> str:
    why = (failures.get(n) or "not run").strip().splitlines()[-1].replace("|", "/")
    return f"| {n} | {name} | n/a | n/a | n/a | – | failed: {why} |"


def _interrupt(*_):
    raise KeyboardInterrupt   # so that the finally blocks stop every server this run started


def main(argv=None) -> int:
    a = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    command = "python -m bench" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        sys.argv[1:] if argv is None else argv))
    info = machine()
    t0 = time.monotonic()
    result = run(a)
    wall = time.monotonic() - t0
    table = render(result, a, info, wall, command)
    print(table)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(table)
    raw = {"machine": info, "wall_s": wall, "options": {k: (str(v) if isinstance(v, Path) else v)
                                                        for k, v in vars(a).items()},
           "rows": result["rows"], "failures": result["failures"]}
    a.out.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str))
    progress(f"saved {a.out} and {a.out.with_suffix('.json').name}; total wall time {wall:.0f} s")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
