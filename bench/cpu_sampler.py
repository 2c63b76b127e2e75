"""CpuSampler: where a process's CPU goes, across all its threads (a sampling profiler), installed in the
process that serves the app (rows 2 and 3's profiles)."""
from __future__ import annotations

import sys
import threading
import time
from collections import Counter

from bench.common import ROOT


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
