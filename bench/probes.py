"""Probes installed in the process that serves the app (the local runner, in the benchmark's process).

StageClock: timers around the app's three stages. The functions registered with the Functions host
look these up at call time (`intake.handle`, `dispatch.dispatch`, `action_runner.run`), so wrapping
the module attributes measures every invocation without touching the app. Per stage: calls, wall
seconds (summed over threads, so waiting on storage or Preservica counts), CPU seconds of the calling
thread (`time.thread_time`), and the first start / last end (epoch seconds) for a timeline. An action
message carries a batch of events, so for the actions it also counts the events of each invocation
(the list `runner.run` returns: `events`) and those it performed (the non-None entries: `performed`;
None is an event finished or claimed by another message); for the dispatcher, the events it routed.
A stage's CPU includes the work it hands to thread pools (the dispatcher's Preservica snapshots and
queue puts, an action's batch of events performed four at a time): `ThreadPoolExecutor.submit` is
wrapped while installed (a bench-only seam), so a task submitted from inside a stage is timed with
its worker thread's CPU clock and added to that stage (`pool_cpu`, also included in `cpu`).

StorageCounter: every storage request at the client, by who sent it (the app, the runner standing
in for the host's queue receive/delete, or the benchmark itself), by service and by operation.

CpuSampler: where the process's CPU goes, across all its threads (a sampling profiler).
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


class StageClock:
    def __init__(self):
        self._lock = threading.Lock()
        self.stages: dict[str, dict] = defaultdict(self._blank)
        self._undo: list = []
        self._current = threading.local()   # .stage: the stage this thread works for now

    @staticmethod
    def _blank() -> dict:
        return {"calls": 0, "errors": 0, "wall": 0.0, "cpu": 0.0, "pool_cpu": 0.0, "first": None, "last": None,
                "events": 0, "performed": 0}

    def reset(self) -> None:
        with self._lock:
            self.stages.clear()

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self.stages.items()}

    def performed(self, stage: str) -> int:
        """Events the stage performed since the last reset (for an action: non-None outcomes)."""
        with self._lock:
            s = self.stages.get(stage)
            return s["performed"] if s else 0

    def _wrap(self, fn, name_of):
        clock = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = name_of(*args, **kwargs)
            start, cpu = time.time(), time.thread_time()
            w = time.perf_counter()
            failed, result = True, None
            outer, clock._current.stage = getattr(clock._current, "stage", None), name
            try:
                result = fn(*args, **kwargs)
                failed = False
                return result
            finally:
                clock._current.stage = outer
                wall, used, end = time.perf_counter() - w, time.thread_time() - cpu, time.time()
                events, performed = _events(result)
                with clock._lock:
                    s = clock.stages[name]
                    s["calls"] += 1
                    s["errors"] += failed
                    s["wall"] += wall
                    s["cpu"] += used
                    s["events"] += events
                    s["performed"] += performed
                    s["first"] = start if s["first"] is None else min(s["first"], start)
                    s["last"] = end if s["last"] is None else max(s["last"], end)
        return timed

    def install(self) -> StageClock:
        from handlers import dispatch, intake
        from handlers.pipeline import runner as action_runner
        for module, attr, name_of in ((intake, "handle", lambda *a, **k: "intake"),
                                      (dispatch, "dispatch", lambda *a, **k: "dispatch"),
                                      (action_runner, "run", lambda action, *a, **k: f"action_{action}")):
            original = getattr(module, attr)
            setattr(module, attr, self._wrap(original, name_of))
            self._undo.append((module, attr, original))
        from concurrent.futures import ThreadPoolExecutor
        self._undo.append((ThreadPoolExecutor, "submit", ThreadPoolExecutor.submit))
        ThreadPoolExecutor.submit = self._wrap_submit(ThreadPoolExecutor.submit)
        return self

    def _wrap_submit(self, submit):
        clock = self

        @functools.wraps(submit)
        def submit_for_stage(pool, fn, /, *args, **kwargs):
            stage = getattr(clock._current, "stage", None)
            if stage is None:   # the runner's own pools (outside any stage) are the host's share
                return submit(pool, fn, *args, **kwargs)

            def task(*a, **k):
                outer, clock._current.stage = getattr(clock._current, "stage", None), stage
                cpu = time.thread_time()
                try:
                    return fn(*a, **k)
                finally:
                    clock._current.stage = outer
                    used = time.thread_time() - cpu
                    with clock._lock:
                        s = clock.stages[stage]
                        s["cpu"] += used
                        s["pool_cpu"] += used
            return submit(pool, task, *args, **kwargs)
        return submit_for_stage

    def remove(self) -> None:
        for module, attr, original in reversed(self._undo):
            setattr(module, attr, original)
        self._undo = []


def _events(result) -> tuple[int, int]:
    """(events, performed) of one invocation: an action's list of outcomes (None: finished or claimed
    elsewhere), or the dispatcher's {"events": n}. A failed invocation returns nothing: (0, 0)."""
    if isinstance(result, list):
        return len(result), sum(1 for o in result if o is not None)
    if isinstance(result, dict) and isinstance(result.get("events"), int):
        return result["events"], result["events"]
    return 0, 0


# ---- storage requests ----------------------------------------------------------------------------

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


# ---- where the CPU goes: a sampling profiler over each thread's own CPU clock --------------------

class CpuSampler:
    """Every `interval` seconds (10 ms), reads each thread's CPU clock (`time.pthread_getcpuclockid`) and
    charges the CPU a thread used since the last sample to the stack it is on now
    (`sys._current_frames()`). Threads blocked on I/O or waiting for the GIL use no CPU and are charged
    nothing, so this shows where a GIL-bound process spends its one core, across all its threads.

    (cProfile was tried first, one profiler per thread timed with `time.thread_time`: it slowed the run
    5x and charged its own per-call overhead to the functions called most often, e.g. ~20% of the CPU
    to requests' reading of proxy settings, which costs ~2% when timed directly.)

    Charged per sample: the innermost frame's library (`by_library`: stdlib frames such as http.client
    or json, and this module's wrappers, are charged to the library that called them), the thread's
    pool (`by_thread`: the name without its number), the innermost function (`top_functions`) and the
    innermost function outside the stdlib (`top_callers`), and, inclusively, a few entry points that
    say what the work was for (`inclusive`)."""

    # (label, alternatives): a sample counts for a label once if a frame on its stack is any of the
    # alternatives (a path fragment, a function name or None for any, and the calling frame's function
    # name or None).
    INCLUSIVE = (
        ("HTTP through requests (pyPreservica and the storage SDKs)", (("requests/sessions.py", "request", None),)),
        ("requests' look-ups on every request with trust_env: .netrc and proxy variables",
         (("requests/utils.py", "get_netrc_auth", None),
          ("requests/sessions.py", "merge_environment_settings", None))),
        ("requests' check of the CA bundle path on every request (REQUESTS_CA_BUNDLE is set)",
         (("genericpath", "isdir", "_urllib3_request_context"),)),
        ("azure-core pipelines (storage SDKs)", (("azure/core/pipeline/_base.py", "run", None),)),
        ("pyPreservica", (("pyPreservica/", None, None),)),
        ("temporary files (pyPreservica writes a thumbnail to a file)",
         (("/tempfile.py", None, None), ("/shutil.py", "rmtree", None))),
        ("the storage SDKs' XML and entity (de)serialization",
         (("azure/storage/queue/_generated/_serialization.py", None, None),
          ("azure/data/tables/_deserialize.py", None, None), ("azure/data/tables/_serialize.py", None, None))),
    )

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.by_library: Counter = Counter()
        self.by_thread: Counter = Counter()
        self.inclusive: Counter = Counter()
        self.by_function: Counter = Counter()   # the innermost frame (own time)
        self.by_caller: Counter = Counter()     # the innermost frame outside the stdlib
        self.by_owner: Counter = Counter()
        self._codes: dict = {}
        self.total = 0.0
        self.samples = 0
        self.wall = 0.0

    def start(self) -> CpuSampler:
        self._thread = threading.Thread(target=self._run, name="bench-cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        if self._thread:
            self._thread.join()
        return self.result()

    def _run(self) -> None:
        me = threading.get_ident()
        # Keyed by (ident, native id): a new thread may get the ident of one that ended. A thread's CPU
        # clock starts at 0, so a thread first seen after the start is charged all it has used.
        last: dict[tuple[int, int], float] = {}
        for t in threading.enumerate():
            try:
                last[(t.ident, t.native_id)] = time.clock_gettime(time.pthread_getcpuclockid(t.ident))
            except (OSError, OverflowError, TypeError):
                pass
        t0 = time.perf_counter()
        while not self._stop.wait(self.interval):
            frames = sys._current_frames()
            threads = {t.ident: t for t in threading.enumerate()}
            for ident, frame in frames.items():
                t = threads.get(ident)
                if ident == me or t is None:
                    continue
                try:
                    now = time.clock_gettime(time.pthread_getcpuclockid(ident))
                except (OSError, OverflowError):
                    continue   # the thread just ended
                key = (ident, t.native_id)
                used = now - last.get(key, 0.0)
                last[key] = now
                if used > 0:
                    self._charge(frame, t.name, used)
            self.samples += 1
        self.wall = time.perf_counter() - t0

    def _charge(self, frame, thread_name: str, used: float) -> None:
        self.total += used
        self.by_thread[_pool_name(thread_name)] += used
        self.by_function[_where(frame.f_code)] += used
        library, seen, owners = None, set(), set()
        while frame is not None:
            code, caller = frame.f_code, frame.f_back
            key = (code, caller.f_code.co_name if caller is not None else None)
            known = self._codes.get(key)
            if known is None:   # what a code object (called from a function of that name) means, worked out once
                filename = code.co_filename
                known = self._codes[key] = (_package(filename), tuple(
                    label for label, alternatives in self.INCLUSIVE
                    if any(path in filename and function in (None, code.co_name) and parent in (None, key[1])
                           for path, function, parent in alternatives)))
            lib, labels = known
            owners.add(lib)
            if library is None and lib not in ("stdlib", "probe"):
                library = lib
                self.by_caller[_where(code)] += used
            for label in labels:
                if label not in seen:
                    seen.add(label)
                    self.inclusive[label] += used
            frame = caller
        self.by_library[library or "stdlib"] += used
        # Whose work: the app's (a handlers/ frame anywhere on the stack, pool threads included), else the
        # runner's (the Functions host's share: polling, receive, delete, HTTP), else other.
        self.by_owner["app" if "app" in owners else "runner" if "hookops" in owners else "other"] += used

    def result(self, top: int = 25) -> dict:
        def rounded(c: Counter) -> dict:
            return {k: round(v, 3) for k, v in c.most_common()}
        return {"cpu_s": round(self.total, 3), "samples": self.samples, "interval_s": self.interval,
                "wall_s": round(self.wall, 3), "by_owner": rounded(self.by_owner),
                "by_library": rounded(self.by_library),
                "by_thread": rounded(self.by_thread),
                "top_functions": dict(list(rounded(self.by_function).items())[:top]),
                "top_callers": dict(list(rounded(self.by_caller).items())[:top]),
                "inclusive": {label: round(self.inclusive[label], 3) for label, _ in self.INCLUSIVE}}


def _where(code) -> str:
    filename = code.co_filename
    for marker in ("site-packages/", "/lib/python3.", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{code.co_firstlineno}({code.co_name})"


def _pool_name(name: str) -> str:
    """A thread pool's name without the worker's number: "thumbnail-batch_3" -> "thumbnail-batch"."""
    head, _, tail = name.rpartition("_")
    if head and tail.isdigit():
        return head.rstrip("-0123456789") if head.startswith("ThreadPoolExecutor-") else head
    if name.startswith("Thread-"):   # "Thread-12 (process_request_thread)": unnamed, by its target
        return "Thread" + (" (" + name.split(" (", 1)[1] if " (" in name else "")
    return name


def _package(filename: str) -> str:
    """Who owns a frame: the app, hookops, the benchmark, a third-party package, or the stdlib."""
    if filename.startswith(str(ROOT / "handlers")) or filename.endswith("function_app.py"):
        return "app"
    if filename.startswith(str(ROOT / "hookops")):
        return "hookops"
    if filename == __file__:
        return "probe"   # these wrappers are transparent: charged to what they wrap or call
    if filename.startswith(str(ROOT / "bench")):
        return "bench"
    if "site-packages/" in filename:
        rest = filename.split("site-packages/", 1)[1].split("/")
        if rest[0] == "azure" and len(rest) > 2:
            return ".".join(rest[:2]) if rest[1] != "storage" else ".".join(rest[:3])
        return rest[0].removesuffix(".py")
    return "stdlib"
