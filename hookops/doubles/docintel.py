"""Local Azure AI Document Intelligence (the read model's analyze operation) over HTTPS with a trustme
certificate, for the real `azure-ai-documentintelligence` client.

    with DocIntelDouble() as di:            # key "test-docintel-key"; di.endpoint, di.ca_bundle
        di.set_pages([["Page one, line one", "line two"], ["Page two"]], confidence=0.9)
        di.running_polls = 1                # answers "running" this many times before "succeeded"
        di.hold(); ...; di.release()        # polls answer "running" until released (a slow analysis)
        di.fail_next(429, {"Retry-After": "1"})            # the next analyze POST
        di.fail_next(200, body=..., on="poll")             # the next poll
        ... di.calls[-1].query["pages"], .body_sha256, .body, .content_type ...

Sources (azure-rest-api-specs, specification/ai/DocumentIntelligence): routes.tsp (POST
/documentintelligence/documentModels/{modelId}:analyze?api-version=...&pages=..., body the document bytes;
202 with Operation-Location; GET .../documentModels/{modelId}/analyzeResults/{resultId} answers
{status: notStarted|running|succeeded|failed, createdDateTime, lastUpdatedDateTime, analyzeResult, error}),
models.tsp (AnalyzeResult: apiVersion, modelId, stringIndexType, content, pages[pageNumber, words[content,
confidence, span], lines[content, spans], spans]) and examples/2025-09-01/AnalyzeDocument_Stream.json and
GetAnalyzeDocumentResult.json. Auth: `Ocp-Apim-Subscription-Key` or `Authorization: Bearer <Entra ID token>`
(main.tsp @useAuth). Inferred: the error bodies' codes (InvalidContent, ModelNotFound), and Retry-After on 429.
Nothing a caller sent as a credential is kept: `calls` holds "<redacted>" for those headers.
"""
from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass

import trustme

from .aiservice import DENIED, AiHandler, AiServiceDouble

PREFIX = "/documentintelligence/documentModels/"
MODEL = "prebuilt-read"
KEEP_BODY = 16 * 1024 * 1024
READABLE_MAGIC = (b"%PDF-", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"BM")
CREATED = "2026-12-07T03:00:00Z"


@dataclass
class Call:
    method: str
    path: str
    query: dict
    headers: dict              # credential headers as "<redacted>"
    content_type: str = ""
    body_size: int = 0
    body_sha256: str = ""
    body: bytes | None = None


def _error(code: str, message: str, inner: str | None = None) -> dict:
    # Inferred codes; the shape {"error": {"code", "message", "innererror"}} is models.tsp's DocumentIntelligenceError.
    err: dict = {"code": code, "message": message}
    if inner:
        err["innererror"] = {"code": inner, "message": message}
    return {"error": err}


class _Handler(AiHandler):

    def _call(self, method: str) -> tuple[DocIntelDouble, Call]:
        return self.server.double, Call(method, *self.request_parts(), self.headers.get("Content-Type", ""))

    def do_POST(self) -> None:
        d, call = self._call("POST")
        digest, size, kept = hashlib.sha256(), 0, bytearray()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 256 * 1024))
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            remaining -= len(chunk)
            if len(kept) < KEEP_BODY:
                kept += chunk
        call.body_size, call.body_sha256 = size, digest.hexdigest()
        call.body = bytes(kept) if size <= KEEP_BODY else None
        scripted = d._record(call, "analyze", self.headers)
        if scripted is not None:
            return self._send(*scripted)
        model = call.path[len(PREFIX):].removesuffix(":analyze") if call.path.startswith(PREFIX) else ""
        if not call.path.endswith(":analyze") or model != MODEL:
            return self._send(404, _error("NotFound", "Resource not found", "ModelNotFound"))
        if not call.query.get("api-version") or size == 0:
            return self._send(400, _error("InvalidRequest", "Invalid request.", "InvalidParameter"))
        if not (call.body or b"").startswith(READABLE_MAGIC):
            return self._send(400, _error("InvalidRequest", "The file is corrupted or format is unsupported.",
                                          "InvalidContent"))
        result_id = str(uuid.uuid4())
        with d._lock:
            d._operations[result_id] = [d.running_polls, d._result(call)]
        version = call.query["api-version"]
        location = f"{d.endpoint.rstrip('/')}{PREFIX}{model}/analyzeResults/{result_id}?api-version={version}"
        self._send(202, None, {"Operation-Location": location})

    def do_GET(self) -> None:
        d, call = self._call("GET")
        scripted = d._record(call, "poll", self.headers)
        if scripted is not None:
            return self._send(*scripted)
        result_id = call.path.rsplit("/", 1)[-1]
        with d._lock:
            op = d._operations.get(result_id) if "/analyzeResults/" in call.path else None
            if op is not None and (op[0] > 0 or not d.released.is_set()):
                op[0] -= op[0] > 0
                return self._send(200, {"status": "running", "createdDateTime": CREATED,
                                        "lastUpdatedDateTime": CREATED})
        if op is None:
            return self._send(404, _error("NotFound", "Resource not found"))
        self._send(200, {"status": "succeeded", "createdDateTime": CREATED, "lastUpdatedDateTime": CREATED,
                         "analyzeResult": op[1]})


class DocIntelDouble(AiServiceDouble):
    """HTTPS Document Intelligence endpoint on 127.0.0.1 at a free port (see the module docstring)."""
    HANDLER = _Handler
    PREFIX = "docintel-double-"

    def __init__(self, key: str = "test-docintel-key", ca: trustme.CA | None = None, accept_token=None):
        super().__init__(key, ca, accept_token)
        self._failures: dict[str, list] = {"analyze": [], "poll": []}
        self._pages: list[list[str]] = [["Hello from the archive."]]
        self._confidence = 0.95
        self._operations: dict[str, list] = {}
        self.calls: list[Call] = []
        self.running_polls = 0
        self.released = threading.Event()
        self.released.set()

    def hold(self) -> None:
        """Every analysis stays "running" until release(): as slow as a test needs, without a clock."""
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures = {"analyze": [], "poll": []}
            self._operations.clear()
            self.running_polls = 0
        self.released.set()

    def set_pages(self, pages: list[list[str]], confidence: float = 0.95) -> None:
        """Lines per page of every later document (a request's `pages` range cuts them)."""
        with self._lock:
            self._pages, self._confidence = [list(p) for p in pages], confidence

    def fail_next(self, status: int, headers: dict | None = None, body: dict | None = None, times: int = 1,
                  on: str = "analyze") -> None:
        with self._lock:
            self._failures[on] += [(status, body if body is not None else _error(str(status), "scripted failure"),
                                    dict(headers or {}))] * times

    def _record(self, call: Call, step: str, headers) -> tuple | None:
        """Keep the call; the answer a test scripted, or 401 for a missing or wrong credential."""
        with self._lock:
            self.calls.append(call)
            if not self._authorized(headers):
                return 401, DENIED
            return self._failures[step].pop(0) if self._failures[step] else None

    def _result(self, call: Call) -> dict:
        first, _, last = (call.query.get("pages") or "").partition("-")
        pages = self._pages
        if first.isdigit() and last.isdigit():
            pages = pages[int(first) - 1:int(last)]
        content, out = "", []
        for number, lines in enumerate(pages, 1):
            words, line_out = [], []
            for line in lines:
                start = len(content)
                for word in line.split():
                    words.append({"content": word, "polygon": [0, 0, 1, 0, 1, 1, 0, 1],
                                  "confidence": self._confidence, "span": {"offset": len(content), "length": len(word)}})
                    content += word + " "
                content = content.rstrip(" ") + "\n"
                line_out.append({"content": line, "polygon": [0, 0, 1, 0, 1, 1, 0, 1],
                                 "spans": [{"offset": start, "length": len(line)}]})
            out.append({"pageNumber": number, "angle": 0, "width": 8.5, "height": 11, "unit": "inch",
                        "words": words, "lines": line_out, "spans": [{"offset": 0, "length": len(content)}]})
        return {"apiVersion": call.query.get("api-version", ""), "modelId": MODEL, "stringIndexType": "textElements",
                "content": content.rstrip("\n"), "pages": out, "contentFormat": "text"}
