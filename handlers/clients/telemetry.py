"""Tracing: one trace per delivery, from the HTTP intake through the delivery queue, the dispatcher
and every action message, to the relay's outgoing request.

The Functions host's OpenTelemetry support for Python does not carry trace context through queue
triggers, so the app carries it itself: each queue message holds the W3C `traceparent` of the span
that sent it, and the span that reads it continues the trace. Spans carry delivery id, trigger, event
key, action and outcome: never a secret, a signature or a credential-bearing URL.

Nothing is imported or sent unless APPLICATIONINSIGHTS_CONNECTION_STRING is set (Azure; telemetry goes
with the app's identity) or a tracer provider is already in place (tests): local runs stay quiet and
cold start pays nothing.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from ..core import settings
from .shared import Shared

TRACER = "preservica-webhooks"
SAMPLING_RATIO = 1.0
# The exporter turns a log record with this attribute into a custom event (customEvents), not a trace
# (azure-monitor-opentelemetry-exporter `export/logs/_exporter.py` `_log_data_is_event`).
CUSTOM_EVENT = "microsoft.custom_event.name"


def _configure() -> bool:
    """Azure Monitor when a connection string is set; True when spans can be recorded at all."""
    if settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        from .identity import credential
        # The distro's own instrumentations would trace every storage and HTTP call (and log URLs);
        # the app's spans are the ones that tell a delivery's story.
        # sampling_ratio=1.0: without it (and without OTEL_TRACES_SAMPLER) distro 1.8 samples at 5 traces
        # a second (azure-monitor-opentelemetry `_utils/configurations.py` `_default_sampling_ratio`,
        # `_configure.py` `_setup_tracing`), and the alerts count intake requests one by one. Logs are
        # not sampled: `enable_trace_based_sampling_for_logs` defaults to False (same file).
        configure_azure_monitor(credential=credential(), logger_name="handlers", sampling_ratio=SAMPLING_RATIO,
                                instrumentation_options={n: {"enabled": False} for n in
                                                         ("azure_sdk", "requests", "urllib", "urllib3")})
        return True
    return "opentelemetry.sdk.trace" in sys.modules  # a provider set up by the process (tests, a host)


_enabled = Shared(_configure, key=lambda: settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING"))


@contextlib.contextmanager
def span(name: str, parent: str | None = None, server: bool = False, internal: bool = False,
         **attributes) -> Iterator[object | None]:
    """A span continuing `parent` (a traceparent from a message) or the current context; yields the span,
    or None when tracing is off."""
    if not _enabled.get():
        yield None
        return
    from opentelemetry import propagate, trace
    ctx = propagate.extract({"traceparent": parent}) if parent else None
    kind = trace.SpanKind.SERVER if server else \
        trace.SpanKind.CONSUMER if parent and not internal else trace.SpanKind.INTERNAL
    with trace.get_tracer(TRACER).start_as_current_span(name, context=ctx, kind=kind) as current:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(key.replace("__", "."), value)
        yield current


@contextlib.contextmanager
def within(parent: str | None) -> Iterator[None]:
    """Continue `parent` (a traceparent) in this thread without a span of its own: a worker thread of a batch
    starts with no context, and what it sends (the relay's request) must carry the delivery's trace."""
    if not parent or not _enabled.get():
        yield
        return
    from opentelemetry import context, propagate
    token = context.attach(propagate.extract({"traceparent": parent}))
    try:
        yield
    finally:
        context.detach(token)


def traceparent() -> str | None:
    """The current span's W3C traceparent, to put in a message or a request; None when tracing is off."""
    if not _enabled.get():
        return None
    from opentelemetry import propagate
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def http_status(code: int) -> None:
    """The current SERVER span's answer: the exporter writes a request's resultCode only when the span also has
    an HTTP method (azure-monitor-opentelemetry-exporter `export/trace/_exporter.py` `_convert_span_to_envelope`);
    5xx is an error (OpenTelemetry HTTP semantic conventions: server spans, status)."""
    if not _enabled.get():
        return
    from opentelemetry import trace
    current = trace.get_current_span()
    current.set_attribute("http.response.status_code", code)
    if code >= 500:
        current.set_status(trace.Status(trace.StatusCode.ERROR))


def error() -> None:
    """Mark the current span failed (success false in Application Insights)."""
    if not _enabled.get():
        return
    from opentelemetry import trace
    trace.get_current_span().set_status(trace.Status(trace.StatusCode.ERROR))


def annotate(**attributes) -> None:
    """Attributes on the current span (dots are written as underscores in keyword names)."""
    if not _enabled.get():
        return
    from opentelemetry import trace
    current = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key.replace("__", "."), value)


# Alert signals: the few records an alert rule in bicep/modules/alerts.bicep fires on. One function emits
# them all, so a rule's query and what the app sends are held to each other in one place
# (tests/test_telemetry_export.py runs the exporter's conversion and each rule's query on them).
SIGNALS = {
    "reconcile-missed": "the reconciler queued events the webhooks missed",
    "reconcile-stalled": "the reconciler ended incomplete several runs in a row",
    "sweep-withdrew": "the public sweep withdrew assets that were public but should not have been",
    "custody-audit": "the custody audit found a stored file that differs from its inventory, or is missing",
    "closed-text-kept": "a fragment a person edited may hold a closed file's text on an open asset: not rewritten",
    "routes-unsafe": "PRESERVICA_ROUTES run publish, ocr or transcribe without the triggers that change access "
                     "(registry.problems)",
}


def alert_event(name: str) -> str:
    """The custom event name an alert signal is sent as, and its rule's query matches."""
    return f"ALERT {name}"


def alert_signal(name: str, text: str, **counts: int) -> None:
    """Log one alert signal (a warning whose message starts with `ALERT <name>:`), counts as attributes.

    In Azure the worker's exporter sends it as a custom event, which nothing samples: the distro samples only
    spans (see _configure), and the host's adaptive sampling (host.json samplingSettings) applies to what the
    host sends, which is not this copy. The host's copy of the log line goes to traces and may be sampled.
    """
    import logging
    if name not in SIGNALS:
        raise ValueError(f"unknown alert signal {name!r}")
    _enabled.get()   # the exporter's log handler is attached on first use; a timer may not have traced yet
    extra = {f"alert_{k}": v for k, v in counts.items()}
    extra[CUSTOM_EVENT] = alert_event(name)
    logging.getLogger("handlers.alerts").warning("ALERT %s: %s", name, text, extra=extra)
