"""Probes installed in the process that serves the app (the local runner, in the benchmark's process).

StorageCounter: every storage request at the client, by who sent it (the app, the runner standing
in for the host's queue receive/delete, or the benchmark itself), by service and by operation.

Also installed there: StageClock (bench/stage_clock.py), timers around the app's stages, and
CpuSampler (bench/cpu_sampler.py), where the process's CPU goes across all its threads.
"""
from __future__ import annotations

import functools
import sys
import threading
from collections import Counter
from urllib.parse import urlsplit

from bench.common import ROOT


def endpoints(connection_string: str) -> dict[str, str]:
    """{service: base URL} from a storage connection string (Azurite's, in the benchmark)."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return {svc: parts[f"{svc.capitalize()}Endpoint"].rstrip("/") for svc in ("queue", "blob", "table")
            if f"{svc.capitalize()}Endpoint" in parts}


class StorageCounter:
    """Counts every request the azure-core `RequestsTransport` sends in this process, retries included.

    A bench-only seam: `RequestsTransport.send` is replaced on the class while installed, so the app's
    clients (handlers/clients/storage.py builds them with a RequestsTransport) and the runner's queue
    clients (hookops/host/queues.py, the SDK's default transport) are counted alike. Who sent a request
    is the innermost frame of the project's own code on the stack: handlers/ is the app, hookops/host/
    the runner (the Functions host's receive, delete and poison handling), bench/ the benchmark's own
    look-ups. A queue receive that returned no message is counted as "receive (empty)"."""

    def __init__(self, connection_string: str):
        self.endpoints = endpoints(connection_string)
        self._lock = threading.Lock()
        self.counts: Counter = Counter()   # (owner, service, operation) -> requests
        # (owner, service, operation) -> request bytes, and items: messages a receive returned, operations in
        # a table transaction, rows a query returned (what bench/floor.py needs to repeat the same requests)
        self.sizes: Counter = Counter()
        self.items: Counter = Counter()
        self._original = None

    def install(self) -> StorageCounter:
        from azure.core.pipeline.transport import RequestsTransport
        original = self._original = RequestsTransport.send
        counter = self

        @functools.wraps(original)
        def send(transport, request, **kwargs):
            owner = _owner(sys._getframe(1))
            response = original(transport, request, **kwargs)
            counter._count(owner, request, response)
            return response
        RequestsTransport.send = send
        return self

    def remove(self) -> None:
        if self._original is not None:
            from azure.core.pipeline.transport import RequestsTransport
            RequestsTransport.send = self._original
            self._original = None

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.sizes.clear()
            self.items.clear()

    def detail(self) -> dict:
        """{"owner|service|operation": {"requests", "bytes", "items"}}, summed since the last reset."""
        with self._lock:
            return {"|".join(k): {"requests": v, "bytes": self.sizes[k], "items": self.items[k]}
                    for k, v in sorted(self.counts.items())}

    def snapshot(self) -> dict:
        with self._lock:
            return {"|".join(k): v for k, v in sorted(self.counts.items())}

    def _count(self, owner: str, request, response) -> None:
        url = request.url
        service = next((s for s, base in self.endpoints.items() if url.startswith(base)), None)
        if service:   # the path after the account (Azurite puts the account in the path)
            parts = urlsplit(url)
            path, query = urlsplit(self.endpoints[service]).path, parts.query
            path = parts.path[len(path):]
        else:
            service, path, query = _service_from_host(url), urlsplit(url).path, urlsplit(url).query
        op = _operation(service, request.method, path, query, response)
        status = getattr(response, "status_code", 0) or 0
        if status >= 400:   # refused: e.g. 412, a conditional write that lost a race; 404, a missing queue
            op += f" ({status})"
        size, items = _size(request), _items(service, op, request, response)
        with self._lock:
            self.counts[(owner, service, op)] += 1
            self.sizes[(owner, service, op)] += size
            self.items[(owner, service, op)] += items


def _size(request) -> int:
    """A request's body bytes: its Content-Length, or the body's length."""
    try:
        return int(request.headers.get("Content-Length") or 0) or len(request.body or b"")
    except (TypeError, ValueError):
        return 0


def _items(service: str, op: str, request, response) -> int:
    """Messages a receive returned, operations in a table transaction (its multipart body has one
    `application/http` part per operation), rows a table query returned (one `odata.etag` each)."""
    try:
        if op == "receive":
            return response.internal_response.content.count(b"<QueueMessage>")
        if service == "table" and op == "transaction":
            body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
            return body.count(b"application/http")
        if service == "table" and op in ("query", "get"):
            return response.internal_response.content.count(b"odata.etag")
    except Exception:  # not a requests response, or no body: no items known
        return 0
    return 0


def _owner(frame) -> str:
    handlers, host, bench = str(ROOT / "handlers"), str(ROOT / "hookops" / "host"), str(ROOT / "bench")
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(handlers):
            return "app"
        if name.startswith(host):
            return "runner"
        if name.startswith(bench) and not name.endswith("probes.py"):
            return "bench"
        frame = frame.f_back
    return "other"


def _service_from_host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    for svc in ("queue", "blob", "table"):
        if f".{svc}." in host:
            return svc
    return "other"


def _operation(service: str, method: str, path: str, query: str, response) -> str:
    """A readable name for one storage request; blob operations name their container."""
    path = path.rstrip("/")
    method = method.upper()
    if service == "queue":
        if path.endswith("/messages"):
            if method == "POST":
                return "put"
            if method == "GET":
                if "peekonly=true" in query.lower():
                    return "peek"
                return "receive" if _has_message(response) else "receive (empty)"
            if method == "DELETE":
                return "clear"
        if "/messages/" in path:
            return {"DELETE": "delete", "PUT": "update"}.get(method, method.lower())
        return {"PUT": "create queue"}.get(method, f"{method.lower()} queue")
    if service == "blob":
        container = path.lstrip("/").split("/", 1)[0]
        if "restype=container" in query:
            return {"PUT": "create container"}.get(method, f"{method.lower()} container") + f" {container}"
        return {"PUT": "put", "GET": "get", "HEAD": "properties", "DELETE": "delete"}.get(
            method, method.lower()) + f" {container}"
    if service == "table":
        if path.endswith("/$batch"):
            return "transaction"
        if path.endswith("/Tables"):
            return "create table" if method == "POST" else "list tables"
        if method == "GET":
            return "get" if "PartitionKey=" in path else "query"
        return {"POST": "insert", "PUT": "upsert", "PATCH": "merge", "MERGE": "merge",
                "DELETE": "delete"}.get(method, method.lower())
    return method.lower()


def _has_message(response) -> bool:
    try:
        return b"<QueueMessage>" in response.internal_response.content
    except Exception:  # not a requests response: count it as a receive
        return True
