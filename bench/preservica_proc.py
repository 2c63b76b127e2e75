"""The Preservica test double in its own process, so that its work does not share the app's GIL
(a real Preservica is another machine).

    python -m bench.preservica_proc --assets 10000 --latency 0.2

Knows assets ref(0), ref(1) ... (bench.common) with a small PNG thumbnail each. Commands (JSON lines on stdin):
{"cmd": "latency", "seconds": 0.2}, {"cmd": "stats"}. Exits when stdin closes.
"""
from __future__ import annotations

import argparse

from bench.common import PASSWORD, TENANT, USER, ref, serve_commands
from hookops.doubles.preservica import PreservicaDouble, make_png


class CountingDouble(PreservicaDouble):
    """Counts requests instead of keeping each one: a long benchmark would hold them all in memory."""
    count = 0

    def _record(self, request) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--assets", type=int, required=True)
    p.add_argument("--latency", type=float, default=0.0)
    a = p.parse_args()
    double = CountingDouble(username=USER, password=PASSWORD, tenant=TENANT)
    png = make_png(16, 16, (40, 90, 160))
    for i in range(a.assets):
        double.add_asset(ref(i), f"Benchmark asset {i}", thumbnail=png)
    double.latency = a.latency
    with double:
        def latency(seconds: float):
            double.latency = float(seconds)

        serve_commands({"latency": latency, "stats": lambda: {"requests": double.count}},
                       {"server": double.server, "port": double.port})


if __name__ == "__main__":
    main()
