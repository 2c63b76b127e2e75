"""`python -m bench`'s options: the sizes of each row, `--quick`'s, and which rows to run (`--rows`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench import budget
from bench.common import ROOT

DESCRIPTION = "`python -m bench`: run the benchmarks and print one markdown table."
RESULTS = ROOT / "bench" / "results"
QUICK = {"deliveries": 20, "concurrency": 4, "latency": 0.05, "events": 60, "batch": 30, "cost_events": 30,
         "rate_events": 40, "million_events": 12, "runs": 1, "cold_samples": 2, "cpu_iterations": 200, "ref_deliveries": 8,
         "custody_mib": 4}
ROWS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    p.add_argument("--deliveries", type=int, default=400,
                   help="row 2: deliveries sent to the app (default 400; the table's notes say why not 2,000)")
    p.add_argument("--ref-deliveries", type=int, default=None,
                   help="row 2: deliveries sent to the reference receiver (default: 1.5 x concurrency, at most "
                        "--deliveries; it serves one at a time, so N take N x the action time)")
    p.add_argument("--concurrency", type=int, default=32, help="row 2 and 3: concurrent senders (default 32)")
    p.add_argument("--latency", type=float, default=0.2,
                   help="row 2: seconds the Preservica double adds to each response (default 0.2)")
    p.add_argument("--events", type=int, default=3000,
                   help="row 3: events through the pipeline (default 3000: 30 deliveries, long enough that the "
                        "queues' polling hand-overs, up to maxPollingInterval each, weigh little)")
    p.add_argument("--batch", type=int, default=100, help="row 3: events per delivery (default 100)")
    p.add_argument("--large", type=int, default=None,
                   help="row 4: events in the first large delivery (default 5000: five dispatcher pages at "
                        "MAX_EVENTS_PER_DELIVERY's default; any number within MAX_BODY_BYTES is accepted)")
    p.add_argument("--cost-events", type=int, default=100,
                   help="rows 6 and 7: events in the one delivery routed to all five actions (default 100)")
    p.add_argument("--million-events", type=int, default=100,
                   help="row 10: events per configuration whose costs are measured (default 100)")
    p.add_argument("--custody-mib", type=int, default=256,
                   help="row 11: MiB of the bitstream copied by custody and by a raw upload (default 256)")
    p.add_argument("--rate", type=int, default=20,
                   help="row 8: PRESERVICA_MAX_RPS while the pipeline runs flat out (default 20)")
    p.add_argument("--rate-events", type=int, default=200,
                   help="row 8: events through the pipeline at that rate (default 200)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; each figure is the median (default 3)")
    p.add_argument("--cold-samples", type=int, default=9, help="row 1: fresh interpreters per import (default 9)")
    p.add_argument("--cpu-iterations", type=int, default=5000, help="row 5: calls per timing (default 5000)")
    p.add_argument("--reference-server", choices=("http", "threading"), default="http",
                   help="row 2: the reference's server class: HTTPServer as documented (default) "
                        "or ThreadingHTTPServer")
    budget.add_arguments(p)
    p.add_argument("--rows", default=",".join(map(str, ROWS)), help="which rows to run, e.g. 2,3 (default all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one run: checks that every row works (CI)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to save the table (default bench/results/latest.md; quick.md with --quick)")
    a = p.parse_args(argv)
    if a.quick:
        for k, v in QUICK.items():
            setattr(a, k, v)
    if a.ref_deliveries is None:
        a.ref_deliveries = min(a.deliveries, max(1, 3 * a.concurrency // 2))
    try:
        a.rows = sorted({int(x) for x in str(a.rows).split(",") if x.strip()})
    except ValueError:
        p.error("--rows takes row numbers 1-11, e.g. 2,3")
    if not a.rows or not set(a.rows) <= set(ROWS):
        p.error("--rows takes row numbers 1-11, e.g. 2,3")
    a.out = a.out or RESULTS / ("quick.md" if a.quick else "latest.md")
    if a.large is None:
        from handlers.core.settings import BY_NAME
        a.large = 5 * int(BY_NAME["MAX_EVENTS_PER_DELIVERY"].default)
    for name in ("deliveries", "ref_deliveries", "concurrency", "events", "batch", "large", "cost_events", "rate",
                 "rate_events", "million_events", "runs", "cold_samples", "cpu_iterations", "custody_mib"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return a
