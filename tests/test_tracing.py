"""One trace per delivery: intake -> delivery queue -> dispatch -> every action message -> the relay's
request, linked by the traceparent the messages carry. Spans are recorded in memory (the real
OpenTelemetry SDK); the app runs in the local runner over real HTTP and real Azurite."""
import pytest

from handlers.clients import journal
from hookops.doubles.deliveries import ref
from hookops.doubles.receivers import RelayReceiver
from hookops.runner import Runner
from tests.support import kql
from tests.support.e2e import hookops, wait_until, webhook
from tests.support.otel import tables
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def spans():
    from tests.support.otel import recorder
    yield recorder().spans   # the one tracer provider of the process, shared with test_telemetry_export


def test_a_delivery_is_one_trace_across_the_queues_and_the_relay(spans, app_env, fast_host_json, monkeypatch):
    with RelayReceiver() as relay:
        monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,relay")
        monkeypatch.setenv("RELAY_URL", relay.url)
        monkeypatch.setenv("RELAY_SECRET", relay.secret)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        refs = [ref("traced-1"), ref("traced-2")]
        with Runner(ROOT, port=0, host_json=fast_host_json) as runner:
            spans.clear()
            hookops("send-test-event", "--url", webhook(runner), *[a for r in refs for a in ("--ref", r)])
            wait_until(lambda: all(any(row["entityRef"] == r and row.get("relay_state") == "done"
                                       and row.get("journal_state") == "done" for row in journal.default().recent(10))
                                   for r in refs), timeout=60)
            runner.wait_idle(timeout=30)
        finished = spans.get_finished_spans()
        [intake] = [s for s in finished if s.name == "intake"]
        trace_id = intake.context.trace_id
        ours = [s for s in finished if s.context.trace_id == trace_id]
        names = sorted(s.name for s in ours)
        assert names.count("dispatch") == 1 and "action journal" in names and "action relay" in names
        assert "event" not in names            # no span per event: the journal has each event's outcome
        by_id = {s.context.span_id: s for s in ours}
        dispatch = next(s for s in ours if s.name == "dispatch")
        assert dispatch.parent.span_id == intake.context.span_id          # carried by the delivery message
        for action in (s for s in ours if s.name.startswith("action ")):
            assert action.parent.span_id == dispatch.context.span_id     # carried by each action message
            assert action.attributes["delivery.id"] == intake.attributes["delivery.id"]
        # Each action message's span counts its events by outcome (two events, one message per action here).
        assert sum(s.attributes.get("events.done", 0) for s in ours if s.name == "action relay") == 2
        assert sum(s.attributes.get("events.done", 0) for s in ours if s.name == "action journal") == 2
        assert all(by_id.get(s.parent.span_id) is not None for s in ours if s.name.startswith("action "))
        assert dispatch.attributes["queue.wait_ms"] >= 0 and intake.attributes["http.response.status_code"] == 200
        # The receiver sees the same trace.
        assert relay.deliveries and all(d.headers["traceparent"].split("-")[1] == f"{trace_id:032x}"
                                        for d in relay.deliveries)
        # What Application Insights gets (the real exporter's conversion): the README's query for a delivery's
        # trace ("A delivery's trace": union requests, dependencies by customDimensions['delivery.id']) finds
        # the request, the dispatch and every action message; intake's request has its status as resultCode.
        from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope
        found = tables([_convert_span_to_envelope(s) for s in ours])
        where = f"where customDimensions['delivery.id'] == '{intake.attributes['delivery.id']}'"
        rows = kql.run(f"requests | {where}", found) + kql.run(f"dependencies | {where}", found)
        assert {r["name"] for r in rows} >= {"intake", "dispatch", "action journal", "action relay"}
        assert [r["resultCode"] for r in rows if r["name"] == "intake"] == ["200"]
        # No secret, signature or credential-bearing URL in any attribute.
        text = repr([dict(s.attributes) for s in finished])
        assert relay.secret not in text and "signature" not in text.lower() and relay.url not in text


def test_nothing_is_traced_or_imported_without_a_connection_string_or_provider():
    import subprocess
    import sys
    code = ("import sys, function_app\nfrom handlers.clients import telemetry\n"
            "with telemetry.span('x') as s: pass\n"
            "print(s is None, telemetry.traceparent() is None, any('opentelemetry' in m for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "", "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.stdout.split() == ["True", "True", "False"], out.stderr
