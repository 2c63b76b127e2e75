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
from typing import Iterator

from ..core import settings
from .shared import Shared

TRACER = "preservica-webhooks"


def _configure() -> bool:
    """Azure Monitor when a connection string is set; True when spans can be recorded at all."""
    if settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        from .identity import credential
        # The distro's own instrumentations would trace every storage and HTTP call (and log URLs);
        # the app's spans are the ones that tell a delivery's story.
        configure_azure_monitor(credential=credential(), logger_name="handlers",
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


def traceparent() -> str | None:
    """The current span's W3C traceparent, to put in a message or a request; None when tracing is off."""
    if not _enabled.get():
        return None
    from opentelemetry import propagate
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def annotate(**attributes) -> None:
    """Attributes on the current span (dots are written as underscores in keyword names)."""
    if not _enabled.get():
        return
    from opentelemetry import trace
    current = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key.replace("__", "."), value)


# Alert signals: the few log records an alert rule in bicep/modules/alerts.bicep fires on. One function
# emits them all, so a rule's query and what the app sends are held to each other in one place.
SIGNALS = {
    "reconcile-missed": "the reconciler queued events the webhooks missed",
    "reconcile-stalled": "the reconciler ended incomplete several runs in a row",
    "sweep-withdrew": "the public sweep withdrew assets that were public but should not have been",
}


def alert_signal(name: str, text: str, **counts: int) -> None:
    """Log one alert signal (a warning whose message starts with `ALERT <name>:`), counts as attributes."""
    import logging
    if name not in SIGNALS:
        raise ValueError(f"unknown alert signal {name!r}")
    logging.getLogger("handlers.alerts").warning("ALERT %s: %s", name, text, extra={f"alert_{k}": v for k, v in counts.items()})
