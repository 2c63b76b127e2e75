"""`python -m bench --quick`: every benchmark's code path runs at tiny sizes and yields its row.

No timing is asserted: only that the rows come out with numbers, so a change that breaks a
benchmark fails CI rather than the next `make bench`. The benchmark runs in its own process (it
starts Azurite, the local runner and its helpers, and stops them before it exits).
"""
from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1500  # seconds: a hang guard only (a quiet run takes about a minute); no timing is asserted
pytestmark = [pytest.mark.slow, pytest.mark.timeout(LIMIT + 120)]   # above the suite's 300 s per test


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.md"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)   # the benchmark stops its servers on SIGTERM
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(f"python -m bench --quick took over {LIMIT}s:\n{stderr[-3000:]}")
    return proc.returncode, stdout, stderr, out


def test_quick_run_succeeds_and_saves_the_table(quick):
    code, stdout, stderr, out = quick
    assert code == 0, stderr[-3000:]
    assert out.read_text() == stdout.rstrip("\n") + "\n"
    assert json.loads(out.with_suffix(".json").read_text())["failures"] == {}


def test_table_has_every_row_with_numbers(quick):
    _, stdout, _, _ = quick
    rows = {m[1]: m[0] for m in re.finditer(r"^\| (\d+) \|.*$", stdout, re.M)}
    assert sorted(rows, key=int) == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    header = next(line for line in stdout.splitlines() if line.startswith("| # |"))
    assert [c.strip() for c in header.strip("|").split("|")][5:7] == ["Storage floor, same run", "Of the floor"]
    for line in rows.values():
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 9, line
        assert "n/a" not in " ".join(cells[2:7]), line
        assert re.search(r"\d", cells[2]), line   # "This app" holds a figure
    for n in ("2", "3"):   # the throughput rows: a floor measured in this run, and the fraction of it
        cells = [c.strip() for c in rows[n].strip("|").split("|")]
        assert re.search(r"\d", cells[5]) and re.search(r"\d+%", cells[6]), rows[n]
    assert "README of" not in rows["3"] and "events/s (" not in rows["3"].split("|")[4]
    assert re.search(r"Machine: .+ cores .+Python \d+\.\d+", stdout)


def test_throughput_ratios_are_of_this_runs_floors(quick):
    """Each fraction is the row's own figure over the floor measured in the same run: recomputed here from the
    raw figures of each run, so neither can be a constant or a figure of another day."""
    _, _, _, out = quick
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    for run in rows["3"]["per_run"]:
        floor = run["floor"]
        assert floor["errors"] == [] and floor["requests"] > 0 and _number(floor["wall_s"])
        # the floor repeated the run's own storage requests: as many as the app and runner made, empty polls
        # and one-off creates apart
        made = sum(o["count"] * (1 + o.get("messages", 0)) if o["op"] == "queue_receive" else o["count"]
                   for o in run["floor_ops"])
        assert made == floor["requests"]
        assert {o["op"] for o in run["floor_ops"]} >= {"queue_put", "queue_receive", "blob_put", "table_tx"}
        assert run["floor_events_per_s"] == run["events"] / floor["wall_s"]
        assert run["of_floor"] == run["events_per_s"] / run["floor_events_per_s"]
    r3 = rows["3"]
    assert r3["of_floor"] == sorted(x["of_floor"] for x in r3["per_run"])[len(r3["per_run"]) // 2]
    alone = rows["2"]["intake_alone"]
    for run in alone["per_run"]:
        put = run["floor"]["by_op"]["queue_put"]
        assert put["count"] == run["floor"]["requests"] == run["sent"]   # one bare put per delivery sent
        assert run["of_floor"] == run["rate"] / run["floor"]["rate"]
        assert run["p50_over_floor"] == run["p50_ms"] / put["p50_ms"]
    assert _number(alone["of_floor"]) and _number(alone["ours_of_floor"])
    profile = alone["profile"]
    assert profile["cpu_s"] > 0 and _number(profile["process_cpu_ms_per_delivery"])


def test_raw_figures_are_numbers(quick):
    _, _, _, out = quick
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    r1, r2, r3, r4, r5, r6, r7, r8 = (rows[str(n)] for n in range(1, 9))
    for x in (r1["app_ms"], r1["base_ms"], r1["ratio"], r1["first_ms"]):
        assert _number(x)
    assert r1["status"] == 200
    for side in (r2["ours"], r2["reference"], r2["intake_alone"]):
        assert all(_number(side[k]) for k in ("p50_ms", "p99_ms", "rate"))
        assert side["ok"] == side["sent"] > 0
    assert _number(r2["p99_ratio"]) and _number(r2["intake_alone"]["p99_ratio"])
    assert r2["reference"]["work_done"] == r2["reference"]["ok"]   # the reference did the thumbnail work
    assert r2["ours"]["thumbnails_done"] == r2["ours"]["ok"]       # and so did the app, behind its acks
    assert r3["completed"] and _number(r3["events_per_s"]) and _number(r3["total_s"])
    run = r3["median_run"]
    assert run["journal_rows_done"] == run["events"]
    assert {"intake", "dispatch", "action_journal", "action_thumbnail"} <= set(run["stages"])
    for stage in ("action_journal", "action_thumbnail"):   # events counted from the batches' outcomes
        assert run["stages"][stage]["performed"] == run["events"] > run["stages"][stage]["calls"]
    assert run["preservica_requests"] > 0
    profile = r3["profile"]
    assert profile["completed"] and _number(profile["cpu_s"]) and profile["cpu_s"] > 0
    assert profile["by_owner"].get("app", 0) > 0 and all(_number(v) for v in profile["inclusive"].values())
    # Large deliveries, over the queue payload (the claim check), one of them MAX_BODY_BYTES: accepted, dispatched
    # a page per invocation, every event's journal job queued once and its row written, counted after the run.
    for d in r4["deliveries"].values():
        assert d["status"] == 200 and _number(d["ack_ms"]) and d["body_bytes"] > 48 * 1024
        assert d["ack_writes"] == {"blob put (deliveries)": 1, "queue put": 1}
        assert d["pages"] == math.ceil(d["events"] / r4["page"]) > 1
        assert d["every_event_once"] and d["jobs"] == d["events_once"] == d["journal_rows"] == d["events"]
        assert d["dispatch_writes"]["table transaction"] > 0
    assert r4["max_body_bytes"] - 200 < r4["deliveries"]["max_body"]["body_bytes"] <= r4["max_body_bytes"]
    for size in r5["sizes"].values():
        assert all(_number(size[k]) for k in ("handle_us", "pure_us", "hmac_us", "ratio"))
    assert r6 == r7 and r6["completed"]   # rows 6 and 7 are the same runs
    for variant in ("in_delivery", "asked_for"):
        x = r6[variant]
        assert x["rows_all_done"] == r6["events"]   # every event's row has all five actions done
        assert _number(x["preservica_per_event"]) and x["preservica_per_event"] > 0
        assert _number(x["storage_per_event"]) and x["storage_per_event"] > 0
        assert x["thumbnail_puts_per_event"] >= 1
        assert x["receivers"]["relay_deliveries"] == r6["events"] and x["receivers"]["relay_disagreements"] == 0
    assert r6["asked_for"]["preservica_by_endpoint_per_event"].get("identifiers", 0) > 0
    assert r6["in_delivery"]["preservica_by_endpoint_per_event"].get("identifiers", 0) == 0
    assert r8["completed"] and r8["requests"] > 0 and r8["rate"] > 0
    assert all(_number(r8[k]) for k in ("max_1s", "max_1s_first_second", "mean_rps", "envelope_excess",
                                        "events_per_s"))
    r9 = rows["9"]     # one budget, several runner processes: the double's counts, not whether they met the target
    assert [x["processes"] for x in r9["runs"]] == [1, 2] and set(r9["ratio"]) == {"1", "2"}
    assert r9["baseline_again"]["processes"] == 1 and len(r9["baseline_events_per_s"]) == 2   # 1 first and last
    first = r9["runs"][0]["requests"]   # the sign-ins' ceiling: the first run's requests over each run's
    t = r9["turns"]   # more processes than the budget has requests a second (--quick: 3 at 1)
    assert (t["processes"], t["rate"]) == (3, 1) and t["requests"] >= 2 * t["events"]
    assert 0 <= t["took_turns"] <= 3 and t["met"] == (t["max_1s"] <= 2)
    assert r9["ceiling"] == {str(x["processes"]): first / x["requests"] for x in r9["runs"]}
    for x in (*r9["runs"], r9["baseline_again"]):
        assert x["requests"] >= 2 * x["events"] and all(_number(x[k]) for k in ("max_1s", "events_per_s", "mean_rps"))
        assert x["met"] == (x["max_1s"] <= r9["rate"] + 1)
    r10 = rows["10"]   # what a million events cost: every configuration priced from measured inputs
    assert set(r10["configs"]) == {"default routes", "journal", "thumbnail", "teams", "catalogue", "relay",
                                   "transcribe", "publish", "ocr", "ocr + describe"}
    for c in r10["configs"].values():
        assert _number(c["usd_per_million"]) and c["usd_per_million"] > 0 and c["gb_s_per_event"] > 0
        assert _number(c["usd_per_million_sparse"]) and c["usd_per_million_sparse"] >= c["usd_per_million"]
    ai = r10["configs"]["ocr + describe"]["per_event"]   # pages and tokens as the run recorded them
    assert ai["ocr_pages"] > 0 and ai["prompt_tokens"] > 0 and ai["completion_tokens"] > 0
    assert _number(r10["always_ready_usd_per_month"])
    r11 = rows["11"]   # custody against a raw upload of the same bytes: each ratio of its own run's two rates
    for run in r11["per_run"]:
        assert run["copied_bytes"] >= r11["size"] and run["version"] == "v1"
        assert run["raw_mb_s"] == r11["size"] / 1e6 / run["raw_s"] and run["ratio"] == run["custody_mb_s"] / run["raw_mb_s"]
    assert _number(r11["ratio"]) and r11["ratio"] > 0


def test_bench_imports_nothing_from_tests():
    """The doubles and delivery builders the benchmarks share with the tests live in hookops/doubles/."""
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) tests\b", text, re.M), f"{path.name} imports from tests/"


def test_row_9_without_a_run_in_turns_and_with_a_malformed_one(monkeypatch, tmp_path):
    """`--budget-turns ""` runs none (its double is sized by the main runs' events); a spec that is not
    PROCESSES:RATE:EVENTS:BATCH stops with the form to give. max() of one number alone raised TypeError."""
    from bench import budget as row9
    started = []

    class Double:
        def __init__(self, args, *rest):
            started.append(args)

        def start(self):
            return self

        def stop(self):
            pass
    monkeypatch.setattr(row9, "Service", Double)
    monkeypatch.setattr(row9, "run", lambda **kw: {"held": True, "events": kw["events"]})
    r = row9.row("UseDevelopmentStorage=true", tmp_path, rate=10, events=30, batch=5, processes="1,2", turns="")
    assert "turns" not in r and started == [["-m", "bench.preservica_proc", "--assets", "30"]]
    with pytest.raises(SystemExit, match="PROCESSES:RATE:EVENTS:BATCH"):
        row9.row("UseDevelopmentStorage=true", tmp_path, rate=10, events=30, batch=5, processes="1", turns="4:2")
