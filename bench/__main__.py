"""`python -m bench`: run the benchmarks and print one markdown table.

    python -m bench [--deliveries 2000] [--concurrency 32] [--latency 0.2] [--events 10000]
                    [--large 5000] [--cost-events 100] [--rate 20] [--rate-events 200]
                    [--runs 3] [--quick] [--out bench/results/latest.md]

Starts Azurite, the Preservica double, the Teams/catalogue/relay doubles, the reference receiver
and the local runner on free 127.0.0.1 ports and stops them all at the end. Progress goes to
stderr, the table to stdout and to --out (with the raw figures next to it as .json).
"""
from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from bench.common import machine
from bench.options import parse
from bench.orchestrate import progress, run
from bench.table import render


def _interrupt(*_):
    raise KeyboardInterrupt   # so that the finally blocks stop every server this run started


def main(argv=None) -> int:
    a = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    command = "python -m bench" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        sys.argv[1:] if argv is None else argv))
    info = machine()
    t0 = time.monotonic()
    result = run(a)
    wall = time.monotonic() - t0
    table = render(result, a, info, wall, command)
    print(table)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(table)
    raw = {"machine": info, "wall_s": wall, "options": {k: (str(v) if isinstance(v, Path) else v)
                                                        for k, v in vars(a).items()},
           "rows": result["rows"], "failures": result["failures"]}
    a.out.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str))
    progress(f"saved {a.out} and {a.out.with_suffix('.json').name}; total wall time {wall:.0f} s")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
