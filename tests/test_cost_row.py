"""Row 10, what a million events cost: the arithmetic against a hand-computed example, the price table's
provenance, and the measured inputs as numbers the run measured (real Azurite, the real storage clients,
the doubles, the real Azure Monitor exporter's conversion), not constants."""
from __future__ import annotations

import math

import pytest

from bench import cost_row, costmodel

# Round prices, so that the example can be worked by hand.
PRICES = {k: {"usd": v, "status": "read", "unit": k} for k, v in {
    "flex_on_demand_gb_s": 0.00002, "flex_on_demand_executions": 0.5, "flex_always_ready_baseline_gb_s": 0.000004,
    "flex_always_ready_execution_gb_s": 0.000016, "queue_class1": 0.01, "queue_class2": 0.02,
    "table_transactions": 0.001, "blob_write": 0.1, "blob_read": 0.01, "blob_other": 0.0,
    "log_analytics_gb": 2.0, "speech_audio_hour": 1.0, "docintel_read_pages": 1.0, "openai_input_tokens": 0.2,
    "openai_output_tokens": 1.0}.items()}
EXAMPLE = {"execution_s": 0.05, "executions": 0.5, "speech_audio_s": 0.36, "telemetry_bytes": 2000,
           "ocr_pages": 1.5, "prompt_tokens": 800, "completion_tokens": 150,
           "storage": {"queue|put": 1, "queue|receive": 0.25, "queue|delete": 1, "queue|receive (empty)": 0,
                       "table|transaction": 2, "blob|put thumbnails": 1, "blob|get thumbnails": 0.5}}


def test_a_million_events_cost_what_the_hand_computation_says():
    # A million events at 2 GB: 0.05 s x 2 GB x 1e6 = 100,000 GB-s x $0.00002 = $2.00; 500,000 executions x
    # $0.5/1e6 = $0.25; queue Class 1 (put, delete) 2e6 / 1e4 x $0.01 = $2.00; Class 2 (receive) 250,000 / 1e4 x
    # $0.02 = $0.50; table 2e6 / 1e4 x $0.001 = $0.20; blob write 1e6 / 1e4 x $0.1 = $10.00; blob read 500,000 /
    # 1e4 x $0.01 = $0.50; telemetry 2,000 B x 1e6 = 2 GB x $2 = $4.00; Speech 0.36 s x 1e6 = 100 h x $1 = $100;
    # pages 1.5 x 1e6 = 1,500,000 / 1,000 x $1 = $1,500; prompt 800 x 1e6 = 800M tokens x $0.2 per million = $160;
    # completion 150 x 1e6 = 150M x $1 per million = $150.
    got = {x["price"]: x["usd"] for x in costmodel.lines(EXAMPLE, PRICES, memory_gb=2.0)}
    want = {"flex_on_demand_gb_s": 2.00, "flex_on_demand_executions": 0.25, "queue_class1": 2.00,
            "queue_class2": 0.50, "table_transactions": 0.20, "blob_write": 10.00, "blob_read": 0.50,
            "log_analytics_gb": 4.00, "speech_audio_hour": 100.00, "docintel_read_pages": 1500.00,
            "openai_input_tokens": 160.00, "openai_output_tokens": 150.00}
    assert got.keys() == want.keys()
    for key, usd in want.items():
        assert got[key] == pytest.approx(usd), key
    assert costmodel.per_million(EXAMPLE, PRICES, 2.0) == pytest.approx(1929.45)
    # The lines come largest first, so the table names the largest line first.
    assert [x["price"] for x in costmodel.lines(EXAMPLE, PRICES, 2.0)][:3] == [
        "docintel_read_pages", "openai_input_tokens", "openai_output_tokens"]
    # Without pages or tokens there are no AI lines at all.
    plain = {k: v for k, v in EXAMPLE.items() if k not in ("ocr_pages", "prompt_tokens", "completion_tokens")}
    assert costmodel.per_million(plain, PRICES, 2.0) == pytest.approx(119.45)
    # One always-ready 2 GB instance for a 730-hour month: 2 x 2,628,000 GB-s x $0.000004 = $21.024.
    assert costmodel.always_ready_month(1, 2.0, PRICES) == pytest.approx(21.024)


def _measured(events: int, putbacks: dict | None = None) -> dict:
    """A configuration as cost_row.run_config returns it, hand-made."""
    none = {"messages": 0, "events": 0, "invocations": 0, "execution_s": 0, "storage": {}, "telemetry": {}}
    return {"events": events, "routes": "*=ocr,describe", "execution_s": 1.0, "executions": 14, "speech_audio_s": 0,
            "storage": {"queue|put": 10, "queue|delete": 12, "table|query": 8}, "preservica_requests": 60,
            "worker_telemetry_bytes": 20000, "host_telemetry": {"bytes": 8000}, "invocation_s": [0.1] * 14,
            "ai": {"ocr_pages": 4, "prompt_tokens": 2000, "completion_tokens": 600}, "putbacks": putbacks or none}


def test_put_backs_are_priced_as_what_waiting_cost():
    # describe put back each of 4 events once (ocr not finished): 4 invocations of 0.2 s in all; each read the
    # journal (query), wrote the queue (put) and noted the wait (transaction); the host's one receive of the
    # 4 and 4 deletes; 4 requests (1,000 B) and 4 lines (600 B) from the worker.
    putbacks = {"messages": 4, "events": 4, "invocations": 4, "execution_s": 0.2,
                "storage": {"queue|put": 4, "table|query": 4, "table|transaction": 4, "queue|receive": 1,
                            "queue|delete": 4},
                "telemetry": {"RequestData": {"items": 4, "bytes": 1000}, "MessageData": {"items": 4, "bytes": 600}}}
    pe = cost_row.per_event(_measured(4, putbacks))
    assert pe["putbacks"] == 1.0
    back = pe["putback"]
    # Per event: 0.05 s, 1 execution, storage put 1, query 1, transaction 1, receive 0.25, delete 1; telemetry:
    # the worker's 1,600 B and the host's estimate, sized like the worker's envelopes (a request 250 B, a line
    # 150 B): 4 requests (1,000 B) and 2 traces per invocation + a copy of each of the 4 lines, 12 x 150 = 1,800 B;
    # (1,600 + 2,800) / 4 = 1,100 B.
    assert back["execution_s"] == pytest.approx(0.05) and back["executions"] == 1.0
    assert back["storage"] == {"queue|put": 1, "table|query": 1, "table|transaction": 1, "queue|receive": 0.25,
                               "queue|delete": 1}
    assert back["telemetry_bytes"] == pytest.approx(1100)
    # A million events: 0.05 s x 2 GB x 1e6 x $0.00002 = $2.00; 1e6 executions x $0.5/1e6 = $0.50; queue Class 1
    # (put, delete) 2e6 / 1e4 x $0.01 = $2.00; Class 2 (receive) 250,000 / 1e4 x $0.02 = $0.50; table (query,
    # transaction) 2e6 / 1e4 x $0.001 = $0.20; telemetry 1.1 GB x $2 = $2.20: $7.40.
    rows = {"default routes": _measured(4), "ocr + describe": _measured(4, putbacks)}
    summary = costmodel.summarize({k: cost_row.per_event(v) | {"routes": v["routes"], "worker_bytes": 5000}
                                   for k, v in rows.items()}, PRICES, 2.0, 1)
    c = summary["configs"]
    assert c["ocr + describe"]["putback_usd_per_million"] == pytest.approx(7.40)
    assert c["default routes"]["putback_usd_per_million"] is None
    # They are in the configuration's own executions and storage operations (the run made them), not added twice.
    assert c["ocr + describe"]["per_event"]["executions"] == 14 / 4
    text = costmodel.render(summary, 4)
    assert "of it 1.00 put-backs per event (an action waiting for another's outcome: 1.00 executions, " \
           "4.2 storage operations, $7.40 per million)" in text
    assert text.count("put-backs") == 1


def test_sparse_traffic_bills_each_invocation_at_least_a_second():
    # Flex bills an activity period at least 1,000 ms, then rounded up to 100 ms: 0.05 -> 1.0, 1.23 -> 1.3,
    # 2.0 -> 2.0, 0.999 -> 1.0, 1.2 -> 1.2 (not 1.3: 1.2 x 10 is 11.999... in floating point).
    assert costmodel.isolated_seconds([0.05, 1.23, 2.0, 0.999, 1.2]) == pytest.approx(6.5)
    # With 1.5 billed seconds an event the execution line is 1.5 x 2 GB x 1e6 x $0.00002 = $60 instead of $2.
    assert costmodel.sparse(EXAMPLE | {"billed_isolated_s": 1.5}, PRICES, 2.0) == pytest.approx(1929.45 - 2 + 60)
    assert costmodel.sparse(EXAMPLE, PRICES, 2.0) is None


def test_storage_operations_are_priced_by_their_class():
    c = costmodel.storage_class
    assert [c("queue", op) for op in ("put", "delete", "update", "create queue", "receive", "receive (empty)",
                                       "peek")] == ["queue_class1"] * 4 + ["queue_class2"] * 3
    assert c("table", "transaction") == c("table", "merge (412)") == "table_transactions"
    assert (c("blob", "put thumbnails"), c("blob", "create container iiif"), c("blob", "get iiif"),
            c("blob", "properties iiif"), c("blob", "delete iiif")) == (
        "blob_write", "blob_write", "blob_read", "blob_read", "blob_other")
    assert c("other", "get") is None


def test_every_price_names_its_page_its_status_and_when_it_was_read():
    prices = costmodel.load_prices()
    for key in ("flex_on_demand_gb_s", "flex_on_demand_executions", "flex_always_ready_baseline_gb_s",
                "flex_always_ready_execution_gb_s", "queue_class1", "queue_class2", "table_transactions",
                "blob_write", "blob_read", "blob_other", "log_analytics_gb", "speech_audio_hour",
                "docintel_read_pages", "openai_input_tokens", "openai_output_tokens"):
        p = prices[key]
        assert p["region"] and p["unit"], key
        assert isinstance(p["usd"], float) and p["usd"] > 0, key
        assert p["status"] in ("read", "third-party", "unverified"), key
        assert p["check"].startswith("https://azure.microsoft.com/pricing/"), key
        if p["status"] != "unverified":   # a price that was read says where and when
            assert p["source"].startswith("https://") and p["date_read"], key
        else:   # an unverified one says what was looked for and found
            assert p["seen"] and p["date_read"], key
    # The token prices are those of the model the Bicep deploys for describe by default.
    main = (costmodel.PRICES.parent.parent / "bicep" / "main.bicep").read_text()
    for param in ("describeModelName string = 'gpt-4o-mini'", "describeModelVersion string = '2024-07-18'",
                  "describeDeploymentSku string = 'GlobalStandard'"):
        assert param in main
    assert "gpt-4o-mini 2024-07-18, GlobalStandard" in prices["openai_input_tokens"]["unit"]


@pytest.mark.timeout(600)
def test_the_measured_inputs_come_from_the_run(azurite, tmp_path):
    """Two sizes of the same run: the inputs follow what the run did, event for event."""
    from handlers.core.settings import BY_NAME
    from tests.support.otel import recorder
    recorder()   # the process's one tracer provider, as the other test modules expect it; the row adds to it
    small, large = (cost_row.measure(azurite.connection_string, tmp_path, events=n, progress=lambda *_: None)
                    for n in (2, 4))
    assert list(small) == [name for name, _ in cost_row.configs()]
    assert small["default routes"]["routes"] == BY_NAME["PRESERVICA_ROUTES"].default
    for name, row in large.items():
        for key in ("execution_s", "speech_audio_s", "worker_telemetry_bytes", "preservica_requests"):
            assert isinstance(row[key], (int, float)) and math.isfinite(row[key]), (name, key)
        assert row["execution_s"] > 0 and row["worker_telemetry_bytes"] > 0
        # One request envelope per invocation, as the exporter converted the spans the run produced.
        assert row["telemetry"]["RequestData"]["items"] == row["executions"], name
        # Every queue-triggered invocation's message was received and deleted at the real client.
        queued = row["invocations"]["dispatch"] + row["invocations"]["actions"]
        assert row["storage"].get("queue|delete", 0) == queued, name
        assert row["executions"] == 1 + queued
        assert row["storage"].get("queue|put", 0) >= queued, name   # intake's put and the dispatcher's
    # Speech heard each event's 2 s recording, and only where transcribe ran.
    assert large["transcribe"]["speech_audio_s"] == pytest.approx(4 * 2.0)
    assert all(row["speech_audio_s"] == 0 for name, row in large.items() if name != "transcribe")
    # Actions that read Preservica asked it per event: twice the events, at least twice the requests.
    assert large["thumbnail"]["preservica_requests"] >= 4 and \
        large["thumbnail"]["preservica_requests"] >= 2 * small["thumbnail"]["preservica_requests"] - 1
    # Transcribe takes one event per message: its invocations, and so its telemetry, grow with the events.
    assert large["transcribe"]["executions"] == small["transcribe"]["executions"] + 2
    assert large["transcribe"]["worker_telemetry_bytes"] > small["transcribe"]["worker_telemetry_bytes"]
    # Pages and tokens are what ocr and describe recorded for this run's assets: every asset's one scanned sheet
    # read as one page, and one draft per asset whose tokens are the usage the chat service reported.
    from bench.cost_ai import ANSWER, PAGE
    for row in (small, large):
        n, ai = row["ocr"]["events"], row["ocr"]["ai"]
        assert (ai["ocr_assets"], ai["ocr_pages"], ai["described_assets"], ai["prompt_tokens"]) == (n, n, 0, 0)
        ai = row["ocr + describe"]["ai"]
        assert (ai["ocr_assets"], ai["ocr_pages"], ai["described_assets"]) == (n, n, n)
        # the page's text went into the prompt (the double counts 4 characters a token)
        assert ai["prompt_tokens"] >= n * len(" ".join(PAGE)) // 4
        assert ai["completion_tokens"] == n * (len(ANSWER) // 4 + 1)
        assert {name: r["ai"] for name, r in row.items() if name not in ("ocr", "ocr + describe")
                and (r["ai"]["ocr_pages"] or r["ai"]["prompt_tokens"])} == {}
    assert large["ocr + describe"]["ai"]["prompt_tokens"] == 2 * small["ocr + describe"]["ai"]["prompt_tokens"]
    # describe looked at its queue before ocr had finished (as deployed, side by side) and put every event back
    # once, counted from the queue; each put-back an invocation with its journal read and queue write, in the
    # configuration's own executions and storage operations; no other configuration waits for anything.
    for row in (small, large):
        n, both, back = row["ocr"]["events"], row["ocr + describe"], row["ocr + describe"]["putbacks"]
        assert back["messages"] == back["events"] == back["invocations"] == n
        assert back["storage"]["queue|put"] == back["storage"]["table|query"] == n
        # the host's stand-in received them as the host does, up to 16 in one request (host.json batchSize)
        assert back["storage"]["queue|receive"] == math.ceil(n / 16)
        assert both["executions"] == row["ocr"]["executions"] + 2 * n
        assert both["storage"]["queue|put"] >= row["ocr"]["storage"]["queue|put"] + n + n   # describe's jobs too
        assert {name for name, r in row.items() if r["putbacks"]["messages"]} == {"ocr + describe"}
    assert cost_row.per_event(large["ocr + describe"])["putback"]["executions"] == 1.0
    # ... and they reach the priced lines, per event.
    pe = cost_row.per_event(large["ocr + describe"])
    assert pe["ocr_pages"] == 1.0 and pe["prompt_tokens"] == large["ocr + describe"]["ai"]["prompt_tokens"] / 4
    priced = {x["price"] for x in costmodel.lines(pe, costmodel.load_prices(), 2.0)}
    assert {"docintel_read_pages", "openai_input_tokens", "openai_output_tokens"} <= priced
    assert pe["billed_isolated_s"] >= pe["executions"]   # at least a second an invocation
