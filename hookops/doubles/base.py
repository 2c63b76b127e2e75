"""The shared base of the local HTTP doubles (``receivers.py``, ``preservica/``): ``HttpDouble``.

Every double listens on 127.0.0.1 at a free port, records each request in ``received`` before it
answers (so a client that saw the response can also see the record), and is stopped by ``stop()``
or by leaving its ``with`` block.
"""
from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple


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
    body: bytes = b""   # or an iterable of byte chunks, with Content-Length in headers (streamed)


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
        # A client that refuses the certificate of a double serving HTTPS (`tls`) is not one either.
        if not (self.double._stopping or isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError))):
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

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.tls = tls   # serve HTTPS with this server context (tls.Certificates): a client's CA bundle under test
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
        if self.tls:   # the handshake in the handler's thread, on its first read (as tls.Server does)
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True,
                                                       do_handshake_on_connect=False)
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
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

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
        if isinstance(reply.body, (bytes, bytearray)):
            h.send_header("Content-Length", str(len(reply.body)))
        h.end_headers()
        if h.command == "HEAD":
            return
        if isinstance(reply.body, (bytes, bytearray)):
            h.wfile.write(reply.body)
        else:  # an iterable of chunks (a large generated body); its Content-Length is in reply.headers
            for chunk in reply.body:
                h.wfile.write(chunk)


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    # Preservica sends chunked bodies (pyPreservica webHooksAPI.py's reference receiver reads only chunked
    # ones); most clients send Content-Length. Accept both.
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
