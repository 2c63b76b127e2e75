"""The Preservica test double in its own process, so that its work does not share the app's GIL
(a real Preservica is another machine).

    python -m bench.preservica_proc --assets 10000 --latency 0.2

Knows assets ref(0), ref(1) ... (bench.common) with a small PNG thumbnail and a catalogue identifier
("catalogue" = catalogue_id(i)) each. Commands (JSON lines on stdin): {"cmd": "latency", "seconds": 0.2},
{"cmd": "stats"} (requests so far), {"cmd": "mark"} (start a new tally) and {"cmd": "tally"} (the
requests since the mark, by endpoint, and the most that arrived in any one second). Exits when stdin
closes.
"""
from __future__ import annotations

import argparse
import re
import threading
import time
from array import array
from collections import Counter
from urllib.parse import unquote, urlsplit

from bench.common import PASSWORD, TENANT, USER, catalogue_id, ref, serve_commands
from hookops.doubles.preservica import PreservicaDouble, make_png

# What pyPreservica asks for, by endpoint (the rest of a path is a reference or a fragment id).
ENDPOINTS = (
    ("login", "POST", r"/api/accesstoken/login"),
    ("token refresh", "POST", r"/api/accesstoken/refresh"),
    ("version", "GET", r"/api/entity/versiondetails/version"),
    ("user details", "GET", r"/api/user/details"),
    ("asset", "GET", r"/api/entity/information-objects/[^/]+"),
    ("folder", "GET", r"/api/entity/structural-objects/[^/]+"),
    ("identifiers", "GET", r"/api/entity/[a-z-]+/[^/]+/identifiers"),
    ("metadata add", "POST", r"/api/entity/[a-z-]+/[^/]+/metadata"),
    ("metadata update", "PUT", r"/api/entity/[a-z-]+/[^/]+/metadata/[^/]+"),
    ("metadata read", "GET", r"/api/entity/[a-z-]+/[^/]+/metadata/[^/]+"),
    ("thumbnail", "GET", r"/api/content/thumbnail"),
    ("files (representations, generations, bitstreams)", "GET", r"/api/entity/(information|content)-objects/.+"),
)
ENDPOINTS = tuple((name, method, re.compile(pattern + "$")) for name, method, pattern in ENDPOINTS)
# Asked once per process (at login), not per event.
PER_PROCESS = ("login", "version", "user details")


def endpoint(method: str, path: str) -> str:
    path = unquote(urlsplit(path).path)
    for name, m, pattern in ENDPOINTS:
        if m == method and pattern.match(path):
            return name
    return f"other {method}"


class CountingDouble(PreservicaDouble):
    """Counts requests instead of keeping each one (a long benchmark would hold them all in memory):
    in all, and since the last mark by endpoint, with each one's arrival time."""
    count = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tally_lock = threading.Lock()
        self._mark()

    def _record(self, request) -> None:
        now = time.monotonic()
        name = endpoint(request.method, request.path)
        with self._tally_lock:
            self.by_endpoint[name] += 1
            self.arrivals.append(now)
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def _mark(self) -> dict:
        with self._tally_lock:
            self.by_endpoint: Counter = Counter()
            self.arrivals = array("d")
            self.marked = time.monotonic()
        return {"ok": True}

    def tally(self, rate: float | None = None) -> dict:
        with self._tally_lock:
            counts, times = dict(self.by_endpoint), sorted(self.arrivals)
        return {"requests": len(times), "by_endpoint": counts, **windows(times, rate)}


def windows(times, rate: float | None = None) -> dict:
    """The most requests that arrived within any one second (a sliding window starting at each
    arrival), overall and among windows starting a second or more after the first request (once the
    token bucket's initial burst is spent), the longest pause between two arrivals, and the span from
    the first arrival to the last. With `rate`: how far the arrivals exceed the envelope of the app's
    token bucket, which holds one token (at most rate x T + 1 requests in any interval of T seconds),
    at worst: 0 or less conforms."""
    if not times:
        return {"max_1s": 0, "max_1s_first_second": 0, "max_1s_after_first_second": 0, "span_s": 0.0,
                "longest_pause_s": 0.0, "envelope_excess": None}
    first = times[0]
    best_first, best_after = 0, 0
    j = 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        n = j - i
        if t - first < 1.0:
            best_first = max(best_first, n)
        else:
            best_after = max(best_after, n)
    excess = None
    if rate:
        # Interval from arrival i to arrival j holds j - i + 1 requests; the envelope allows
        # rate * (t_j - t_i) + 1. Max over i <= j of (j + 1 - rate t_j) - (i - rate t_i) - 1, in one pass.
        low, excess = float("inf"), float("-inf")
        for k, t in enumerate(times):
            low = min(low, k - rate * t)
            excess = max(excess, (k + 1 - rate * t) - low - 1)
    return {"max_1s": max(best_first, best_after), "max_1s_first_second": best_first,
            "max_1s_after_first_second": best_after, "span_s": times[-1] - first,
            "longest_pause_s": max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0),  # neighbours
            "envelope_excess": excess}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--assets", type=int, required=True)
    p.add_argument("--latency", type=float, default=0.0)
    a = p.parse_args()
    double = CountingDouble(username=USER, password=PASSWORD, tenant=TENANT)
    png = make_png(16, 16, (40, 90, 160))
    for i in range(a.assets):
        double.add_asset(ref(i), f"Benchmark asset {i}", thumbnail=png, identifiers={"catalogue": catalogue_id(i)})
    double.latency = a.latency
    with double:
        def latency(seconds: float):
            double.latency = float(seconds)

        serve_commands({"latency": latency, "stats": lambda: {"requests": double.count},
                        "mark": double._mark, "tally": double.tally},
                       {"server": double.server, "port": double.port})


if __name__ == "__main__":
    main()
