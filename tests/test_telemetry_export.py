"""What reaches Application Insights, and whether each alert in bicep/modules/alerts.bicep can fire on it.

The app runs as in Azure (the intake function over real Azurite, the local runner for a poison move, the
alert signals through telemetry.alert_signal); its spans and log records are recorded with the real
OpenTelemetry SDK and turned into envelopes by the real Azure Monitor exporter's conversion functions
(tests/support/otel.py). Each rule's KQL, read from the Bicep, is then run over those envelopes by a tiny
evaluator (tests/support/kql.py): a query that cannot match what the app sends fails here, and each rule
must match the event it is for and not a healthy delivery.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from handlers import intake
from handlers.clients import telemetry
from handlers.core import settings
from hookops.doubles.deliveries import delivery, encode
from tests.support import kql
from tests.support.bicep import Evaluator, body, parse, resources_of
from tests.support.intake import request, signed
from tests.support.otel import recorder, tables

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "bicep" / "modules" / "alerts.bicep"
LOG_RULE = "Microsoft.Insights/scheduledQueryRules"
# Log alert windows the service accepts, in minutes (its error text, quoted in Azure/azure-rest-api-specs#21258).
ACCEPTED_WINDOWS = {5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880}


# --------------------------------------------------------------------------------------------
# The rules, read from the Bicep
# --------------------------------------------------------------------------------------------

def minutes(duration: str) -> int:
    """An ISO 8601 duration of days, hours and minutes (PT15M, PT2H, P1D) in minutes."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", duration)
    assert m and any(m.groups()), f"not a duration: {duration!r}"
    days, hours, mins = (int(g or 0) for g in m.groups())
    return days * 1440 + hours * 60 + mins


def log_rules(**params) -> dict[str, dict]:
    """Each log alert rule: {query, operator, threshold, window, frequency}, keyed by its resource symbol
    (a rule of the signal loop by its signal), evaluated with main.bicep's parameters as given."""
    doc = parse(ALERTS)
    out = {}
    for name, res in resources_of(doc, LOG_RULE).items():
        config = body(res)
        loop = res["config"].get("loop_type")
        items = Evaluator(doc, **params)(loop["detail"]["array_name"]) if loop else [None]
        for item in items:
            evaluate = Evaluator(doc, **params, **({loop["detail"]["item_name"]: item} if loop else {}))
            props = config["properties"]
            [criterion] = props["criteria"]["allOf"]
            key = item["signal"] if loop else name
            out[key] = {"query": evaluate(criterion["query"]), "operator": criterion["operator"],
                        "threshold": evaluate(criterion["threshold"]),
                        "aggregation": criterion["timeAggregation"],
                        "window": evaluate(props["windowSize"]), "frequency": evaluate(props["evaluationFrequency"])}
    return out


def fires(rule: dict, envelopes) -> bool:
    """Whether the rule fires over one window holding these envelopes (Count of the query's rows)."""
    assert rule["aggregation"] == "Count"
    count = len(kql.run(rule["query"], tables(envelopes)))
    compare = {"GreaterThan": count > rule["threshold"], "LessThan": count < rule["threshold"],
               "GreaterThanOrEqual": count >= rule["threshold"], "LessThanOrEqual": count <= rule["threshold"]}
    return compare[rule["operator"]]


RULES = log_rules(noDeliveryHours=24)


# --------------------------------------------------------------------------------------------
# What the app emits, through the exporter
# --------------------------------------------------------------------------------------------

@pytest.fixture
def rec(app_env):
    r = recorder()   # before the first span: app_env's reset makes telemetry see the SDK loaded
    r.clear()
    with r.logging_from("handlers", "hookops.runner"):   # "handlers": the distro's logger_name in telemetry.py
        yield r


def deliver(times: int = 1, **kwargs) -> list[int]:
    return [intake.handle(signed(encode(delivery(**kwargs)))).status_code for _ in range(times)]


def refused(times: int) -> list[int]:
    return [intake.handle(request(encode(delivery()), {"Preservica-Signature": "0" * 64})).status_code
            for _ in range(times)]


def storage_down(monkeypatch):
    # A port nothing listens on: every storage call fails, intake answers 503.
    from handlers.clients import shared
    from hookops import azurite as az
    dead = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            + base64.b64encode(b"k" * 64).decode() + f";BlobEndpoint=http://127.0.0.1:{az.free_port()}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{az.free_port()}/devstoreaccount1;")
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "1")
    shared.reset_all()


def healthy(rec) -> list:
    assert deliver() == [200]
    assert intake.handle(request(params={"challengeCode": "code-1"})).status_code == 200
    return rec.envelopes()


# --------------------------------------------------------------------------------------------
# The intake span as a request
# --------------------------------------------------------------------------------------------

def test_the_intake_span_is_a_request_named_intake_with_its_status_as_result_code(rec, monkeypatch):
    assert deliver() == [200] and refused(1) == [401]
    storage_down(monkeypatch)
    assert deliver() == [503]
    requests = tables(rec.envelopes())["requests"]
    assert [(r["name"], r["resultCode"]) for r in requests] == [("intake", "200"), ("intake", "401"),
                                                                  ("intake", "503")]
    assert [r["success"] for r in requests] == [True, False, False]
    # The accepted delivery's id is a custom dimension (the "no delivery" rule and the README's trace query).
    assert requests[0]["customDimensions"]["delivery.id"] and "delivery.id" not in requests[1]["customDimensions"]


def test_a_crash_in_intake_is_a_500_request(rec, monkeypatch):
    def boom(req):
        raise RuntimeError("bug")
    monkeypatch.setattr(intake, "_handle", boom)
    with pytest.raises(RuntimeError):
        intake.handle(signed(b"{}"))
    [req] = tables(rec.envelopes())["requests"]
    assert (req["name"], req["resultCode"], req["success"]) == ("intake", "500", False)


def test_without_a_method_the_exporter_drops_the_status(rec):
    """Why intake sets http.request.method: the exporter's own rule, checked on a span without it."""
    with telemetry.span("intake", server=True, http__status_code=401):
        pass
    [req] = tables(rec.envelopes())["requests"]
    assert req["resultCode"] == "0"


# --------------------------------------------------------------------------------------------
# Each alert against the event it is for, and against a healthy delivery
# --------------------------------------------------------------------------------------------

def test_the_rules_are_the_ones_expected_and_every_query_runs():
    assert set(RULES) == {"poison", "webhookFailures", "quiet", *telemetry.SIGNALS}
    for rule in RULES.values():
        kql.run(rule["query"], {})   # parses, and needs no operator the evaluator lacks


def test_healthy_delivery_fires_no_alert(rec):
    envelopes = healthy(rec)
    assert {name for name, rule in RULES.items() if fires(rule, envelopes)} == set()


def test_refused_deliveries_fire_the_failure_alert_above_its_threshold(rec):
    rule = RULES["webhookFailures"]
    assert rule["threshold"] == 5
    refused(5)
    assert not fires(rule, rec.envelopes())       # 5 is not above 5
    refused(1)
    assert fires(rule, rec.envelopes())
    assert not fires(RULES["poison"], rec.envelopes())


def test_failing_deliveries_fire_the_failure_alert(rec, monkeypatch):
    storage_down(monkeypatch)
    assert deliver(6) == [503] * 6
    assert fires(RULES["webhookFailures"], rec.envelopes())


def test_no_accepted_delivery_fires_the_quiet_alert_and_one_delivery_silences_it(rec):
    rule = RULES["quiet"]
    assert fires(rule, [])                        # nothing at all in the window
    refused(3)
    assert fires(rule, rec.envelopes())           # refused ones are not deliveries
    assert deliver() == [200]
    assert not fires(rule, rec.envelopes())


@pytest.mark.parametrize("signal", sorted(telemetry.SIGNALS))
def test_each_alert_signal_fires_its_own_rule_only(rec, signal):
    telemetry.alert_signal(signal, "reconcile 2026-12-07T00:00Z: test", queued=2)
    envelopes = rec.envelopes()
    [event] = tables(envelopes)["customEvents"]
    assert event["name"] == telemetry.alert_event(signal) and event["customDimensions"]["alert_queued"] == "2"
    assert {name for name in telemetry.SIGNALS if fires(RULES[name], envelopes)} == {signal}
    # A custom event: no trace-table copy from the worker (the host's copy of the line is a trace).
    assert "traces" not in tables(envelopes)


def test_an_unknown_signal_is_refused():
    with pytest.raises(ValueError):
        telemetry.alert_signal("made-up", "x")


@pytest.mark.timeout(180)
def test_a_message_moved_to_poison_fires_the_poison_alert(rec, app_env, fast_host_json):
    """The local runner moves a message the host could not decode straight to poison, logging the host's words."""
    from azure.storage.queue import QueueClient

    from hookops.runner import Runner
    from tests.support.e2e import queue_count, wait_until
    conn = app_env.connection_string
    with Runner(ROOT, port=0, host_json=fast_host_json) as runner:
        QueueClient.from_connection_string(conn, settings.DELIVERY_QUEUE).send_message("not base64 at all!")
        wait_until(lambda: queue_count(conn, settings.DELIVERY_QUEUE + "-poison") == 1, timeout=60)
        runner.wait_idle(timeout=30)
    envelopes = rec.envelopes()
    assert fires(RULES["poison"], envelopes)
    assert not fires(RULES["webhookFailures"], envelopes)


# --------------------------------------------------------------------------------------------
# Windows and sampling
# --------------------------------------------------------------------------------------------

def test_every_admitted_no_delivery_hours_gives_a_window_the_service_accepts():
    from tests.support.bicep import main
    admitted = {}
    for doc in (main(), parse(ALERTS)):
        [allowed] = [d["argument"] for d in doc["parameters"]["noDeliveryHours"]["decorators"] if d["type"] == "allowed"]
        admitted[id(doc)] = allowed
    main_allowed, module_allowed = admitted.values()
    assert main_allowed == module_allowed, "main.bicep and alerts.bicep admit different hours"
    assert 0 in main_allowed and max(main_allowed) == 48
    for hours in main_allowed:
        rules = log_rules(noDeliveryHours=hours)
        for name, rule in rules.items():
            assert minutes(rule["window"]) in ACCEPTED_WINDOWS, f"{name} with noDeliveryHours={hours}: {rule['window']}"
            assert minutes(rule["frequency"]) <= minutes(rule["window"])
        if hours:
            assert minutes(rules["quiet"]["window"]) == hours * 60
    # Hours that would fail `azd up` are not admitted.
    assert not {h for h in range(1, 49) if h * 60 not in ACCEPTED_WINDOWS} & set(main_allowed)


def test_log_alerts_use_the_ga_api_version():
    for path in sorted((ROOT / "bicep").rglob("*.bicep")):
        assert "scheduledQueryRules@" not in path.read_text() or \
            set(re.findall(r"scheduledQueryRules@([\w-]+)", path.read_text())) == {"2023-12-01"}, path.name


def test_the_availability_alert_watches_the_availability_test():
    doc = parse(ALERTS)
    [alert] = resources_of(doc, "Microsoft.Insights/metricAlerts").values()
    props = body(alert)["properties"]
    criteria = props["criteria"]
    assert criteria["'odata.type'"] == "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"
    assert criteria["webTestId"] == "webTestId" and criteria["componentId"] == "applicationInsightsId"
    assert props["scopes"] == ["webTestId", "applicationInsightsId"]   # the API needs both
    main_text = (ROOT / "bicep" / "main.bicep").read_text()
    assert "webTestId: availability.outputs.id" in main_text
    assert "webTestLocations: availability.outputs.locationCount" in main_text
    locations = len(parse(ROOT / "bicep" / "modules" / "availability.bicep")["variables"]["locations"]["value"])
    for count in range(1, locations + 1):
        failed = Evaluator(doc, webTestLocations=count)(criteria["failedLocationCount"])
        assert 1 <= failed <= count
    assert Evaluator(doc, webTestLocations=locations)(criteria["failedLocationCount"]) == 2   # one region's blip is not an outage
    assert minutes(props["windowSize"]) >= minutes(props["evaluationFrequency"])


def test_host_sampling_never_drops_a_trace_or_a_request():
    """The poison alert reads the host's own trace: host.json excludes Trace (and Request) from adaptive sampling."""
    import json
    sampling = json.loads((ROOT / "host.json").read_text())["logging"]["applicationInsights"]["samplingSettings"]
    assert {"Request", "Trace", "Exception"} <= set(sampling["excludedTypes"].split(";"))


def test_the_distro_samples_every_span_when_told_to_and_no_log():
    """configure_azure_monitor's defaults as the installed distro computes them: without sampling_ratio it would
    keep 5 traces a second; telemetry.py passes sampling_ratio=1.0; trace-based log sampling stays off."""
    from azure.monitor.opentelemetry._utils.configurations import _get_configurations
    default = _get_configurations()
    assert default.get("traces_per_second") == 5.0 and "sampling_ratio" not in default
    ours = _get_configurations(sampling_ratio=telemetry.SAMPLING_RATIO)
    assert ours["sampling_ratio"] == 1.0 and ours["enable_trace_based_sampling_for_logs"] is False
    assert "sampling_ratio=SAMPLING_RATIO" in (ROOT / "handlers" / "clients" / "telemetry.py").read_text()


def test_the_evaluator_reads_kql_as_kusto_does():
    """`has` is a case-insensitive whole-term match (Kusto "String operators"); toint of text is null."""
    line = "Message has reached MaxDequeueCount of 5. Moving message to queue 'action-relay-poison'."
    assert kql.has(line, "moving MESSAGE to queue") and kql.has(line, "-poison") and kql.has(line, "relay")
    assert not kql.has(line, "poisoned") and not kql.has(line, "ssage") and not kql.has(None, "x")
    rows = {"requests": [{"resultCode": "abc"}, {"resultCode": "503"}, {"resultCode": "401"}, {"resultCode": "200"}]}
    assert kql.run('requests | where toint(resultCode) == 401 or toint(resultCode) >= 500', rows) == rows["requests"][1:3]
    assert kql.run('requests | where isnotempty(customDimensions["x"])', rows) == []
    with pytest.raises(ValueError):
        kql.run("requests | summarize count()", rows)


# --------------------------------------------------------------------------------------------
# What an action message costs in telemetry: one request and one log line, whatever its batch
# --------------------------------------------------------------------------------------------

def _run_journal_batch(app_env, monkeypatch, n: int, fail=None) -> list:
    from handlers import dispatch
    from handlers.pipeline import registry, runner
    from hookops.doubles.deliveries import ref
    from tests.support.queues import drain, intake_msg
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal")
    if fail:   # the journal's perform, failing for the events `fail` picks
        import dataclasses
        declared, get = registry.get("journal"), registry.get

        def flaky(job, ctx):
            if fail(job):
                raise RuntimeError("boom")
            return declared.perform(job, ctx)
        monkeypatch.setattr(registry, "get", lambda name: dataclasses.replace(declared, perform=flaky)
                            if name == "journal" else get(name))
    dispatch.dispatch(intake_msg(delivery(refs=[ref(f"batch-{i}") for i in range(n)])))
    [raw] = drain(app_env.connection_string, "journal")
    try:
        runner.run("journal", raw, message_id="m1")
    except RuntimeError:
        pass   # the first failure is raised, so that the host retries the message
    return raw


def test_an_action_message_is_one_request_and_one_line_whatever_its_batch(rec, app_env, monkeypatch, caplog):
    caplog.set_level("INFO", logger="handlers")   # the worker's level (its root logger at INFO: inferred)
    _run_journal_batch(app_env, monkeypatch, 6)
    found = tables(rec.envelopes())
    [request] = [r for r in found["requests"] if r["name"] == "action journal"]
    assert request["success"] and request["customDimensions"]["events.done"] == "6"
    # Two spans in all, the dispatcher's (a dependency here: this message has no intake to continue) and the
    # action message's: no span per event.
    assert [d["name"] for d in found.get("dependencies", [])] == ["dispatch"] and len(found["requests"]) == 1
    lines = [t["message"] for t in found["traces"] if t["message"].startswith("journal ")]
    assert lines == [lines[0]] and lines[0].endswith(": done 6")


def test_each_failed_event_is_a_warning_with_its_reason_and_fails_the_request(rec, app_env, monkeypatch, caplog):
    caplog.set_level("INFO", logger="handlers")
    from hookops.doubles.deliveries import ref
    _run_journal_batch(app_env, monkeypatch, 4, fail=lambda job: job.entity_ref == ref("batch-2"))
    found = tables(rec.envelopes())
    [request] = [r for r in found["requests"] if r["name"] == "action journal"]
    assert request["success"] is False
    assert request["customDimensions"]["events.done"] == "3" and request["customDimensions"]["events.failed"] == "1"
    warnings = [t for t in found["traces"] if "failed for event" in t["message"]]
    assert len(warnings) == 1 and warnings[0]["severityLevel"] == 2 and "RuntimeError" in warnings[0]["message"]
