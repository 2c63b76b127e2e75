"""What the app's spans and logs become in Application Insights, with the real OpenTelemetry SDK and the real
Azure Monitor exporter's conversion functions (nothing is sent anywhere).

OpenTelemetry accepts one tracer provider per process, so every test module records through `recorder()`.
Logs go through the handler class the distro attaches (azure-monitor-opentelemetry `_configure.py`
`_setup_logging`: opentelemetry-instrumentation-logging's LoggingHandler on the `logger_name` logger, here
"handlers" as handlers/clients/telemetry.py configures it).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from functools import cache


@dataclass
class Recorder:
    spans: object     # InMemorySpanExporter
    logs: object      # InMemoryLogRecordExporter
    provider: object  # LoggerProvider

    def clear(self) -> None:
        self.spans.clear()
        self.logs.clear()

    @contextlib.contextmanager
    def logging_from(self, *names: str):
        """Send these loggers' records to the log exporter, as the distro's handler does, while inside."""
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        handler = LoggingHandler(logger_provider=self.provider)
        loggers = [logging.getLogger(name) for name in names]
        for logger in loggers:
            logger.addHandler(handler)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeHandler(handler)

    def envelopes(self) -> list:
        """Every finished span and log record as the exporter would send it."""
        from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
        from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope
        return [_convert_span_to_envelope(s) for s in self.spans.get_finished_spans()] + \
            [_convert_log_to_envelope(r) for r in self.logs.get_finished_logs()]


@cache
def recorder() -> Recorder:
    from opentelemetry import trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)   # once per process: OpenTelemetry refuses a second one
    log_provider = LoggerProvider()
    log_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return Recorder(spans, logs, log_provider)


# Where each envelope lands: the Application Insights table the exporter's base type is stored in
# (Application Insights data model: RequestData -> requests, MessageData -> traces, EventData -> customEvents,
# RemoteDependencyData -> dependencies, ExceptionData -> exceptions), with the columns the alert rules read.
def row(envelope) -> tuple[str, dict]:
    data = envelope.data.base_data
    kind = envelope.data.base_type
    dims = dict(data.properties or {})
    if kind == "RequestData":
        return "requests", {"name": data.name, "resultCode": data.response_code, "success": data.success,
                            "customDimensions": dims}
    if kind == "MessageData":
        return "traces", {"message": data.message, "severityLevel": data.severity_level, "customDimensions": dims}
    if kind == "EventData":
        return "customEvents", {"name": data.name, "customDimensions": dims}
    if kind == "RemoteDependencyData":
        return "dependencies", {"name": data.name, "resultCode": data.result_code, "success": data.success,
                                "customDimensions": dims}
    if kind == "ExceptionData":
        return "exceptions", {"customDimensions": dims}
    raise AssertionError(f"unexpected envelope type {kind}")


def tables(envelopes) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for envelope in envelopes:
        table, columns = row(envelope)
        out.setdefault(table, []).append(columns)
    return out
