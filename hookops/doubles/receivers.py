"""Local HTTP receivers for tests and benchmarks: Teams Workflows webhook, catalogue lookup, relay.

Every double listens on 127.0.0.1 at a free port, records each request in ``received`` before it
answers (so a client that saw the response can also see the record), and is stopped by ``stop()``
or by leaving its ``with`` block. ``HttpDouble`` is the shared base; ``preservica.py`` uses it too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit



class Received(NamedTuple):
    """One request as the double saw it. Header names are lower-cased; the body is de-chunked."""
    method: str
    path: str           # raw request target, query string included
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Reply(NamedTuple):
    status: int
    headers: dict[str, str] = {}
    body: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, like the real services; every reply has a length
    timeout = 30                    # a stuck client cannot pin a handler thread for ever
    disable_nagle_algorithm = True  # else headers and body in two writes cost a 40 ms delayed ACK

    def _any(self):
        self.server.double._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

    def setup(self):
        super().setup()
        self.server.double._track(self.connection, add=True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.double._track(self.connection, add=False)

    def log_message(self, format, *args):  # noqa: A002 - quiet: request lines can carry secrets (sig=...)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False   # server_close() joins handler threads, so stop() leaves nothing behind
    block_on_close = True

    def handle_error(self, request, client_address):
        # A client that hangs up, or stop() cutting a keep-alive connection, is not a test failure.
        if not (self.double._stopping or isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError))):
            super().handle_error(request, client_address)


class HttpDouble:
    """Threaded HTTP server base. Subclasses implement ``handle(request) -> Reply``.

    Controls shared by all doubles:
      - ``latency``: seconds slept before every answer (benchmarks); default 0.
      - ``respond_with(status, headers=None, body=b"", times=1)``: the next ``times`` requests get
        this answer instead of the normal one (still recorded in ``received``).
      - ``wait_for(n, timeout)``: block until ``received`` holds at least n requests.
      - ``hold()`` / ``release()``: requests are recorded at once but answered only after release()
        (at most 60 s later), so a test can act while a caller's request is in flight.
    """

    def __init__(self):
        self.latency: float = 0.0
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._scripted: deque[Reply] = deque()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._gate = threading.Event()
        self._gate.set()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self):
        if self._server is not None:
            return self
        self._stopping = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.double = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping = True
        self._gate.set()
        self._server.shutdown()
        # Idle keep-alive connections would keep their handler threads blocked in readline().
        with self._cond:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- controls ----------------------------------------------------------------------------
    def respond_with(self, status: int, headers: dict[str, str] | None = None, body: bytes | str = b"",
                     times: int = 1) -> None:
        body = body.encode() if isinstance(body, str) else body
        with self._cond:
            self._scripted.extend([Reply(status, dict(headers or {}), body)] * times)

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least ``n`` requests arrived; returns ``received``. Raises TimeoutError."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= n, timeout):
                raise TimeoutError(f"{type(self).__name__}: {len(self.received)} of {n} requests "
                                   f"after {timeout}s: {[(r.method, r.path) for r in self.received]}")
            return list(self.received)

    # -- for subclasses --------------------------------------------------------------------------
    def handle(self, request: Received) -> Reply:
        """Answer one request (already recorded in ``received``)."""
        raise NotImplementedError

    def _scripted_reply(self) -> Reply | None:
        with self._cond:
            return self._scripted.popleft() if self._scripted else None

    def _record(self, request: Received) -> None:
        with self._cond:
            self.received.append(request)
            self._cond.notify_all()

    # -- plumbing --------------------------------------------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            (self._connections.add if add else self._connections.discard)(conn)

    def _serve(self, h: _Handler) -> None:
        request = Received(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, _read_body(h))
        self._record(request)   # visible to wait_for() as soon as it arrives
        self._gate.wait(60)
        if self.latency:
            time.sleep(self.latency)
        reply = self._scripted_reply()
        if reply is None:
            try:
                reply = self.handle(request)
            except Exception as e:  # a bug in the double should surface as a 500, not a hung client
                reply = Reply(500, {"Content-Type": "text/plain"}, f"double failed: {e!r}".encode())
        h.send_response(reply.status)
        for name, value in reply.headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(reply.body)))
        h.end_headers()
        if h.command != "HEAD" and reply.body:
            h.wfile.write(reply.body)


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    # Preservica sends chunked bodies; most clients send Content-Length. Accept both.
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        parts = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):   # trailers
                    pass
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _json_reply(status: int, doc) -> Reply:
    return Reply(status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(doc).encode())


# ---------------------------------------------------------------------------------------------
class TeamsDouble(HttpDouble):
    """A Teams Workflows "When a Teams webhook request is received" endpoint.

    ``url`` looks like the real one, ``sig=`` included (a wrong or missing sig gets 401). A valid
    Adaptive Card message gets 202 with an empty body; a malformed one gets 400 with a reason.
    ``cards`` holds the ``content`` of every accepted card. Use ``respond_with(429,
    {"Retry-After": "1"})`` or ``respond_with(400)`` to script failures.
    """

    PATH = "/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke"

    def __init__(self, sig: str | None = None):
        super().__init__()
        self.sig = sig or secrets.token_urlsafe(32)
        self.cards: list[dict] = []

    @property
    def url(self) -> str:
        return (f"{self.base_url}{self.PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
                f"&sv=1.0&sig={self.sig}")

    def handle(self, request: Received) -> Reply:
        parts = urlsplit(request.path)
        if request.method != "POST" or parts.path != self.PATH:
            return _json_reply(404, {"error": {"code": "NotFound"}})
        if not hmac.compare_digest(parse_qs(parts.query).get("sig", [""])[0], self.sig):
            return _json_reply(401, {"error": {"code": "DirectApiAuthorizationRequired"}})
        problem = adaptive_card_problem(request.body)
        if problem:
            return _json_reply(400, {"error": {"code": "InvalidRequestContent", "message": problem}})
        with self._cond:
            self.cards.append(json.loads(request.body)["attachments"][0]["content"])
        return Reply(202)


def adaptive_card_problem(body: bytes) -> str | None:
    """Why ``body`` is not a Teams Adaptive Card message envelope, or None when it is one."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        return f"body is not JSON: {e}"
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return 'type must be "message"'
    attachments = doc.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    first = attachments[0]
    if not isinstance(first, dict) or first.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return 'attachments[0].contentType must be "application/vnd.microsoft.card.adaptive"'
    content = first.get("content")
    if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
        return 'attachments[0].content.type must be "AdaptiveCard"'
    if "body" in content and not isinstance(content["body"], list):
        return "attachments[0].content.body must be a list"
    return None


# ---------------------------------------------------------------------------------------------
class CatalogueDouble(HttpDouble):
    """An external catalogue: ``GET /records/{identifier}`` answers the XML set by ``add_record``, else 404."""

    def __init__(self):
        super().__init__()
        self.records: dict[str, bytes] = {}

    @property
    def url_template(self) -> str:
        return f"{self.base_url}/records/{{identifier}}"

    def add_record(self, identifier: str, xml: str | bytes) -> None:
        with self._cond:
            self.records[identifier] = xml.encode("utf-8") if isinstance(xml, str) else xml

    def remove_record(self, identifier: str) -> None:
        with self._cond:
            self.records.pop(identifier, None)

    def handle(self, request: Received) -> Reply:
        path = urlsplit(request.path).path
        if request.method not in ("GET", "HEAD") or not path.startswith("/records/"):
            return Reply(404)
        with self._cond:
            record = self.records.get(unquote(path[len("/records/"):]))
        if record is None:
            return Reply(404, {"Content-Type": "text/plain"}, b"no such record")
        return Reply(200, {"Content-Type": "application/xml; charset=utf-8"}, record)


# ---------------------------------------------------------------------------------------------
class RelayReceiver(HttpDouble):
    """A downstream endpoint that receives Standard Webhooks deliveries.

    A delivery is accepted (204) only when BOTH the svix package and this module's own reading of
    the spec (``verify_standard_webhook``) accept its signature: svix 2.x is a thin wrapper around
    the ``standardwebhooks`` package the app signs with, so on its own it is not an independent check.
    Bad signature -> 401. ``gone()`` makes every later request answer 410; ``respond_with`` scripts
    any other status (scripted answers skip verification and are not deliveries). ``deliveries`` holds accepted requests; ``disagreements`` lists requests
    the two verifiers judged differently (should stay empty).
    """

    def __init__(self, secret: str | None = None, path: str = "/hooks/preservica"):
        super().__init__()
        self.secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.path = path
        self.deliveries: list[Received] = []
        self.disagreements: list[Received] = []
        self._gone = False

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def gone(self) -> None:
        self._gone = True

    def wait_for_deliveries(self, n: int, timeout: float = 5.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.deliveries) >= n, timeout):
                raise TimeoutError(f"RelayReceiver: {len(self.deliveries)} of {n} deliveries after {timeout}s "
                                   f"({len(self.received)} requests received)")
            return list(self.deliveries)

    def handle(self, request: Received) -> Reply:
        if self._gone:
            return Reply(410)
        if request.method != "POST" or urlsplit(request.path).path != self.path:
            return Reply(404)
        from svix.webhooks import Webhook as SvixWebhook   # here: importing svix costs ~1 s
        try:
            SvixWebhook(self.secret).verify(request.body, request.headers)
            svix_ok = True
        except Exception:   # WebhookVerificationError, or UnicodeDecodeError on a non-UTF-8 body
            svix_ok = False
        own_ok = verify_standard_webhook(self.secret, request.body, request.headers)
        with self._cond:
            if svix_ok != own_ok:
                self.disagreements.append(request)
            if not (svix_ok and own_ok):
                return Reply(401)
            self.deliveries.append(request)
            self._cond.notify_all()
        return Reply(204)


def verify_standard_webhook(secret: str, body: bytes, headers: dict[str, str], tolerance: int = 300,
                            now: float | None = None) -> bool:
    """Standard Webhooks v1 check written from the spec, independent of svix/standardwebhooks:
    HMAC-SHA256(base64-decoded whsec_ key, f"{id}.{timestamp}.".encode() + raw body), base64,
    any of the space-separated ``v1,<sig>`` entries may match, timestamp within ``tolerance`` s."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and stamp and sigs):
        return False
    try:
        ts = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    for entry in sigs.split():
        version, _, sig = entry.partition(",")
        try:
            if version == "v1" and hmac.compare_digest(base64.b64decode(sig, validate=True), expected):
                return True
        except ValueError:
            continue
    return False
