"""Row 9: one Preservica budget for the whole app. 1, 2 and 4 local runner processes (each one "instance":
its own intake, dispatcher and actions, its own SharedBudget) share one Azurite and one Preservica double,
with PRESERVICA_MAX_RPS = rate for them all. Deliveries are spread over the processes' intakes; the
thumbnail action asks Preservica for each event. At the double: the most requests in any one second (the
budget holds if that is at most rate + 1), and the events per second the processes finished together. The
first count (1) runs again last: "not slower" compares each other count with the slower of those two runs,
so that the target is judged beyond the baseline's own run-to-run spread, and the ratios are to their mean.

    python -m bench.budget [--rate 10] [--events 300] [--processes 1,2,4]
    python -m bench --rows 9 [--budget-rate 10] [--budget-events 300] [--budget-processes 1,2,4]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import PYTHON, ROOT, SECRET, Service, delivery_body, ref
from bench.pipeline import app_env, bench_host_json, environment
from handlers.clients.ratelimit import REST_SECONDS, TAKING_TURNS

QUICK = {"budget_events": 20, "budget_processes": "1,2", "budget_turns": "3:1:6:2"}   # `--quick`: the code path
TURNS = "4:2:40:5"   # processes:rate:events:batch of the run in turns (more processes wanting than the budget)


def _start(port: int, host_json: Path, env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    try:
        return subprocess.Popen([PYTHON, "-m", "hookops.runner", "--app-dir", str(ROOT), "--port", str(port),
                                 "--host-json", str(host_json)], cwd=ROOT, env={**os.environ, **env},
                                stdout=out, stderr=out, start_new_session=True)
    finally:
        out.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()   # this process only, by its own handle
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _up(port: int) -> bool:
    import httpx
    try:
        return bool(httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code)
    except httpx.HTTPError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)  # polling a condition


def _done(subscription: str) -> int:
    from handlers.clients import journal
    table = journal.default().table
    from azure.core.exceptions import ResourceNotFoundError
    rows = table.query_entities("subscriptionId eq @s and thumbnail_state eq 'done'",
                                parameters={"s": subscription}, select=["RowKey"])
    try:
        return sum(1 for _ in rows)
    except ResourceNotFoundError:   # on a fresh Azurite, before the first journal write
        return 0


def one(processes: int, *, storage: str, double: Service, rate: int, events: int, batch: int, tmp: Path,
        progress=print) -> dict:
    """`processes` runners flat out on `events` events at PRESERVICA_MAX_RPS = rate."""
    import httpx

    from hookops import azurite as az
    env = app_env(storage, double.info["server"], "*=thumbnail")
    env["PRESERVICA_MAX_RPS"] = str(rate)
    host_json = bench_host_json(tmp / "host.json")
    os.environ.update(env)   # this process reads the journal
    ports = [az.free_port() for _ in range(processes)]
    procs = [_start(p, host_json, env, tmp / f"runner-{processes}-{i}.log") for i, p in enumerate(ports)]
    try:
        for p in ports:
            _wait(lambda p=p: _up(p), 120, f"runner on port {p}")
        subscription = uuid.uuid4().hex
        first = int(time.time() * 1000)
        bodies = [delivery_body([ref(i) for i in range(k, min(k + batch, events))], subscription, first + k)
                  for k in range(0, events, batch)]
        double.call(cmd="mark")
        start = time.monotonic()
        from handlers.core import signature
        with httpx.Client(timeout=60) as client:
            for i, body in enumerate(bodies):   # spread over the instances' intakes, as a load balancer would
                resp = client.post(f"http://127.0.0.1:{ports[i % processes]}/api/preservica/webhook", content=body,
                                   headers={"Preservica-Signature": signature.sign(SECRET, body)})
                resp.raise_for_status()
        _wait(lambda: _done(subscription) >= events, max(300.0, 20.0 * events / rate), "every thumbnail done")
        wall = time.monotonic() - start
        tally = double.call(cmd="tally", rate=rate)
    finally:
        for proc in procs:
            _stop(proc)
        _clear_heartbeats()
    row = {"processes": processes, "rate": rate, "events": events, "wall_s": wall,
           "events_per_s": events / wall, "requests": tally["requests"],
           "mean_rps": tally["requests"] / tally["span_s"] if tally["span_s"] else float("nan"),
           "max_1s": tally["max_1s"], "envelope_excess": tally["envelope_excess"]}
    row["met"] = row["max_1s"] <= rate + 1
    # how many processes found more processes wanting the budget than it has requests a second (ratelimit's line)
    row["took_turns"] = sum(TAKING_TURNS in (tmp / f"runner-{processes}-{i}.log").read_text(errors="replace")
                            for i in range(processes))
    progress(f"  {processes} process(es) at PRESERVICA_MAX_RPS={rate}: {events} events in {wall:.1f} s "
             f"({row['events_per_s']:.2f}/s), {tally['requests']} Preservica requests, at most {row['max_1s']} "
             f"in any one second (mean {row['mean_rps']:.1f}/s)")
    return row


def _clear_heartbeats() -> None:
    """Each run starts with no instance counted (the stopped runners' rows would count until they expire)."""
    from azure.core.exceptions import ResourceNotFoundError

    from handlers.clients import heartbeat, storage
    from handlers.core import settings
    table = storage.default().table(settings.RECONCILE_TABLE)
    try:
        rows = list(table.query_entities(f"PartitionKey eq '{heartbeat.PARTITION}'", select=["RowKey"]))
    except ResourceNotFoundError:   # no process counted: nothing to clear
        return
    for e in rows:
        table.delete_entity(heartbeat.PARTITION, e["RowKey"])


def run(*, storage: str, double: Service, rate: int, events: int, batch: int, counts=(1, 2, 4),
        progress=print) -> dict:
    # one() sets the app's settings in this process (it reads the journal); they go back afterwards
    with environment(app_env(storage, "", "*=thumbnail")), tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        rows = [one(n, storage=storage, double=double, rate=rate, events=events, batch=batch, tmp=Path(tmp),
                    progress=progress) for n in (*counts, counts[0])]
    baseline, rows = [rows[0], rows[-1]], rows[:-1]
    rates = [b["events_per_s"] for b in baseline]
    base = sum(rates) / 2
    return {"rate": rate, "events": events, "runs": rows, "baseline_again": baseline[1],
            "baseline_events_per_s": rates, "held": all(r["met"] for r in (*rows, baseline[1])),
            "not_slower": all(r["events_per_s"] >= min(rates) for r in rows[1:]),
            "ratio": {r["processes"]: r["events_per_s"] / base for r in rows},
            # Each process signs in (login and version) inside the budget: at the budget, n processes move at
            # most the first run's requests over their own, whatever the sharing does.
            "ceiling": {r["processes"]: rows[0]["requests"] / r["requests"] for r in rows}}


def render(r: dict) -> str:
    counts = [x["processes"] for x in r["runs"]]
    named = ", ".join(map(str, counts[:-1])) + f" and {counts[-1]}" if len(counts) > 1 else str(counts[0])
    runs = "; ".join(f"{x['processes']}: {x['events_per_s']:.2f} events/s, at most {x['max_1s']} requests in any "
                     f"second (mean {x['mean_rps']:.1f}/s)" for x in r["runs"])
    again = r["baseline_again"]
    runs += (f"; {again['processes']} again: {again['events_per_s']:.2f} events/s, at most {again['max_1s']} "
             f"requests in any second (mean {again['mean_rps']:.1f}/s)")
    t = r.get("turns")
    if t:   # more processes than the budget has requests a second: whole shares, in turns
        runs += (f"; in turns, {t['processes']} processes at `PRESERVICA_MAX_RPS={t['rate']}` ({t['events']} events): "
                 f"{t['took_turns']} of them took turns, at most {t['max_1s']} requests in any second "
                 f"(mean {t['mean_rps']:.2f}/s), {t['events_per_s']:.2f} events/s")
    bound = f"at most {r['rate'] + 1} in any second" + (f" (in turns {t['rate'] + 1})" if t else "")
    return (f"| 9 | One Preservica budget: {named} runner processes share one Azurite and one Preservica double, "
            f"`PRESERVICA_MAX_RPS={r['rate']}`, {r['events']} events routed to `thumbnail` | {runs} | budget "
            f"{r['rate']}/s in all | – | {bound}: "
            f"{'met' if r['held'] else '**not met**'}; more processes not slower than {counts[0]} beyond its own "
            f"spread ({counts[0]} run first and last: {' and '.join(f'{x:.2f}' for x in r['baseline_events_per_s'])} "
            f"events/s; to their mean "
            f"{', '.join(f'{n}: {x:.2f}×' for n, x in r['ratio'].items() if n != counts[0])}): "
            f"{'met' if r['not_slower'] else '**not met**'}; their sign-ins (login and version, once per process: "
            f"{', '.join(str(x['requests']) for x in r['runs'])} requests) allow at most "
            f"{', '.join(f'{n}: {x:.3f}×' for n, x in r['ceiling'].items() if n != counts[0])} "
            f"| each busy process uses a whole share of the budget, "
            f"at most the budget less the other live processes' claims (heartbeat rows), booked 1/budget s apart; "
            f"a request occupies its process's share from its release until a second after its answer, so no "
            f"second of arrivals holds more than the share; a cut stays claimed until those requests age out; "
            f"a process that wants none for {REST_SECONDS:g} s rests (claims only what its window holds, and no "
            f"fair share); alone, the whole budget from its first call; more processes wanting than the budget has "
            f"requests a second: each holds one while one is free, and gives it back after its turn (one request; "
            f"with dozens of processes, as many as the seconds between its counts) |")


def forget_share() -> None:
    """The in-process runner's share of the Preservica budget goes with the runner, as a stopped process's would
    (its row lapses): its idle watcher would otherwise delete the row while the next rows count storage writes."""
    from handlers.clients import preservica
    preservica._bucket.reset()


def add_arguments(p: argparse.ArgumentParser, prefix: str = "budget-") -> None:
    """This row's options, on its own (`--rate`) or in `python -m bench` (`--budget-rate`)."""
    row = "row 9: " if prefix else ""
    p.add_argument(f"--{prefix}rate", type=int, default=10, help=f"{row}PRESERVICA_MAX_RPS, the whole app's (default 10)")
    p.add_argument(f"--{prefix}events", type=int, default=300, help=f"{row}events per run (default 300)")
    p.add_argument(f"--{prefix}batch", type=int, default=25, help=f"{row}events per delivery (default 25)")
    p.add_argument(f"--{prefix}processes", default="1,2,4", help=f"{row}runner processes per run (default 1,2,4)")
    p.add_argument(f"--{prefix}turns", default=TURNS,
                   help=f"{row}one more run with more processes than requests a second, PROCESSES:RATE:EVENTS:BATCH "
                        f"(default {TURNS}; empty: none)")


def row(storage: str, tmp: Path, *, rate: int, events: int, batch: int, processes: str, turns: str = TURNS,
        progress=print) -> dict:
    """The row on the given Azurite, with a Preservica double of its own; then, unless `turns` is empty, one run
    with more processes than the budget has requests a second (ratelimit: whole shares taken in turns)."""
    spec = [int(x) for x in turns.split(":")] if turns else []
    if spec and len(spec) != 4:
        raise SystemExit(f"--budget-turns {turns!r}: PROCESSES:RATE:EVENTS:BATCH, e.g. {TURNS}")
    double = Service(["-m", "bench.preservica_proc", "--assets", str(max([events, *spec[2:3]]))], "Preservica double",
                     Path(tmp) / "budget-preservica.log").start()
    try:
        r = run(storage=storage, double=double, rate=rate, events=events, batch=batch,
                counts=tuple(int(x) for x in str(processes).split(",")), progress=progress)
        if spec:
            n, t_rate, t_events, t_batch = spec
            with environment(app_env(storage, "", "*=thumbnail")), \
                    tempfile.TemporaryDirectory(prefix="bench-budget-") as t:
                r["turns"] = one(n, storage=storage, double=double, rate=t_rate, events=t_events, batch=t_batch,
                                 tmp=Path(t), progress=progress)
            r["held"] = r["held"] and r["turns"]["met"]
        return r
    finally:
        double.stop()


def own_azurite(tmp: Path, **sizes) -> dict:
    """The row on an Azurite of its own: on the benchmark's, the rows before it left tens of thousands of journal
    rows, and each poll for the thumbnails done scanned them (Azurite at 60% of a core, so that the run measured
    the storage's load, not the budget: 1 process at 8.8 requests/s)."""
    from hookops import azurite as azurite_mod
    az = azurite_mod.start_on_free_ports(Path(tmp) / "budget-azurite")
    try:
        return row(az.connection_string, Path(tmp), **sizes)
    finally:
        az.stop()


def from_bench(a: argparse.Namespace, storage: str, tmp: Path, progress) -> dict:
    """Row 9 in `python -m bench` (its --quick: two small runs, so the code path is checked, not the figure)."""
    sizes = {k: getattr(a, k) for k in ("budget_rate", "budget_events", "budget_batch", "budget_processes",
                                        "budget_turns")}
    if a.quick:
        sizes.update(QUICK)
    return own_azurite(tmp, progress=progress, **{k.removeprefix("budget_"): v for k, v in sizes.items()})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__.splitlines()[0])
    add_arguments(p, prefix="")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        r = own_azurite(Path(tmp), rate=a.rate, events=a.events, batch=a.batch, processes=a.processes,
                        turns=a.turns, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(render(r))
    print(json.dumps(r, indent=1), file=sys.stderr)
    return 0 if r["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
