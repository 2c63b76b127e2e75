"""The benchmark table: one line per row asked for (its figures, or why it failed), the storage floors' two
cells on every line (rows 2 and 3 their own, "–" elsewhere), then the notes."""
from __future__ import annotations

import argparse
import datetime as dt
import re

from bench import budget, costmodel, custody, large
from bench.common import machine
from bench.fmt import check, f, ms, retries
from bench.notes import NOTES, sizes_note
from bench.row_text import FLOOR_TARGET, floor3, row3, row6, row7, row8


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

    for n, title, text in ((1, "Cold start", row1), (2, "Ack latency under load", row2),
                           (3, "Pipeline throughput", row3), (4, "Large deliveries", large.row_text),
                           (5, "Intake CPU", row5), (6, "Preservica requests per event", row6),
                           (7, "Storage requests per event", row7), (8, "Preservica request rate", row8),
                           (9, "One Preservica budget", budget.render),
                           (10, "What a million events cost", lambda r: costmodel.render(r, a.million_events)),
                           (11, "Custody copy", custody.render)):
        _row(out, rows, a.rows, failures, n, title, text)
    notes = list(NOTES)
    if a.reference_server != "http":
        notes.append("- This run served the reference with `ThreadingHTTPServer` (`--reference-server threading`), one "
                     "thread per request: not the documented `HTTPServer` setup.")
    if not a.quick and (a.deliveries < 2000 or a.events < 10000):
        notes.append(sizes_note(a, rows))
    out += ["", "Notes:", *notes]
    return "\n".join(floor_cells(line, rows) for line in out) + "\n"


def row1(r: dict) -> str:
    """Row 1: cold start."""
    pkgs = r["intake_third_party"]
    return (
        f"| 1 | Cold start: import in a fresh interpreter (median of {r['samples']}) | `import function_app` "
        f"{f(r['app_ms'])} ms | `import azure.functions` {f(r['base_ms'])} ms | {f(r['ratio'], 2)}× | "
        f"≤ 1.25×: {check(r['ratio'] <= 1.25)} | third-party packages `import function_app` adds: "
        f"{', '.join(r['app_third_party']) or 'none'}. The first `intake.handle` (signed delivery, Azurite) loads "
        f"{len(pkgs)}: {', '.join(pkgs) or 'none'} ({r['intake_new_modules']} modules) and takes "
        f"{f(r['first_ms'])} ms; the next {f(r['second_ms'], 1)} ms |")


def row2(r: dict) -> str:
    """Row 2: acknowledgement latency under load."""
    o, t, al = r["ours"], r["reference"], r.get("intake_alone")
    alone_ratio = f" (intake alone: {f(al['p99_ratio'])}×)" if al else ""
    alone_check = f" (intake alone: {check(al['p99_ratio'] >= 50)})" if al else ""
    alone = (f"Intake alone: p50 {ms(al['p50_ms'])}, p99 {ms(al['p99_ms'])}, {f(al['rate'])}/s; its "
             f"process (the runner's front end and the intake) {f(al['process_cpu_ms_per_delivery'], 2)} ms CPU "
             f"per delivery. "
             f"{_intake_profile_text(al.get('profile'))}") if al else ""
    return (
        f"| 2 | Ack latency: signed chunked deliveries, {r['concurrency']} concurrent senders, thumbnail action, "
        f"Preservica +{f(r['latency_ms'])} ms (median of {r['runs']}) | {r['deliveries']:,} deliveries, local "
        f"runner + Azurite, all functions in one process: p50 {ms(o['p50_ms'])}, p99 {ms(o['p99_ms'])}, "
        f"{f(o['rate'])}/s | `WebHookHandler` on `{t['server_class']}`, {r['ref_deliveries']:,} deliveries: "
        f"p50 {ms(t['p50_ms'])}, p99 {ms(t['p99_ms'])}, {f(t['rate'], 1)}/s | p99 {f(r['p99_ratio'])}× lower"
        f"{alone_ratio} | ≥ 50×: {check(r['p99_ratio'] >= 50)}{alone_check}{_floor_target2(al)} | {alone}"
        f"{retries(o, 'App')}; {retries(t, 'reference')}. Reference status line p99 {ms(t['head_p99_ms'])}. "
        f"Behind its acknowledgements the app stored every run's {r['deliveries']:,} thumbnails within "
        f"{f(o['all_thumbnails_s'], 1)} s of the run's first POST ({o['thumbnails_done']:,} in all) |")


def row5(r: dict) -> str:
    """Row 5: intake CPU per delivery."""
    sizes = list(r["sizes"].values())
    one, rest = sizes[0], sizes[1:]
    more = "; ".join(f"{s['events']} events ({s['body_bytes']:,} B): {f(s['handle_us'])} µs "
                     f"({f(s['pure_us'])} µs) vs {f(s['hmac_us'], 1)} µs: {f(s['ratio'], 1)}× "
                     f"({f(s['pure_ratio'], 1)}×)" for s in rest)
    return (
        f"| 5 | Intake CPU per delivery, {one['events']} event ({one['body_bytes']:,} B), storage call stubbed "
        f"(median of {r['runs']}) | `intake.handle` {f(one['handle_us'], 1)} µs (verify + parse + envelope "
        f"{f(one['pure_us'], 1)} µs) | HMAC-SHA256 of the same bytes {f(one['hmac_us'], 2)} µs | "
        f"{f(one['ratio'], 1)}× ({f(one['pure_ratio'], 1)}×) | – | {more} |")


def _row(out: list, rows: dict, wanted, failures, n: int, title: str, text) -> None:
    """Row n's line, or the line saying it failed when it was asked for."""
    if rows.get(n):
        out.append(text(rows[n]))
    elif n in wanted:
        out.append(_failed(n, title, failures))


def _failed(n: int, name: str, failures: dict) -> str:
    why = (failures.get(n) or "not run").strip().splitlines()[-1].replace("|", "/")
    return f"| {n} | {name} | n/a | n/a | n/a | – | failed: {why} |"


# ---- the storage floors (bench/floor.py) -------------------------------------------------------

def floor_cells(line: str, rows: dict) -> str:
    """A row of seven cells gets the two floor cells after its Ratio: its own floor where it has one
    (rows 2 and 3), "–" elsewhere."""
    m = re.match(r"^\| (\d+) \|", line)
    if not m:
        return line
    cells = [c.strip() for c in line.strip()[1:-1].split(" | ")]
    if len(cells) != 7:
        return line
    n, r = int(m[1]), rows.get(int(m[1]))
    extra = {2: _floor2, 3: floor3}.get(n)
    floor, of = extra(r) if (extra and r) else ("–", "–")
    return "| " + " | ".join(cells[:5] + [floor, of] + cells[5:]) + " |"


def _floor2(r: dict) -> tuple[str, str]:
    al = r.get("intake_alone")
    if not al or al.get("floor_rate") is None:
        return "n/a", "n/a"
    return (f"bare `send_message` loop, {r['concurrency']} threads, {r['deliveries']:,} puts of intake's message: "
            f"p50 {ms(al['floor_p50_ms'])}, p99 {ms(al['floor_p99_ms'])}, {f(al['floor_rate'])}/s",
            f"intake alone {f(al['of_floor'] * 100)}% of the puts' rate (p50 {f(al['p50_over_floor'], 1)}× a "
            f"put's); one process {f(al['ours_of_floor'] * 100)}%")


def _intake_profile_text(p: dict | None) -> str:
    """Where the intake-alone runner's CPU went in its one sampled run (bench.cpu_sampler.CpuSampler)."""
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
    return f"; intake alone ≥ {f(t * 100)}% of the floor (within 2×): {check(al['of_floor'] >= t)}"
