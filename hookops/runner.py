"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

It learns the functions the way the Python worker does (the module's one FunctionApp,
`get_functions()`, each function's raw bindings), serves the HTTP triggers and polls the queue
triggers as host.json says, so that what works here behaves the same on Azure.

    python -m hookops.runner [--app-dir .] [--port 7071] [--host-json PATH]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import importlib
import inspect
import io
import json
import logging
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
import typing
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.queue import QueueMessage  # the one with dequeue_count etc., which the worker builds
from azure.storage.queue import LinearRetry, QueueClient

from hookops import azurite, hostconfig

log = logging.getLogger("hookops.runner")
LEASE_SECONDS = 600           # the host keeps a message invisible this long while it runs
MAX_BODY = 100 * 1024 * 1024  # the host's default maxRequestBodySize
SUPPORTED = {"httpTrigger", "http", "queueTrigger"}
CLOSE = [("Connection", "close")]  # answers given without reading the request body


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # http.server's listen backlog of 5 resets connections when many senders connect at once;
    # Kestrel, in front of the real host, queues 512.
    request_queue_size = 512
    runner: "Runner"
    full = False

    # One thread per connection, but at most runner.max_connections of them: over that, the accept
    # loop waits for a connection to close, and new ones queue in the listen backlog (then the
    # kernel's SYN retries) rather than get a thread, or a 503 that a sender would have to retry.
    def get_request(self):
        r = self.runner
        with r._cond:
            if r.http_connections >= r.max_connections and not r._stop.is_set():
                if not self.full:  # once per busy spell, not once per connection
                    log.warning("%d HTTP connections open (max_connections): new ones wait", r.http_connections)
                self.full = r.http_waiting = True
                r._cond.notify_all()
                r._cond.wait_for(lambda: r.http_connections < r.max_connections or r._stop.is_set())
                r.http_waiting = False
            else:
                self.full = False
            if r._stop.is_set():
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
        with self.runner._cond:
            self.runner.http_connections -= 1
            self.runner._cond.notify_all()


class _Reader(io.RawIOBase):
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


class RunnerError(RuntimeError):
    """The app cannot be served: what the host would refuse, or what this runner does not do."""


class TooLarge(ValueError):
    """A request body over the host's limit."""


_DIGITS = re.compile(r"[0-9]{1,18}")           # Content-Length = 1*DIGIT; int() would take -1, +1, 1_0
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")       # chunk-size = 1*HEXDIG


class Out:
    """What the worker passes for a `func.Out[...]` parameter."""
    value = None

    def set(self, value):
        self.value = value

    def get(self):
        return self.value


class Function:
    """One indexed function, described only by its own raw bindings."""
    def __init__(self, fn):
        self.name = fn.get_function_name()
        self.user = fn.get_user_function()
        self.bindings = [json.loads(b) for b in fn.get_raw_bindings()]
        for b in self.bindings:
            if b.get("type") not in SUPPORTED:
                raise RunnerError(f"function {self.name!r}: binding {b.get('name')!r} of type "
                                  f"{b.get('type')!r} is not supported by the local runner")
        triggers = [b for b in self.bindings if b["type"].endswith("Trigger")]
        if len(triggers) != 1:
            raise RunnerError(f"function {self.name!r} has {len(triggers)} triggers, needs exactly one")
        self.trigger = triggers[0]
        self.outputs = [b for b in self.bindings if str(b.get("direction", "")).lower() == "out"]
        params = set(inspect.signature(self.user).parameters)
        bound = {b["name"] for b in self.bindings} - {"$return"}
        if params != bound:  # the worker refuses both kinds of mismatch (its `context` is not supported here)
            raise RunnerError(f"function {self.name!r}: parameters {sorted(params)} do not match "
                              f"bindings {sorted(bound)}")
        self.trigger_type = typing.get_type_hints(self.user).get(self.trigger["name"])


def route_regex(prefix: str, route: str) -> re.Pattern:
    """ASP.NET-style templates: {name}, {name:constraint} (constraint ignored), {name?}, {*rest}."""
    rx = "/" + re.escape(prefix) if prefix else ""
    for seg in filter(None, route.strip("/").split("/")):
        m = re.fullmatch(r"\{(\*?)(\w+)(?::[^}?]*)?(\??)\}", seg)
        if not m:
            rx += "/" + re.escape(seg)
        elif m[1] or m[3]:
            rx += f"(?:/(?P<{m[2]}>{'.*' if m[1] else '[^/]+'}))?"
        else:
            rx += f"/(?P<{m[2]}>[^/]+)"
    return re.compile(rx + "/?", re.IGNORECASE)  # the host's routing ignores case


class Runner:
    def __init__(self, app_dir: Path, port: int = 7071, host_json: Path | None = None,
                 env: dict | None = None, module: str = "function_app", lease_seconds: int = LEASE_SECONDS):
        self.app_dir = Path(app_dir).resolve()
        self.port = port
        self.config = hostconfig.load(Path(host_json) if host_json else self.app_dir / "host.json")
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.module = module
        self.lease_seconds = lease_seconds  # tests shorten it to see a lost lease expire
        self.functions: dict[str, Function] = {}
        # per function: invoked / succeeded / failed / poisoned, and storage outages seen; see wait_for()
        self.stats: dict[str, dict[str, int]] = defaultdict(
            lambda: {"invoked": 0, "succeeded": 0, "failed": 0, "poisoned": 0, "outages": 0})
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queues: dict[str, str] = {}            # queue-triggered function -> its queue
        self._wake: dict[str, threading.Event] = {}  # function -> poll now
        self._empty_polls: dict[str, int] = {}
        self._http_inflight = 0
        self._conns: set[socket.socket] = set()
        # The limits of a front end, as Kestrel's defaults (tests shorten them; read at each request):
        self.header_timeout = 30.0  # request line and headers, from when the connection is ready for
        #                             a request: so also how long an idle keep-alive connection stays
        self.idle_timeout = 30.0    # the longest wait for any one read or write
        self.body_grace, self.min_body_rate = 5.0, 240.0  # then the body must average 240 bytes/s
        self.max_connections = 100  # concurrent connections, one thread each; see _HttpServer
        self.http_connections, self.http_waiting = 0, False
        self._saved_env: dict[str, str | None] = {}
        self._server = self._loop = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- loading ------------------------------------------------------------------------
    def _set_env(self) -> None:
        values = {}
        settings = self.app_dir / "local.settings.json"
        if settings.exists():  # like `func start`: what the environment already has wins
            values = {k: str(v) for k, v in json.loads(settings.read_text()).get("Values", {}).items()
                      if k not in os.environ}
        values.update(self.env)
        for k, v in values.items():
            self._saved_env.setdefault(k, os.environ.get(k))  # put back by stop()
            os.environ[k] = v

    def load(self) -> dict[str, Function]:
        """Import the app and learn its functions from its own bindings, as the worker does."""
        self._set_env()
        # A fresh import with the app folder first, as in a new worker (get_functions() works once
        # per FunctionApp); then sys.modules and sys.path are put back (the app folder kept last for
        # the app's later imports), so that apps loaded in one process do not shadow each other.
        app, saved_path, before = str(self.app_dir), list(sys.path), sys.modules.pop(self.module, None)
        sys.path.insert(0, app)
        try:
            mod = importlib.import_module(self.module)
        finally:
            sys.path[:] = saved_path + ([app] if app not in saved_path else [])
            sys.modules.pop(self.module, None)
            if before is not None:
                sys.modules[self.module] = before
        apps = [v for v in vars(mod).values() if isinstance(v, func.FunctionRegister)]
        if len(apps) != 1:
            raise RunnerError(f"{self.module}.py must define exactly one FunctionApp, found {len(apps)}")
        self.functions = {f.name: f for f in map(Function, apps[0].get_functions())}
        if not self.functions:
            raise RunnerError(f"{self.module}.py defines no functions (the host would find 0 functions)")
        for fn in self.functions.values():
            self.stats[fn.name]  # listed before their first call
            if fn.trigger["type"] == "queueTrigger":  # a missing setting fails now, not mid-run
                self._connection(fn.trigger)
                self._queues[fn.name] = self._queue_name(fn.trigger)
        return self.functions

    # ---- invoking -----------------------------------------------------------------------
    def _invoke(self, fn: Function, trigger_value) -> dict:
        """Call the function; return {output binding name: value}."""
        outs = {b["name"]: Out() for b in fn.outputs if b["name"] != "$return"}
        result = fn.user(**{fn.trigger["name"]: trigger_value}, **outs)
        if inspect.isawaitable(result):  # async def runs on one shared loop, as in the worker
            result = asyncio.run_coroutine_threadsafe(result, self._loop).result()
        return {name: o.get() for name, o in outs.items()} | {"$return": result}

    def _count(self, name: str, key: str) -> None:
        with self._cond:
            self.stats[name][key] += 1
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate() holds; it is re-checked whenever an invocation or a poll ends."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Nothing in flight, and every trigger queue polled empty twice since the call (so at least
        one poll began after it). Messages hidden by visibilityTimeout do not count."""
        start = dict(self._empty_polls)
        for ev in self._wake.values():
            ev.set()
        return self.wait_for(lambda: self._http_inflight == 0 and all(
            self._empty_polls[f] >= n + 2 for f, n in start.items()), timeout)

    # ---- queues -------------------------------------------------------------------------
    @staticmethod
    def _connection(binding: dict) -> str:
        name = binding.get("connection") or "AzureWebJobsStorage"
        value = os.environ.get(f"AzureWebJobs{name}") or os.environ.get(name)  # the host tries both
        if not value:
            raise RunnerError(f"storage connection setting {name!r} is not set")
        if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
            value = azurite.connection_string(*azurite.DEFAULT_PORTS)
        return value

    @staticmethod
    def _queue_name(binding: dict) -> str:
        def setting(m):  # %Name% resolves from app settings, as in the host
            if m[1] not in os.environ:
                raise RunnerError(f"queueName {binding['queueName']!r}: app setting {m[1]!r} is not set")
            return os.environ[m[1]]
        return re.sub(r"%(\w+)%", setting, binding["queueName"]).lower()

    def _client(self, binding: dict, queue: str | None = None, retries: int = 3) -> QueueClient:
        return QueueClient.from_connection_string(
            self._connection(binding), queue or self._queue_name(binding), connection_timeout=5,
            retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=retries))

    @staticmethod
    def _ensure(client: QueueClient) -> QueueClient:
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        return client

    def _poison(self, fn: Function, client: QueueClient, msg, why: str) -> None:
        poison = self._ensure(self._client(fn.trigger, f"{client.queue_name}-poison"))
        # The original, still-encoded content, as a new message with the service's default
        # time-to-live (7 days from now), whatever the original's was: that is what the host does.
        # QueueProcessor.CopyMessageToPoisonQueueAsync calls AddMessageAndCreateIfNotExistsAsync(
        # message.Body), which calls QueueClient.SendMessageAsync(body) without a timeToLive
        # (Azure/azure-sdk-for-net, sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/
        # Shared/Queues/QueueProcessor.cs and Shared/StorageQueueExtensions.cs); it is not configurable
        # (Azure/azure-webjobs-sdk-extensions#891). So a poison message must be replayed within a week.
        poison.send_message(msg.content, time_to_live=None)
        client.delete_message(msg.id, msg.pop_receipt)
        log.warning("%s: message %s moved to %s (%s)", fn.name, msg.id, poison.queue_name, why)
        self._count(fn.name, "poisoned")

    def _process(self, fn: Function, client: QueueClient, msg) -> None:
        q = self.config.queues
        try:
            body = base64.b64decode(msg.content, validate=True) if q.message_encoding == "base64" \
                else msg.content.encode()
        except (binascii.Error, ValueError):  # the host cannot decode it either: straight to poison
            return self._poison(fn, client, msg, "not valid base64")
        if fn.trigger_type in (str, bytes):
            arg = body.decode() if fn.trigger_type is str else body
        else:
            arg = QueueMessage(id=msg.id, body=body, dequeue_count=msg.dequeue_count,
                               insertion_time=msg.inserted_on, expiration_time=msg.expires_on,
                               time_next_visible=msg.next_visible_on, pop_receipt=msg.pop_receipt)
        self._count(fn.name, "invoked")
        try:
            self._invoke(fn, arg)
        except Exception:
            log.error("%s failed on message %s (dequeue count %s)\n%s", fn.name, msg.id,
                      msg.dequeue_count, traceback.format_exc())
            self._count(fn.name, "failed")
            if msg.dequeue_count >= q.max_dequeue_count:
                self._poison(fn, client, msg, f"dequeued {msg.dequeue_count} times")
            else:  # storage counts whole seconds
                client.update_message(msg.id, msg.pop_receipt, visibility_timeout=round(q.visibility_timeout))
            return
        client.delete_message(msg.id, msg.pop_receipt)
        self._count(fn.name, "succeeded")

    def _poll(self, fn: Function) -> None:
        q, wake = self.config.queues, self._wake[fn.name]
        poller = self._client(fn.trigger, retries=0)  # this loop is the retry
        worker = self._client(fn.trigger)
        inflight, created, outage, backoff = [0], False, False, 0
        pool = ThreadPoolExecutor(q.batch_size + q.new_batch_threshold, thread_name_prefix=f"q-{fn.name}")

        def run(msg):
            try:
                self._process(fn, worker, msg)
            except Exception:  # storage trouble while settling: the message reappears after its lease
                log.error("%s: could not settle message %s\n%s", fn.name, msg.id, traceback.format_exc())
            finally:
                with self._cond:
                    inflight[0] -= 1
                    self._cond.notify_all()

        while not self._stop.is_set():
            with self._cond:  # fetch more only once in-flight work falls to newBatchThreshold
                self._cond.wait_for(lambda: inflight[0] <= q.new_batch_threshold or self._stop.is_set())
            if self._stop.is_set():
                break
            try:
                if not created:  # the host creates the trigger queue
                    created = bool(self._ensure(poller))
                msgs = list(poller.receive_messages(messages_per_page=q.batch_size, max_messages=q.batch_size,
                                                    visibility_timeout=self.lease_seconds))
                if outage:
                    log.info("%s: queue %s reachable again", fn.name, poller.queue_name)
                    outage = False
            except AzureError as exc:
                if not outage:  # once per outage, not once per poll
                    log.error("%s: queue %s unreachable, still polling: %s", fn.name, poller.queue_name,
                              str(exc).splitlines()[0])
                    self._count(fn.name, "outages")
                outage, created, msgs = True, False, []
            for msg in msgs:
                with self._cond:
                    inflight[0] += 1
                pool.submit(run, msg)
            if msgs:  # found work: poll again at once
                backoff = 0
                continue
            with self._cond:
                if inflight[0] == 0 and not outage:
                    self._empty_polls[fn.name] += 1
                    self._cond.notify_all()
            backoff += 1  # randomized exponential back-off from 100 ms up to maxPollingInterval
            wake.wait(min(q.max_polling_interval, 0.1 * 2 ** min(backoff, 20) * random.uniform(0.8, 1.2)))
            if wake.is_set():
                wake.clear()
                backoff = 0
        pool.shutdown(wait=True)  # in-flight invocations finish

    # ---- HTTP ---------------------------------------------------------------------------
    def _handle_http(self, h: BaseHTTPRequestHandler) -> None:
        t0, parts, status = time.perf_counter(), urlsplit(h.path), "-"
        with self._cond:
            self._http_inflight += 1
        try:
            h.reader.phase(self.idle_timeout, self.body_grace, self.min_body_rate)
            status, headers, body = (503, CLOSE, b"") if self._stop.is_set() else self._dispatch(h, parts)
            h.reader.phase(self.idle_timeout)
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
            with self._cond:
                self._http_inflight -= 1
                self._cond.notify_all()

    def _dispatch(self, h, parts):
        matches = []
        for fn in self.functions.values():
            if fn.trigger["type"] == "httpTrigger":
                route = fn.trigger.get("route") or fn.name
                if m := route_regex(self.config.route_prefix, route).fullmatch(parts.path):
                    methods = {x.upper() for x in fn.trigger.get("methods") or []}
                    matches.append(("{" in route, methods, m, fn))  # literal routes first
        if not matches:
            return 404, CLOSE, b""
        allowed = sorted((t for t in matches if not t[1] or h.command in t[1]), key=lambda t: t[0])
        if not allowed:
            return 405, CLOSE + [("Allow", ", ".join(sorted(set().union(*(t[1] for t in matches)))))], b""
        _, _, m, fn = allowed[0]
        try:
            body = self._read_body(h)
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
        req = func.HttpRequest(h.command, f"{self.url}{h.path}", headers=headers, params=params, body=body,
                               route_params={k: v for k, v in m.groupdict().items() if v is not None})
        self._count(fn.name, "invoked")
        try:
            out = self._invoke(fn, req)
            resp = next(out[b["name"]] for b in fn.outputs if b["type"] == "http")
            resp = func.HttpResponse(resp) if isinstance(resp, str) else resp
            if not isinstance(resp, func.HttpResponse):  # the worker cannot encode it: the call fails
                raise TypeError(f"an HTTP function must return HttpResponse or str, not {type(resp).__name__}")
        except Exception:  # like the host: a bare 500; the details go to the log only
            log.error("%s failed\n%s", fn.name, traceback.format_exc())
            self._count(fn.name, "failed")
            return 500, [], b""
        self._count(fn.name, "succeeded")
        hdrs = list(resp.headers.items())
        if "content-type" not in resp.headers:  # as azure.functions' encoder does
            mt = resp.mimetype
            hdrs.append(("Content-Type", f"{mt}; charset={resp.charset}" if mt.startswith("text/") else mt))
        return resp.status_code, hdrs, resp.get_body()

    @staticmethod
    def _read_body(h) -> bytes:
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

    def _handler(self):
        runner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.rfile.close()  # reads go through a _Reader, with the runner's timeouts
                self.reader = _Reader(self.connection)
                self.rfile = io.BufferedReader(self.reader)
                runner._conns.add(self.connection)

            def handle_one_request(self):  # a timeout closes the connection (http.server does that)
                self.reader.phase(runner.idle_timeout, runner.header_timeout)
                super().handle_one_request()

            def finish(self):
                runner._conns.discard(self.connection)
                super().finish()

            def log_message(self, *args):  # the default line carries the query string
                pass

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            setattr(Handler, f"do_{method}", lambda h: runner._handle_http(h))
        return Handler

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> "Runner":
        try:
            self.load()
            self._stop.clear()
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(target=self._loop.run_forever, name="runner-asyncio", daemon=True)
            self._loop_thread.start()
            self._server = _HttpServer(("127.0.0.1", self.port), self._handler())
            self._server.runner = self
            self.port = self._server.server_address[1]  # port 0: the one the OS chose
            self._spawn(lambda: self._server.serve_forever(poll_interval=0.05), "runner-http")
            for name in self._queues:
                try:  # now, so that a caller can send as soon as start() returns
                    self._ensure(self._client(self.functions[name].trigger, retries=0))
                except AzureError:
                    pass  # the poller reports the outage and creates it later
                self._wake[name], self._empty_polls[name] = threading.Event(), 0
                self._spawn(lambda fn=self.functions[name]: self._poll(fn), f"poll-{name}")
        except BaseException:  # e.g. the port is taken: leave no thread or setting behind
            self.stop()
            raise
        log.info("runner on %s: %s", self.url, ", ".join(sorted(self.functions)))
        return self

    def _spawn(self, target, name) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for ev in self._wake.values():
            ev.set()
        with self._cond:
            self._cond.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            with self._cond:  # in-flight HTTP exchanges finish
                self._cond.wait_for(lambda: self._http_inflight == 0)
            for conn in list(self._conns):  # idle keep-alive connections would block their threads
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            t.join()
        if self._loop:  # after the pollers: their async invocations need the loop to finish
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join()
            self._loop.close()
        self._threads, self._wake, self._server, self._loop = [], {}, None, None
        for k, v in self._saved_env.items():  # the environment as it was before load()
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env = {}

    def __enter__(self) -> "Runner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hookops.runner", description=__doc__.splitlines()[0])
    p.add_argument("--app-dir", type=Path, default=Path.cwd())
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--host-json", type=Path)
    p.add_argument("--module", default="function_app")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every storage request
    signal.signal(signal.SIGTERM, _interrupt)
    with Runner(a.app_dir, a.port, a.host_json, module=a.module):
        try:
            threading.Event().wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop cleanly (the with block calls stop())
            log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
