"""Row 10's telemetry bytes: an OpenTelemetry SDK set up as the distro would, exporting to memory, each span and
log record turned into the Application Insights envelope the real azure-monitor-opentelemetry-exporter
conversion functions make, and sized as its `track` call serialises it."""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager


class Telemetry:
    """An OpenTelemetry SDK set up as the distro would, exporting to memory; envelopes by the real conversion."""

    def __init__(self):
        from opentelemetry import trace
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

        from handlers.clients import telemetry
        self.spans, self.logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
        provider = TracerProvider(sampler=TraceIdRatioBased(telemetry.SAMPLING_RATIO))
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            trace.set_tracer_provider(provider)   # once per process (OpenTelemetry refuses a second)
        else:
            trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(self.spans))
        logs = LoggerProvider()
        logs.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.handler = LoggingHandler(logger_provider=logs)

    @contextmanager
    def recording(self):
        """The distro's handler on the "handlers" logger (telemetry.py's logger_name), root at INFO."""
        logger, root = logging.getLogger("handlers"), logging.getLogger()
        level = root.level
        root.setLevel(logging.INFO)
        logger.addHandler(self.handler)
        try:
            yield
        finally:
            logger.removeHandler(self.handler)
            root.setLevel(level)

    def clear(self) -> None:
        self.spans.clear()
        self.logs.clear()

    def measure(self) -> dict:
        from azure.monitor.opentelemetry.exporter._generated.exporter._utils.model_base import SdkJSONEncoder
        from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
        from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope
        envelopes = [_convert_span_to_envelope(s) for s in self.spans.get_finished_spans()] + \
            [_convert_log_to_envelope(r) for r in self.logs.get_finished_logs()]
        out: dict = {}
        for e in envelopes:
            # The bytes `track` sends for it (exporter `_generated/exporter/_operations/_operations.py`:
            # json.dumps(body, cls=SdkJSONEncoder, exclude_readonly=True)), less the list's comma.
            size = len(json.dumps(e, cls=SdkJSONEncoder, exclude_readonly=True).encode())
            x = out.setdefault(e.data.base_type, {"items": 0, "bytes": 0})
            x["items"] += 1
            x["bytes"] += size
        return out
