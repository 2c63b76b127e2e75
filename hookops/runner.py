"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

It indexes the app the way the Python worker does (the one FunctionApp, `get_functions()`,
each function's raw bindings), serves its HTTP triggers and polls its queue triggers following
host.json, so that what works here behaves the same on Azure. See docs in shared/ "What the
Functions host does that a local runner must do the same way".
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import importlib
import inspect
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
from azure.storage.queue import LinearRetry, QueueClient

from hookops import azurite, hostconfig

log = logging.getLogger("hookops.runner")
LEASE_SECONDS = 600          # the host keeps a message invisible this long while it runs
MAX_BODY = 100 * 1024 * 1024  # the host's default maxRequestBodySize
SUPPORTED = {"httpTrigger", "http", "queueTrigger", "queue"}


CLOSE = [("Connection", "close")]  # for answers given without reading the request body


class RunnerError(RuntimeError):
    pass


class TooLarge(ValueError):
    pass


class Out:
    """What the worker passes for a `func.Out[...]` parameter."""
    def __init__(self):
        self.value = None

    def set(self, value):
        self.value = value

    def get(self):
        return self.value


class Function:
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
        self.outputs = [b for b in self.bindings if b.get("direction", "").lower() == "out"]
        params = set(inspect.signature(self.user).parameters)
        bound = {b["name"] for b in self.bindings} - {"$return"}
        if params != bound:  # the worker refuses both kinds of mismatch ("context" is not supported here)
            raise RunnerError(f"function {self.name!r}: parameters {sorted(params)} do not match "
                              f"bindings {sorted(bound)}")
        self.trigger_type = typing.get_type_hints(self.user).get(self.trigger["name"])


def _route_regex(prefix: str, route: str) -> re.Pattern:
    # ASP.NET-style templates: {name}, {name:constraint} (constraint ignored), {name?}, {*rest}.
    rx = "/" + re.escape(prefix) if prefix else ""
    for seg in route.strip("/").split("/"):
        m = re.fullmatch(r"\{(\*?)(\w+)(?::[^}?]*)?(\??)\}", seg)
        if not m:
            rx += "/" + re.escape(seg)
        elif m[1]:
            rx += f"(?:/(?P<{m[2]}>.*))?"
        else:
            rx += f"(?:/(?P<{m[2]}>[^/]+))?" if m[3] else f"/(?P<{m[2]}>[^/]+)"
    return re.compile(rx + "/?", re.IGNORECASE)


class Runner:
    def __init__(self, app_dir: Path, port: int = 7071, host_json: Path | None = None,
                 env: dict | None = None, module: str = "function_app"):
        self.app_dir = Path(app_dir).resolve()
        self.port = port
        self.config = hostconfig.load(Path(host_json) if host_json else self.app_dir / "host.json")
        self.env = dict(env or {})
        self.module = module
        self.functions: dict[str, Function] = {}
        self.stats: dict[str, dict[str, int]] = defaultdict(
            lambda: {"invoked": 0, "succeeded": 0, "failed": 0, "poisoned": 0})
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wake: dict[str, threading.Event] = {}   # queue name -> poll now
        self._empty_polls: dict[str, int] = {}
        self._http_inflight = 0
        self._conns: set[socket.socket] = set()
        self._saved_env: dict[str, str | None] = {}
        self._server = self._loop = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- loading -------------------------------------------------------------------------
    def _load_settings(self) -> None:
        values = {}
        settings = self.app_dir / "local.settings.json"
        if settings.exists():  # like `func start`: never overrides what the environment has
            values = {k: str(v) for k, v in json.loads(settings.read_text()).get("Values", {}).items()
                      if k not in os.environ}
        values.update(self.env)
        for k, v in values.items():
            self._saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def load(self) -> dict[str, Function]:
        """Import the app and learn its functions from its own bindings, as the worker does."""
        self._load_settings()
        if str(self.app_dir) not in sys.path:
            sys.path.insert(0, str(self.app_dir))
        cached = sys.modules.get(self.module)
        if cached and Path(getattr(cached, "__file__", "") or "").resolve().parent != self.app_dir:
            del sys.modules[self.module]  # another app's module of the same name (tests load several)
        mod = importlib.import_module(self.module)
        apps = [v for v in vars(mod).values() if isinstance(v, func.FunctionRegister)]
        if len(apps) != 1:
            raise RunnerError(f"{self.module}.py must define exactly one FunctionApp, found {len(apps)}")
        self.functions = {f.name: f for f in map(Function, apps[0].get_functions())}
        if not self.functions:
            raise RunnerError(f"{self.module}.py defines no functions (the host would report 0 functions found)")
        for fn in self.functions.values():
            self.stats[fn.name]  # every function listed, even before its first call
            for b in fn.bindings:
                if b["type"] in ("queueTrigger", "queue"):  # fail now on a missing setting
                    self._connection(b), self._queue_name(b)
        return self.functions

    # ---- invoking ------------------------------------------------------------------------
    def _invoke(self, fn: Function, trigger_value) -> dict:
        """Call the function; return {binding name: value} for its outputs, already written to queues."""
        outs = {b["name"]: Out() for b in fn.outputs if b["name"] != "$return"}
        result = fn.user(**{fn.trigger["name"]: trigger_value}, **outs)
        if inspect.isawaitable(result):  # async def: one shared loop, as in the worker
            result = asyncio.run_coroutine_threadsafe(result, self._loop).result()
        values = {name: o.get() for name, o in outs.items()}
        values["$return"] = result
        for b in fn.outputs:  # the host writes queue outputs after the function returns
            if b["type"] == "queue" and values.get(b["name"]) is not None:
                self._write_queue(b, values[b["name"]])
        return values

    def _count(self, name: str, key: str) -> None:
        with self._cond:
            self.stats[name][key] += 1
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate() is true; re-checked whenever an invocation or poll ends."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Nothing in flight and every queue polled empty twice since the call (so at least one
        poll began after it). Messages hidden by visibilityTimeout do not count."""
        start = dict(self._empty_polls)
        for ev in self._wake.values():
            ev.set()
        return self.wait_for(lambda: self._http_inflight == 0 and all(
            self._empty_polls[q] >= n + 2 for q, n in start.items()), timeout)

    # ---- queues --------------------------------------------------------------------------
    def _connection(self, binding: dict) -> str:
        name = binding.get("connection") or "AzureWebJobsStorage"
        value = os.environ.get(f"AzureWebJobs{name}") or os.environ.get(name)  # the host tries both
        if not value:
            raise RunnerError(f"storage connection setting {name!r} is not set")
        if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
            value = azurite.connection_string(*azurite.DEFAULT_PORTS)
        return value

    def _queue_client(self, binding: dict, queue: str | None = None, retries: int = 3) -> QueueClient:
        return QueueClient.from_connection_string(
            self._connection(binding), queue or self._queue_name(binding),
            retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=retries),
            connection_timeout=5)

    @staticmethod
    def _queue_name(binding: dict) -> str:
        # %Setting% expressions resolve from app settings, as in the host
        def setting(m):
            if m[1] not in os.environ:
                raise RunnerError(f"queueName {binding['queueName']!r}: app setting {m[1]!r} is not set")
            return os.environ[m[1]]
        return re.sub(r"%(\w+)%", setting, binding["queueName"]).lower()

    def _encode(self, item) -> str:
        data = item if isinstance(item, bytes) else (item if isinstance(item, str) else json.dumps(item)).encode()
        return base64.b64encode(data).decode() if self.config.queues.message_encoding == "base64" else data.decode()

    def _write_queue(self, binding: dict, value) -> None:
        client = self._queue_client(binding)
        try:
            client.create_queue()  # the output binding creates its queue
        except ResourceExistsError:
            pass
        for item in value if isinstance(value, list) else [value]:  # a list: one message per item
            client.send_message(self._encode(item))
        if client.queue_name in self._wake:  # like the host's watcher: poll a queue we just fed
            self._wake[client.queue_name].set()

    def _poison(self, fn: Function, client: QueueClient, msg, why: str) -> None:
        poison = self._queue_client(fn.trigger, f"{client.queue_name}-poison")
        try:
            poison.create_queue()
        except ResourceExistsError:
            pass
        poison.send_message(msg.content)  # the original, still-encoded content
        client.delete_message(msg.id, msg.pop_receipt)
        log.warning("%s: message %s moved to %s (%s)", fn.name, msg.id, poison.queue_name, why)
        self._count(fn.name, "poisoned")

    def _process(self, fn: Function, client: QueueClient, msg) -> None:
        q = self.config.queues
        try:
            body = base64.b64decode(msg.content, validate=True) if q.message_encoding == "base64" \
                else msg.content.encode()
        except (binascii.Error, ValueError):
            return self._poison(fn, client, msg, "not valid base64")
        if fn.trigger_type is str:
            arg = body.decode()
        elif fn.trigger_type is bytes:
            arg = body
        else:
            arg = func.QueueMessage(id=msg.id, body=body, dequeue_count=msg.dequeue_count,
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
            else:  # storage only knows whole seconds
                client.update_message(msg.id, msg.pop_receipt, visibility_timeout=round(q.visibility_timeout))
            return
        client.delete_message(msg.id, msg.pop_receipt)
        self._count(fn.name, "succeeded")

    def _process_safely(self, fn, client, msg, done) -> None:
        try:
            self._process(fn, client, msg)
        except Exception:  # storage trouble while settling: the message reappears after its lease
            log.error("%s: could not settle message %s\n%s", fn.name, msg.id, traceback.format_exc())
        finally:
            done()

    def _poll(self, fn: Function) -> None:
        q = self.config.queues
        name = self._queue_name(fn.trigger)
        wake = self._wake[name]
        poller = self._queue_client(fn.trigger, retries=0)  # our loop is the retry
        worker = self._queue_client(fn.trigger)
        inflight, created, outage, backoff = [0], False, False, 0
        pool = ThreadPoolExecutor(q.batch_size + q.new_batch_threshold, thread_name_prefix=f"q-{name}")

        def done():
            with self._cond:
                inflight[0] -= 1
                self._cond.notify_all()

        while not self._stop.is_set():
            with self._cond:  # fetch more only once in-flight work falls to newBatchThreshold
                self._cond.wait_for(lambda: inflight[0] <= q.new_batch_threshold or self._stop.is_set())
            if self._stop.is_set():
                break
            try:
                if not created:
                    try:
                        poller.create_queue()
                    except ResourceExistsError:
                        pass
                    created = True
                msgs = list(poller.receive_messages(messages_per_page=q.batch_size, max_messages=q.batch_size,
                                                    visibility_timeout=LEASE_SECONDS))
                if outage:
                    log.info("%s: queue %s reachable again", fn.name, name)
                    outage = False
            except AzureError as exc:
                if not outage:  # once per outage, not once per poll
                    log.error("%s: queue %s unreachable, retrying with back-off: %s", fn.name, name,
                              str(exc).splitlines()[0])
                    outage = True
                msgs = []
            for msg in msgs:
                with self._cond:
                    inflight[0] += 1
                pool.submit(self._process_safely, fn, worker, msg, done)
            if msgs:
                backoff = 0
                continue
            with self._cond:
                if inflight[0] == 0 and not outage:
                    self._empty_polls[name] += 1
                    self._cond.notify_all()
            backoff += 1  # randomized exponential back-off from 100 ms up to maxPollingInterval
            wake.wait(min(q.max_polling_interval, 0.1 * 2 ** min(backoff, 20) * random.uniform(0.8, 1.2)))
            if wake.is_set():
                wake.clear()
                backoff = 0
        pool.shutdown(wait=True)  # in-flight invocations finish

    # ---- HTTP ----------------------------------------------------------------------------
    def _routes(self):
        for fn in self.functions.values():
            if fn.trigger["type"] == "httpTrigger":
                methods = {m.upper() for m in fn.trigger.get("methods") or []}
                route = fn.trigger.get("route") or fn.name
                yield ("{" not in route), _route_regex(self.config.route_prefix, route), methods, fn

    def _handle_http(self, h: BaseHTTPRequestHandler) -> None:
        t0 = time.perf_counter()
        parts = urlsplit(h.path)
        with self._cond:
            self._http_inflight += 1
        try:
            status, headers, body = (503, CLOSE, b"") if self._stop.is_set() else self._dispatch(h, parts)
            h.send_response(status)
            for k, v in headers:
                if k.lower() not in ("content-length", "transfer-encoding"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        finally:
            with self._cond:
                self._http_inflight -= 1
                self._cond.notify_all()
        log.info("%s %s %d %.1fms", h.command, parts.path, status, (time.perf_counter() - t0) * 1000)

    def _dispatch(self, h, parts):
        matches = [(lit, m, methods, fn) for lit, rx, methods, fn in self._routes() if (m := rx.fullmatch(parts.path))]
        if not matches:
            return 404, CLOSE, b""
        matches.sort(key=lambda t: not t[0])  # literal routes win over templates
        allowed = [t for t in matches if not t[2] or h.command in t[2]]
        if not allowed:
            return 405, CLOSE + [("Allow", ", ".join(sorted(set().union(*(t[2] for t in matches)))))], b""
        _, m, _, fn = allowed[0]
        try:
            body = self._read_body(h)
        except TooLarge:
            return 413, CLOSE, b""
        except ValueError:  # malformed chunked framing
            return 400, CLOSE, b""
        headers = {}
        for k, v in h.headers.items():  # repeated headers join with a comma
            headers[k] = f"{headers[k]},{v}" if k in headers else v
        params = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            params[k] = f"{params[k]},{v}" if k in params else v
        req = func.HttpRequest(h.command, f"{self.url}{h.path}", headers=headers, params=params,
                               route_params={k: v for k, v in m.groupdict().items() if v is not None}, body=body)
        self._count(fn.name, "invoked")
        try:
            out = self._invoke(fn, req)
            resp = next((out[b["name"]] for b in fn.outputs if b["type"] == "http"), None)
            self._count(fn.name, "succeeded")
        except Exception:  # like the host: a bare 500, the details only in the log
            log.error("%s failed\n%s", fn.name, traceback.format_exc())
            self._count(fn.name, "failed")
            return 500, [], b""
        if resp is None:
            return 204, [], b""
        if isinstance(resp, (str, bytes)):
            resp = func.HttpResponse(resp)
        hdrs = list(resp.headers.items())
        if "content-type" not in {k.lower() for k, _ in hdrs}:
            mt = resp.mimetype
            hdrs.append(("Content-Type", f"{mt}; charset={resp.charset}" if mt.startswith("text/") else mt))
        return resp.status_code, hdrs, resp.get_body()

    @staticmethod
    def _read_body(h) -> bytes:
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():  # Preservica sends chunked
            chunks, total = [], 0
            while True:
                size = int(h.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while h.rfile.readline(8192) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise TooLarge()
                chunks.append(h.rfile.read(size))
                h.rfile.readline(8)  # CRLF after each chunk
        length = int(h.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise TooLarge()
        return h.rfile.read(length)

    def _handler(self):
        runner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                runner._conns.add(self.connection)

            def finish(self):
                runner._conns.discard(self.connection)
                super().finish()

            def log_message(self, *args):  # the default line has the query string (challenge code)
                pass

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except (ConnectionError, OSError):
                    self.close_connection = True

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            setattr(Handler, f"do_{method}", lambda self: runner._handle_http(self))
        return Handler

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> "Runner":
        self.load()
        self._stop.clear()
        self._loop = asyncio.new_event_loop()
        self._spawn(self._loop.run_forever, "runner-asyncio")
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]  # port 0 -> the one the OS chose
        self._spawn(lambda: self._server.serve_forever(poll_interval=0.05), "runner-http")
        for fn in self.functions.values():
            if fn.trigger["type"] == "queueTrigger":
                name = self._queue_name(fn.trigger)
                self._wake[name], self._empty_polls[name] = threading.Event(), 0
                self._spawn(lambda fn=fn: self._poll(fn), f"poll-{fn.name}")
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
            for conn in list(self._conns):  # idle keep-alive connections
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
        for t in self._threads:
            t.join()
        if self._loop:
            self._loop.close()
        self._threads, self._wake, self._server, self._loop = [], {}, None, None
        for k, v in self._saved_env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        self._saved_env = {}

    def __enter__(self) -> "Runner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hookops.runner", description=__doc__.splitlines()[0])
    p.add_argument("--app-dir", type=Path, default=Path.cwd())
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--host-json", type=Path)
    p.add_argument("--module", default="function_app")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every storage request
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with Runner(a.app_dir, a.port, a.host_json, module=a.module):
        try:
            stopping.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
