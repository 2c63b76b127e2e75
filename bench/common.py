"""What every benchmark shares: paths, settings, statistics, the machine, helper processes."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
if str(ROOT) not in sys.path:  # the app (function_app, handlers) and hookops (runner, doubles) live there
    sys.path.insert(0, str(ROOT))

SECRET = "bench-webhook-secret"          # the shared webhook secret (a benchmark value, not a credential)
USER, PASSWORD, TENANT = "bench-user", "bench-password", "BENCH"   # the Preservica double's account
REF_PREFIX = "00000000-0000-4000-8000-"   # asset refs (UUIDs) the Preservica double knows: ...-000000000000, ...
WEBHOOK_PATH = "/api/preservica/webhook"


def ref(i: int) -> str:
    return f"{REF_PREFIX}{i:012d}"


def catalogue_id(i: int) -> str:
    """Asset ref(i)'s catalogue identifier (type "catalogue"), in the Preservica double and the catalogue."""
    return f"C/{i}"


# ---- deliveries ---------------------------------------------------------------------------------

def timestamp(ms_since_epoch: int) -> str:
    """Preservica's format: local ISO time with milliseconds and no zone."""
    t = dt.datetime.fromtimestamp(ms_since_epoch / 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def delivery_body(refs, subscription: str, ms: int, trigger: str = "FULL_TEXT_INDEXED", identifiers=None,
                  pad: int = 0) -> bytes:
    """A delivery as Preservica sends it (hookops/doubles/deliveries.py builds the same shape).
    `identifiers`: one list per event of what a subscription made with includeIdentifiers=true
    carries, e.g. [{"catalogue": "C/1"}]. `pad`: characters of filler in each event (a `description`),
    to make a body of a given size."""
    from hookops.doubles.deliveries import delivery, encode
    doc = delivery(trigger, refs=list(refs), timestamp=timestamp(ms), subscription=subscription)
    for i, event in enumerate(doc["events"]):
        if identifiers is not None:
            event["identifiers"] = identifiers[i]
        if pad:
            event["description"] = "x" * pad
    return encode(doc)


# ---- statistics ---------------------------------------------------------------------------------

def pct(values, q: float) -> float:
    """Percentile q (0..100) with linear interpolation; nan for no values."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values) -> float:
    return pct(values, 50)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# ---- the machine --------------------------------------------------------------------------------

def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        mem = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem = None
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": usable, "memory_mib": mem,
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "os": f"{platform.system()} {platform.release()}", "loadavg": _loadavg()}


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a process (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# ---- helper processes ---------------------------------------------------------------------------

class Service:
    """A helper process speaking one JSON line per message: it prints {"ready": ...} once started,
    answers each command line with one line, and exits when its stdin closes."""

    def __init__(self, args: list[str], name: str, log: Path):
        self.args, self.name, self.log_path = args, name, log
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self._lock = threading.Lock()

    def start(self, timeout: float = 60) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PYTHON, *self.args], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log, text=True, bufsize=1, start_new_session=True)
        log.close()
        self.info = self._read(timeout)
        if not self.info.get("ready"):
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self.info}")
        return self

    def _read(self, timeout: float) -> dict:
        box: list = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not box or not box[0]:
            raise RuntimeError(f"{self.name}: no answer within {timeout:.0f}s (see {self.log_path})")
        return json.loads(box[0])

    def call(self, timeout: float = 30, **command) -> dict:
        with self._lock:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
            return self._read(timeout)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, grace: float = 10) -> None:
        if not self.proc:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()   # this process only (its own id), after the grace period
            self.proc.wait()
        self.proc = None


def serve_commands(handlers: dict, ready: dict) -> None:
    """The child side of Service: announce readiness, then answer commands until stdin closes."""
    print(json.dumps({"ready": True, **ready}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            answer = handlers[cmd.pop("cmd")](**cmd)
        except Exception as exc:  # report, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer if answer is not None else {"ok": True}), flush=True)
