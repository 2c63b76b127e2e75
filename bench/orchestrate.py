"""`python -m bench`'s run: Azurite, the Preservica double, the runners and the reference started as the
rows asked for (`--rows`) need them, each row measured in turn, and everything stopped at the end, also when a
row fails (its traceback is kept and the others go on)."""
from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

from bench import ack, budget, coldstart, cost, cost_row, custody, intake_cpu, large, pipeline
from bench.common import ROOT, Service
from bench.probes import StorageCounter
from bench.stage_clock import StageClock


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
                rows[1] = guard(failures, 1, lambda: coldstart.run(a.cold_samples, storage, progress))

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
                    solo = ack.intake_only_runner(Runner)(
                        ROOT, port=0, host_json=pipeline.bench_host_json(tmp / "host.json"), env=env).start()
                    started.append(solo)
                    alone = guard(failures, "2 (intake alone)", lambda: ack.intake_alone(
                        solo, storage, deliveries=a.deliveries, concurrency=a.concurrency, assets=assets, runs=a.runs,
                        progress=progress))
                    if alone is not None:
                        profile = guard(failures, "2 (intake profile)", lambda: ack.intake_profile(
                            solo, az.proc.pid, deliveries=a.deliveries, concurrency=a.concurrency, assets=assets,
                            progress=progress))
                        alone = {"runs": alone, "profile": profile}
                    solo.stop()
                    started.remove(solo)
                    ack.clear_queue(storage, "preservica-deliveries")   # nobody is to dispatch those
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
                    rows[2] = guard(failures, 2, lambda: ack.ack_latency(
                        runner, clock, double, reference, deliveries=a.deliveries, ref_deliveries=a.ref_deliveries,
                        concurrency=a.concurrency, latency=a.latency, assets=assets, runs=a.runs, alone=alone,
                        progress=progress))
                    reference.stop()
                    started.remove(reference)
                if 3 in a.rows:
                    progress("row 3: pipeline throughput")
                    rows[3] = guard(failures, 3, lambda: pipeline.pipeline(
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
                    five = guard(failures, 6 if 6 in a.rows else 7, lambda: cost.five_actions(
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
                    rows[8] = guard(failures, 8, lambda: cost.rate_limit(
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
                rows[4] = guard(failures, 4, lambda: large.large_delivery(
                    env, events=a.large, runs=a.runs, quick=a.quick, progress=progress))
            if 5 in a.rows:
                progress("row 5: intake CPU")
                rows[5] = guard(failures, 5, lambda: intake_cpu.intake_cpu(env, iterations=a.cpu_iterations,
                                                                          runs=max(a.runs, 3), progress=progress))
            if 9 in a.rows:
                progress("row 9: one Preservica budget shared by runner processes")
                rows[9] = guard(failures, 9, lambda: budget.from_bench(a, storage, tmp, progress))
            if 11 in a.rows:
                progress(f"row 11: custody copy of {a.custody_mib} MiB against a raw upload")
                rows[11] = guard(failures, 11, lambda: custody.row(storage, a.custody_mib * 2 ** 20, a.runs, progress))
            if 10 in a.rows:   # last: it sets up the OpenTelemetry SDK in this process
                progress("row 10: what a million events cost")
                rows[10] = guard(failures, 10, lambda: cost_row.row(storage, tmp, events=a.million_events,
                                                                   progress=progress))
        finally:
            for thing in reversed(started):
                try:
                    thing.remove() if isinstance(thing, (StageClock, StorageCounter)) else thing.stop()
                except Exception:
                    progress(f"could not stop {type(thing).__name__}: {traceback.format_exc()}")
    return {"rows": rows, "failures": failures}


def guard(failures: dict, row: int, fn):
    try:
        return fn()
    except Exception:
        failures[row] = traceback.format_exc()
        progress(f"row {row} failed:\n{failures[row]}")
        return None
