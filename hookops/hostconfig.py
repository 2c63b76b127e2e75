"""Read the parts of host.json that the local runner honours, with the Functions host's defaults."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)")


def parse_timespan(value: str) -> float:
    """A .NET TimeSpan as host.json writes it (`[d.]hh:mm:ss[.fffffff]`) -> seconds."""
    m = _TIMESPAN.fullmatch(str(value).strip())
    if not m:
        raise ValueError(f"not a TimeSpan (expected [d.]hh:mm:ss[.fff]): {value!r}")
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueuesConfig:
    """`extensions.queues`; defaults are the Storage Queues extension's (v5)."""
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueuesConfig = field(default_factory=QueuesConfig)
    function_timeout: float | None = None


def from_dict(doc: dict) -> HostConfig:
    if str(doc.get("version", "")) != "2.0":
        raise ValueError('host.json must say "version": "2.0" (the v2+ host refuses anything else)')
    ext = doc.get("extensions") or {}
    prefix = (ext.get("http") or {}).get("routePrefix", "api").strip("/")
    q = ext.get("queues") or {}
    batch = int(q.get("batchSize", 16))
    if not 1 <= batch <= 32:  # the host refuses values outside 1..32 at start-up
        raise ValueError(f"extensions.queues.batchSize must be 1..32, got {batch}")
    polling = parse_timespan(q.get("maxPollingInterval", "00:01:00"))
    if polling < 0.1:  # the host's minimum
        raise ValueError(f"extensions.queues.maxPollingInterval must be at least 00:00:00.100, got {polling}s")
    encoding = str(q.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise ValueError(f"extensions.queues.messageEncoding must be base64 or none, got {encoding!r}")
    queues = QueuesConfig(
        max_polling_interval=polling,
        visibility_timeout=parse_timespan(q.get("visibilityTimeout", "00:00:00")),
        batch_size=batch,
        new_batch_threshold=int(q.get("newBatchThreshold", batch // 2)),
        max_dequeue_count=int(q.get("maxDequeueCount", 5)),
        message_encoding=encoding,
    )
    timeout = doc.get("functionTimeout")
    return HostConfig(route_prefix=prefix, queues=queues,
                      function_timeout=parse_timespan(timeout) if timeout else None)


def load(path: Path | None) -> HostConfig:
    """Read host.json; a missing file means all defaults (the host would refuse to start, a test need not)."""
    if path is None or not Path(path).exists():
        return HostConfig()
    return from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
