"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

It learns the functions the way the Python worker does (the module's one FunctionApp,
`get_functions()`, each function's raw bindings), serves the HTTP triggers and polls the queue
triggers as host.json says, so that what works here behaves the same on Azure.

    python -m hookops.runner [--app-dir .] [--port 7071] [--host-json PATH]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import threading
from collections import defaultdict
from pathlib import Path

from azure.core.exceptions import AzureError

from hookops import hostconfig, localsettings
from hookops.host import functions, queues, timers
from hookops.host.functions import Function
from hookops.host.http import HttpServer

log = logging.getLogger("hookops.runner")
LEASE_SECONDS = 600           # the host keeps a message invisible this long while it runs


class Runner:
    def __init__(self, app_dir: Path, port: int = 7071, host_json: Path | None = None,
                 env: dict | None = None, module: str = "function_app", lease_seconds: int = LEASE_SECONDS,
                 admin_token: str | None = None, local_settings: bool = True):
        self.app_dir = Path(app_dir).resolve()
        self.port = port
        self.config = hostconfig.load(Path(host_json) if host_json else self.app_dir / "host.json")
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.local_settings = local_settings  # False: the caller loaded local.settings.json (hookops run)
        self.module = module
        self.lease_seconds = lease_seconds  # tests shorten it to see a lost lease expire
        # The key POST /admin/functions/<name> wants in x-functions-key (host/admin.py); random unless given.
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.functions: dict[str, Function] = {}
        # per function: invoked / succeeded / failed / poisoned, and storage outages seen; see wait_for()
        self.stats: dict[str, dict[str, int]] = defaultdict(
            lambda: {"invoked": 0, "succeeded": 0, "failed": 0, "poisoned": 0, "outages": 0})
        self.cond = threading.Condition()  # guards stats and the HTTP and queue counters; see wait_for()
        self.stopping = threading.Event()
        # The limits of a front end, as Kestrel's defaults (tests shorten them; read at each request):
        self.header_timeout = 30.0  # request line and headers, from when the connection is ready for
        #                             a request: so also how long an idle keep-alive connection stays
        self.idle_timeout = 30.0    # the longest wait for any one read or write
        self.body_grace, self.min_body_rate = 5.0, 240.0  # then the body must average 240 bytes/s
        self.max_connections = 100  # concurrent connections, one thread each; see http.HttpServer
        self.http_connections, self.http_waiting = 0, False
        # Seams the benchmark uses (bench/pipeline.py): it reads the listen backlog of `http_server`,
        # and empties `queue_functions` after load() to run the HTTP functions alone.
        self.http_server: HttpServer | None = None
        self.queue_functions: dict[str, str] = {}  # queue-triggered function -> its queue; one poller each
        self._pollers: dict[str, queues.QueuePoller] = {}
        self.timers: dict[str, timers.TimerPoller] = {}  # timer-triggered function -> its schedule
        self._threads: list[threading.Thread] = []
        self._saved_env: dict[str, str | None] = {}
        self._loop = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- loading ------------------------------------------------------------------------
    def _set_env(self) -> None:
        values = {}
        if self.local_settings:  # like `func start`: what the environment already has wins, and it says so
            values, skipped = localsettings.merge(localsettings.values(self.app_dir / "local.settings.json"), os.environ)
            for key in skipped:
                log.warning("%s", localsettings.skipped_line(key))
        values.update(self.env)
        for k, v in values.items():
            self._saved_env.setdefault(k, os.environ.get(k))  # put back by stop()
            os.environ[k] = v

    def load(self) -> dict[str, Function]:
        """Import the app and learn its functions from its own bindings, as the worker does."""
        self._set_env()
        self.functions = functions.load(self.app_dir, self.module)
        for fn in self.functions.values():
            self.stats[fn.name]  # listed before their first call
            if fn.trigger["type"] == "queueTrigger":  # a missing setting fails now, not mid-run
                queues.connection(fn.trigger)
                self.queue_functions[fn.name] = queues.queue_name(fn.trigger)
            elif fn.trigger["type"] == "timerTrigger":
                self.timers[fn.name] = timers.TimerPoller(self, fn)
        return self.functions

    # ---- invoking -----------------------------------------------------------------------
    def invoke(self, fn: Function, trigger_value) -> dict:
        """Call the function; return {output binding name: value}."""
        return functions.invoke(fn, trigger_value, self._loop)

    def count(self, name: str, key: str) -> None:
        with self.cond:
            self.stats[name][key] += 1
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate() holds; it is re-checked whenever an invocation or a poll ends."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Nothing in flight, and every trigger queue polled empty twice since the call (so at least
        one poll began after it). Messages hidden by visibilityTimeout do not count."""
        pollers, server = dict(self._pollers), self.http_server
        start = {name: p.empty_polls for name, p in pollers.items()}
        for p in pollers.values():
            p.wake.set()
        return self.wait_for(lambda: (server is None or server.inflight == 0) and all(
            pollers[f].empty_polls >= n + 2 for f, n in start.items()), timeout)

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> Runner:
        try:
            self.load()
            self.stopping.clear()
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(target=self._loop.run_forever, name="runner-asyncio", daemon=True)
            self._loop_thread.start()
            self.http_server = HttpServer(self, self.port)
            self.port = self.http_server.server_address[1]  # port 0: the one the OS chose
            self._spawn(lambda: self.http_server.serve_forever(poll_interval=0.05), "runner-http")
            for name in self.queue_functions:
                fn = self.functions[name]
                try:  # now, so that a caller can send as soon as start() returns
                    queues.ensure(queues.client(fn.trigger, retries=0))
                except AzureError:
                    pass  # the poller reports the outage and creates it later
                self._pollers[name] = queues.QueuePoller(self, fn)
                self._spawn(self._pollers[name].run, f"poll-{name}")
            for name, timer in self.timers.items():
                self._spawn(timer.run, f"timer-{name}")
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
        self.stopping.set()
        for p in self._pollers.values():
            p.wake.set()
        with self.cond:
            self.cond.notify_all()
        if self.http_server:
            self.http_server.stop()  # in-flight HTTP exchanges finish
        for t in self._threads:
            t.join()
        if self._loop:  # after the pollers: their async invocations need the loop to finish
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join()
            self._loop.close()
        self._threads, self._pollers, self.http_server, self._loop = [], {}, None, None
        self.timers = {}
        for k, v in self._saved_env.items():  # the environment as it was before load()
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env = {}

    def __enter__(self) -> Runner:
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
    with Runner(a.app_dir, a.port, a.host_json, module=a.module) as r:
        # on the terminal only, not in the log: the key of this run's admin call (host/admin.py)
        print(f"Run a timer now: curl -X POST -H 'x-functions-key: {r.admin_token}' {r.url}/admin/functions/<name>",
              file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop cleanly (the with block calls stop())
            log.info("stopping")
    return 0
