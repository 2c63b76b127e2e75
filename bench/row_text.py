"""The table's text of rows 3 (the pipeline, its floor and profile), 6 and 7 (requests per event) and 8
(the Preservica request rate)."""
from __future__ import annotations

from bench.fmt import by, check, f, ms

# The figures of the design before "Cost per event" (README, 2026-11-29), which is not in the tree any more:
# counts of requests per event, which do not depend on the machine. Throughput rows divide only by figures of
# the same run (their storage floors, bench/floor.py).
OLD = {"date": "2026-11-29", "preservica_per_event": 12.7, "storage_per_event": 25}
FLOOR_TARGET = {"pipeline": 0.5, "intake": 0.5}   # of the floor's rate: the pipeline ≥ 50%; intake within 2×


def floor3(r: dict) -> tuple[str, str]:
    m = r["median_run"]
    fl = m["floor"]
    return (f"bare client loop, {fl['concurrency']} threads, the run's {fl['requests']:,} storage requests: "
            f"{f(r['floor_events_per_s'])} events/s ({f(fl['wall_s'], 1)} s)",
            f"{f(r['of_floor'] * 100)}%")


def _floor_detail3(r: dict) -> str:
    m = r["median_run"]
    ops = "; ".join(_op_text(o) for o in m["floor_ops"])
    lat = ", ".join(f"{k} p50 {ms(v['p50_ms'])}" for k, v in m["floor"]["by_op"].items())
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


def row3(r: dict) -> str:
    m = r["median_run"]
    st, cpu = m["stages"], m["cpu_s"]

    def stage(name):
        return st.get(name) or {"calls": 0, "wall": 0.0, "cpu": 0.0, "pool_cpu": 0.0, "events": 0,
                                "last": float("nan")}
    names = (("intake", "intake"), ("dispatch", "dispatch"), ("action_journal", "journal"),
             ("action_thumbnail", "thumbnail"))
    ends = ", ".join(f"{label} {f(stage(k)['last'], 1)} s" for k, label in names)
    per_call = ", ".join(f"{label} {ms(stage(k)['wall'] / stage(k)['calls'] * 1000) if stage(k)['calls'] else '–'}"
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
        f"{check(r['of_floor'] >= FLOOR_TARGET['pipeline'])}{by(r['of_floor'], FLOOR_TARGET['pipeline'])} | "
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



def _profile_text(p: dict | None) -> str:
    """Where the app process's CPU went in the sampled run (bench.cpu_sampler.CpuSampler), in a sentence."""
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


def row6(r: dict) -> str:
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
        f"{check(best <= 4 and ask['preservica_per_event'] <= 4)} | Per event, identifiers in the delivery: "
        f"{endpoints(ind)}; asked for: {endpoints(ask)}. Login and version come once per process (the actions "
        f"never ask for user details) and are not counted per event ({ind['preservica_per_process']} in these runs). "
        f"{digest}. Journal rows with all five done: {ind['rows_all_done']}/{r['events']} and "
        f"{ask['rows_all_done']}/{r['events']}; the doubles received {rc.get('relay_deliveries', 0)} relay "
        f"deliveries, {rc.get('teams_cards', 0)} Teams card(s), {rc.get('catalogue_requests', 0)} catalogue look-ups "
        f"per run; {f(ind['total_s'], 1)} s from the POST to the last action done |")


def row7(r: dict) -> str:
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
        f"~{OLD['storage_per_event']} per event | {f(ratio, 1)}× fewer | ≤ 3: {check(per <= 3)} | Of them the "
        f"thumbnail blob itself: {f(x['thumbnail_puts_per_event'], 2)} per event. By operation, per event: {ops}. "
        f"Identifiers asked for: {f(r['asked_for']['storage_per_event'], 2)} per event.{spread} The empty polls "
        f"depend on time, not events: six idle queues polled with back-off up to `maxPollingInterval` (2 s) while "
        f"the run lasts |")


def row8(r: dict) -> str:
    rate = r["rate"]
    later = r["max_1s_after_first_second"]
    why = ""
    return (
        f"| 8 | Preservica request rate: the row 3 pipeline flat out, {r['events']:,} events ({r['deliveries']} "
        f"deliveries), `PRESERVICA_MAX_RPS={rate}` | at most {r['max_1s']} requests in any one second at the "
        f"double ({r['max_1s_first_second']} in the first, {later} later); {f(r['mean_rps'], 1)}/s on "
        f"average over {f(r['span_s'], 1)} s | the setting: {rate}/s | {f(r['max_1s'] / rate, 2)}× the setting "
        f"in the busiest second | ≤ {rate} + 1 in any second: {check(r['met'])}{why}; within the bucket's "
        f"envelope (rate × T + 1 in any T s): {check(r['within_envelope'])} | "
        f"{r['requests']:,} requests ({f(r['requests_per_event'], 2)} per event), so this process's ceiling at "
        f"this setting is {f(r['bound_events_per_s'], 1)} events/s; it moved {f(r['events_per_s'], 1)} events/s. "
        f"Requests are booked 1/{rate} s apart, and each occupies the rate from its release until a second after "
        f"its answer, so no second of arrivals holds more than {rate}. At the "
        f"default (10) the ceiling is {f(10 / r['requests_per_event'], 1)} events/s per instance for "
        f"`journal,thumbnail` |")


def _ack_ahead(r: dict, intake_last: float) -> str:
    """How much sooner Preservica has its answers than the work is done: the point of queuing."""
    try:
        return f"{r['total_s'] / intake_last:,.0f}×"
    except (TypeError, ZeroDivisionError):
        return "n/a"
