"""Rows 6-8: what one event costs, and the Preservica request rate under load.

Rows 6 and 7 come from the same runs: one delivery of `events` events routed to all five actions
(`FULL_TEXT_INDEXED=journal,thumbnail,teams,catalogue,relay`), each action configured against a local
double (Preservica: bench.preservica_proc; Teams, catalogue, relay receiver: bench.receivers_proc),
POSTed to the local runner and run until every event's journal row has all five actions done. Row 6
counts the requests Preservica (the double) received, by endpoint; row 7 every storage request the
app's clients and the runner's queue clients sent (bench.probes.StorageCounter), by service. Each
variant runs twice over: events that carry their identifiers (a subscription made with
includeIdentifiers=true) and events that do not, so the dispatcher asks Preservica for them.

Row 8 runs the row 3 pipeline flat out with a low PRESERVICA_MAX_RPS and reads, at the double, the
most requests that arrived within any one second.
"""
from __future__ import annotations

from bench.common import median
from bench.pipeline import count_done, environment, finish_load, load_spec, settle, start_load
from bench.preservica_proc import PER_PROCESS

ALL = ("journal", "thumbnail", "teams", "catalogue", "relay")
VARIANTS = (("in_delivery", True), ("asked_for", False))


# ---- rows 6 and 7 --------------------------------------------------------------------------------

def five_actions(runner, clock, counter, double, receivers, *, events: int, runs: int, progress=print) -> dict:
    from handlers.actions.teams import DIGEST_THRESHOLD
    settings = dict(receivers.info["settings"], PRESERVICA_ROUTES=f"FULL_TEXT_INDEXED={','.join(ALL)};*=journal")
    out: dict = {name: [] for name, _ in VARIANTS}
    with environment(settings):
        digest = events > DIGEST_THRESHOLD.int_value()
        for r in range(runs):
            for name, in_payload in VARIANTS:
                x = _five_once(runner, clock, counter, double, receivers, events=events, in_payload=in_payload,
                               digest=digest)
                out[name].append(x)
                progress(f"  five actions run {r + 1}/{runs}, identifiers {name.replace('_', ' ')}: "
                         f"{x['preservica_per_event']:.2f} Preservica requests and {x['storage_per_event']:.2f} "
                         f"storage requests per event; {x['rows_all_done']}/{events} rows with all five done "
                         f"in {x['total_s']:.1f} s")
    summary = {name: _summarize(rows) for name, rows in out.items()}
    return {"events": events, "runs": runs, "actions": list(ALL), "teams_digest": digest,
            "digest_threshold": DIGEST_THRESHOLD.int_value(), "completed": all(
                x["completed"] for rows in out.values() for x in rows), **summary, "per_run": out}


def _five_once(runner, clock, counter, double, receivers, *, events: int, in_payload: bool, digest: bool) -> dict:
    settle(runner)
    double.call(cmd="mark")
    counter.reset()
    clock.reset()
    before = receivers.call(cmd="stats")
    spec = load_spec(runner.url, 1, 1, events, per=events)
    spec["identifiers"] = in_payload
    proc = start_load(spec)
    want = {a: events for a in ALL}
    if digest:
        want["teams"] = 1   # one digest card for the delivery; it settles every event's teams state
    done = runner.wait_for(lambda: all(clock.performed(f"action_{a}") >= want[a] for a in ALL),
                           timeout=max(120.0, events * 0.5))
    res = finish_load(proc, spec)
    settle(runner)   # the runner's deletes of the last messages belong to this run
    stages = clock.snapshot()
    storage = counter.snapshot()
    tally = double.call(cmd="tally")
    after = receivers.call(cmd="stats")
    last = max((stages.get(f"action_{a}", {}).get("last") or 0) for a in ALL)
    rows_done = count_done(spec["subscription"], ALL)

    by_endpoint = tally["by_endpoint"]
    per_process = sum(by_endpoint.get(k, 0) for k in PER_PROCESS)
    pipeline = {k: v for k, v in storage.items() if k.split("|")[0] in ("app", "runner")}
    by_service: dict = {}
    for key, n in pipeline.items():
        _, service, _ = key.split("|")
        by_service[service] = by_service.get(service, 0) + n
    empty = sum(n for k, n in pipeline.items() if k.endswith("|receive (empty)"))
    thumbnails = sum(n for k, n in pipeline.items() if k.startswith("app|blob|put") and "thumbnail" in k)
    total_storage = sum(pipeline.values())
    return {"events": events, "identifiers_in_delivery": in_payload, "completed": done,
            "total_s": (last - res["first_post"]) if done else float("nan"),
            "acked": sum(1 for row in res["results"] if row[3] == 200),
            "rows_all_done": rows_done,
            "preservica": {"requests": tally["requests"], "per_process": per_process, "by_endpoint": by_endpoint},
            "preservica_per_event": (tally["requests"] - per_process) / events,
            "storage": {"requests": total_storage, "by_service": by_service, "empty_receives": empty,
                        "thumbnail_puts": thumbnails, "by_operation": pipeline,
                        "bench_own": {k: v for k, v in storage.items() if k not in pipeline}},
            "storage_per_event": total_storage / events,
            "receivers": {k: after[k] - before[k] for k in after}}


def _summarize(rows: list[dict]) -> dict:
    def med(f):
        return median([f(x) for x in rows])
    m = sorted(rows, key=lambda x: x["storage_per_event"])[len(rows) // 2]
    endpoints = sorted({k for x in rows for k in x["preservica"]["by_endpoint"]})
    services = sorted({k for x in rows for k in x["storage"]["by_service"]})
    ops = sorted({k for x in rows for k in x["storage"]["by_operation"]})
    return {"preservica_per_event": med(lambda x: x["preservica_per_event"]),
            "preservica_by_endpoint_per_event": {
                k: med(lambda x, k=k: x["preservica"]["by_endpoint"].get(k, 0) / x["events"]) for k in endpoints},
            "preservica_per_process": max(x["preservica"]["per_process"] for x in rows),
            "storage_per_event": med(lambda x: x["storage_per_event"]),
            "storage_by_service_per_event": {
                k: med(lambda x, k=k: x["storage"]["by_service"].get(k, 0) / x["events"]) for k in services},
            "storage_by_operation_per_event": {
                k: med(lambda x, k=k: x["storage"]["by_operation"].get(k, 0) / x["events"]) for k in ops},
            "empty_receives_per_event": med(lambda x: x["storage"]["empty_receives"] / x["events"]),
            "thumbnail_puts_per_event": med(lambda x: x["storage"]["thumbnail_puts"] / x["events"]),
            "total_s": med(lambda x: x["total_s"]),
            "rows_all_done": min(x["rows_all_done"] for x in rows),
            "receivers": m["receivers"]}


# ---- row 8 -----------------------------------------------------------------------------------------

def rate_limit(runner, clock, double, *, rate: int, events: int, batch: int, concurrency: int,
               progress=print) -> dict:
    """The row 3 pipeline (journal, thumbnail) flat out with PRESERVICA_MAX_RPS = rate."""
    import math
    n = math.ceil(events / batch)
    expected = n * batch
    settle(runner)
    with environment({"PRESERVICA_MAX_RPS": str(rate), "PRESERVICA_ROUTES": "*=journal,thumbnail"}):
        double.call(cmd="mark")
        clock.reset()
        spec = load_spec(runner.url, n, min(concurrency, n), expected, per=batch)
        proc = start_load(spec)
        done = runner.wait_for(lambda: all(clock.performed(f"action_{a}") >= expected
                                           for a in ("journal", "thumbnail")),
                               timeout=max(120.0, 4.0 * expected / rate + 60))
        res = finish_load(proc, spec)
        tally = double.call(cmd="tally", rate=rate)
        stages = clock.snapshot()
    settle(runner)
    last = max((stages.get(f"action_{a}", {}).get("last") or 0) for a in ("journal", "thumbnail"))
    total = (last - res["first_post"]) if done else float("nan")
    per_event = tally["requests"] / expected
    row = {"rate": rate, "events": expected, "deliveries": n, "completed": done, "total_s": total,
           "events_per_s": expected / total if done and total else float("nan"),
           "requests": tally["requests"], "by_endpoint": tally["by_endpoint"], "requests_per_event": per_event,
           "bound_events_per_s": rate / per_event if per_event else float("nan"),
           "mean_rps": tally["requests"] / tally["span_s"] if tally["span_s"] else float("nan"),
           **{k: tally[k] for k in ("max_1s", "max_1s_first_second", "max_1s_after_first_second", "span_s",
                                    "longest_pause_s", "envelope_excess")}}
    # Requests are booked 1/rate apart (every interval of T seconds at most rate x T + 1) and each occupies
    # the rate until a second after its answer (clients/bucket.py), so a second of arrivals at the double
    # holds at most rate; the promise is rate + 1.
    row["met"] = row["max_1s"] <= rate + 1
    row["within_burst"] = row["met"]
    row["within_envelope"] = tally["envelope_excess"] is not None and tally["envelope_excess"] <= 1
    progress(f"  rate limit {rate}/s: {tally['requests']} requests over {tally['span_s']:.1f} s, at most "
             f"{row['max_1s_first_second']} in a second starting in the first second and "
             f"{row['max_1s_after_first_second']} later (longest pause {tally['longest_pause_s']:.2f} s, "
             f"envelope excess {tally['envelope_excess']:.1f}); {row['events_per_s']:.1f} events/s")
    return row
