"""The runner's HTTP front end: serves the HTTP triggers under the route prefix, with the limits a
real front end (Kestrel, in front of the host) has: framing checks, body size, slow-client timeouts,
a bound on concurrent connections and a deep listen backlog."""
from __future__ import annotations

import io
import logging
import re
import socket
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from hookops.host.base import Host
from hookops.host.functions import route_regex

log = logging.getLogger("hookops.runner")  # one logger for the whole runner
MAX_BODY = 100 * 1024 * 1024  # the host's default maxRequestBodySize
CLOSE = [("Connection", "close")]  # answers given without reading the request body
_DIGITS = re.compile(r"[0-9]{1,18}")           # Content-Length = 1*DIGIT; int() would take -1, +1, 1_0
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")       # chunk-size = 1*HEXDIG


class TooLarge(ValueError):
    """A request body over the host's limit."""


class Reader(io.RawIOBase):
    """A connection's reads: none waits more than `idle` s for a byte, and all of a phase end by
    `deadline`, which in a body moves on by 1/rate s for each byte received (a minimum data rate)."""
    def __init__(self, sock: socket.socket):
        self.sock, self.idle, self.deadline, self.rate = sock, None, None, 0.0

    def readable(self) -> bool:
        return True

    def phase(self, idle: float, within: float | None = None, rate: float = 0.0) -> None:
        self.idle, self.rate = idle, rate
        self.deadline = None if within is None else time.monotonic() + within
        self.sock.settimeout(idle)  # also what writes get

    def readinto(self, buf) -> int:
        wait = self.idle
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the client is too slow")
        self.sock.settimeout(wait)
        n = self.sock.recv_into(buf)
        if self.rate and self.deadline is not None:
            self.deadline += n / self.rate
        return n


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

    def setup(self):
        super().setup()
        self.rfile.close()  # reads go through a Reader, with the runner's timeouts
        self.reader = Reader(self.connection)
        self.rfile = io.BufferedReader(self.reader)
        self.server.conns.add(self.connection)

    def handle_one_request(self):  # a timeout closes the connection (http.server does that)
        runner = self.server.runner
        self.reader.phase(runner.idle_timeout, runner.header_timeout)
        super().handle_one_request()

    def finish(self):
        self.server.conns.discard(self.connection)
        super().finish()

    def log_message(self, *args):  # the default line carries the query string
        pass

    def _answer(self):
        self.server.answer(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


class HttpServer(ThreadingHTTPServer):
    """Serves a runner's HTTP functions on 127.0.0.1:port. The limits are the runner's attributes,
    read at each request; its connection counts are kept on the runner too (see wait_for())."""
    daemon_threads = True
    # http.server's listen backlog of 5 resets connections when many senders connect at once;
    # Kestrel, in front of the real host, queues 512.
    request_queue_size = 512

    def __init__(self, runner: Host, port: int):
        self.runner, self.full = runner, False
        self.inflight = 0                      # exchanges being answered; see Runner.wait_idle()
        self.conns: set[socket.socket] = set()  # open connections, cut by stop()
        super().__init__(("127.0.0.1", port), _Handler)

    # One thread per connection, but at most runner.max_connections of them: over that, the accept
    # loop waits for a connection to close, and new ones queue in the listen backlog (then the
    # kernel's SYN retries) rather than get a thread, or a 503 that a sender would have to retry.
    def get_request(self):
        r = self.runner
        with r.cond:
            if r.http_connections >= r.max_connections and not r.stopping.is_set():
                if not self.full:  # once per busy spell, not once per connection
                    log.warning("%d HTTP connections open (max_connections): new ones wait", r.http_connections)
                self.full = r.http_waiting = True
                r.cond.notify_all()
                r.cond.wait_for(lambda: r.http_connections < r.max_connections or r.stopping.is_set())
                r.http_waiting = False
            else:
                self.full = False
            if r.stopping.is_set():
                raise OSError("stopping")  # serve_forever() ignores it and sees the shutdown
            r.http_connections += 1
        try:
            return super().get_request()
        except BaseException:
            self._release()
            raise

    def shutdown_request(self, request):  # once for each accepted connection, whatever happened
        try:
            super().shutdown_request(request)
        finally:
            self._release()

    def _release(self) -> None:
        with self.runner.cond:
            self.runner.http_connections -= 1
            self.runner.cond.notify_all()

    def stop(self) -> None:
        """Stop accepting, let in-flight exchanges finish, then cut idle keep-alive connections."""
        self.shutdown()
        self.server_close()
        with self.runner.cond:
            self.runner.cond.wait_for(lambda: self.inflight == 0)
        for conn in list(self.conns):  # idle keep-alive connections would block their threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- one exchange -------------------------------------------------------------------
    def answer(self, h: BaseHTTPRequestHandler) -> None:
        r = self.runner
        t0, parts, status = time.perf_counter(), urlsplit(h.path), "-"
        with r.cond:
            self.inflight += 1
        try:
            h.reader.phase(r.idle_timeout, r.body_grace, r.min_body_rate)
            status, headers, body = (503, CLOSE, b"") if r.stopping.is_set() else self.dispatch(h, parts)
            h.reader.phase(r.idle_timeout)
            h.send_response(status)
            for k, v in headers:
                if k.lower() not in ("content-length", "transfer-encoding"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        finally:  # the path only: the query string may hold a challenge code
            log.info("%s %s %s %.1fms", h.command, parts.path, status, (time.perf_counter() - t0) * 1000)
            with r.cond:
                self.inflight -= 1
                r.cond.notify_all()

    def dispatch(self, h, parts):
        r = self.runner
        if parts.path.lower().startswith("/admin/functions/"):  # the host's "run this function now"
            from .admin import refusal
            from .timers import run_now
            if h.command != "POST":
                return 405, CLOSE, b""
            refused = refusal(r.admin_token, r.port, h.headers)  # see admin.py: key and same origin
            return (refused or run_now(r, parts.path.split("/")[-1])), CLOSE, b""
        matches = []
        for fn in r.functions.values():
            if fn.trigger["type"] == "httpTrigger":
                route = fn.trigger.get("route") or fn.name
                if m := route_regex(r.config.route_prefix, route).fullmatch(parts.path):
                    methods = {x.upper() for x in fn.trigger.get("methods") or []}
                    matches.append(("{" in route, methods, m, fn))  # literal routes first
        if not matches:
            return 404, CLOSE, b""
        allowed = sorted((t for t in matches if not t[1] or h.command in t[1]), key=lambda t: t[0])
        if not allowed:
            return 405, CLOSE + [("Allow", ", ".join(sorted(set().union(*(t[1] for t in matches)))))], b""
        _, _, m, fn = allowed[0]
        try:
            body = read_body(h)
        except TooLarge:
            return 413, CLOSE, b""
        except ValueError:  # a broken Content-Length or chunked framing
            return 400, CLOSE, b""
        except TimeoutError:  # slower than idle_timeout, or than min_body_rate after body_grace
            return 408, CLOSE, b""
        headers, params = {}, {}
        for k, v in h.headers.items():  # repeated ones join with a comma
            headers[k] = f"{headers[k]},{v}" if k in headers else v
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            params[k] = f"{params[k]},{v}" if k in params else v
        req = func.HttpRequest(h.command, f"{r.url}{h.path}", headers=headers, params=params, body=body,
                               route_params={k: v for k, v in m.groupdict().items() if v is not None})
        r.count(fn.name, "invoked")
        try:
            out = r.invoke(fn, req)
            resp = next(out[b["name"]] for b in fn.outputs if b["type"] == "http")
            resp = func.HttpResponse(resp) if isinstance(resp, str) else resp
            if not isinstance(resp, func.HttpResponse):  # the worker cannot encode it: the call fails
                raise TypeError(f"an HTTP function must return HttpResponse or str, not {type(resp).__name__}")
        except Exception:  # like the host: a bare 500; the details go to the log only
            log.error("%s failed\n%s", fn.name, traceback.format_exc())
            r.count(fn.name, "failed")
            return 500, [], b""
        r.count(fn.name, "succeeded")
        hdrs = list(resp.headers.items())
        if "content-type" not in resp.headers:  # as azure.functions' encoder does
            mt = resp.mimetype
            hdrs.append(("Content-Type", f"{mt}; charset={resp.charset}" if mt.startswith("text/") else mt))
        return resp.status_code, hdrs, resp.get_body()


def read_body(h) -> bytes:
    """The body, or ValueError for broken framing (never a negative size: read(-1) reads to EOF)."""
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():  # Preservica sends chunked
        chunks, total, framing = [], 0, 0  # size lines, extensions and trailers count too

        def line(limit: int) -> bytes:
            nonlocal framing
            text = h.rfile.readline(limit)
            framing += len(text)
            if framing > MAX_BODY:
                raise TooLarge()
            if not text.endswith(b"\n"):  # the stream ended, or a line over the limit
                raise ValueError("broken chunked framing")
            return text

        while True:
            digits = line(1024).split(b";")[0].strip(b" \t\r\n")
            if not _HEX.fullmatch(digits):
                raise ValueError("bad chunk size")
            if not (size := int(digits, 16)):
                break
            total += size
            if total > MAX_BODY:
                raise TooLarge()
            chunks.append(h.rfile.read(size))
            if len(chunks[-1]) < size or line(8) not in (b"\r\n", b"\n"):
                raise ValueError("broken chunked framing")
        while line(8192) not in (b"\r\n", b"\n"):  # trailers
            pass
        return b"".join(chunks)
    values = {v.strip(" \t") for v in h.headers.get_all("Content-Length") or []}
    if len(values) > 1 or not all(_DIGITS.fullmatch(v) for v in values):
        raise ValueError("bad Content-Length")
    length = int(values.pop()) if values else 0
    if length > MAX_BODY:
        raise TooLarge()
    body = h.rfile.read(length)
    if len(body) < length:
        raise ValueError("body shorter than Content-Length")
    return body
