"""Number formats of the benchmark table."""
from __future__ import annotations

import math


def f(x, digits=0, unit="") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def ms(x) -> str:
    """Milliseconds, or seconds once over 10 s."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x / 1000:,.1f} s" if x >= 10_000 else f"{x:,.0f} ms"


def retries(x: dict, who: str) -> str:
    if not x.get("retried"):
        return f"{who}: {x['ok']:,}/{x['sent']:,} acknowledged at the first attempt"
    firsts = ", ".join(f"{k} ×{v}" for k, v in sorted(x.get("first_errors", {}).items()))
    return (f"{who}: {x['ok']:,}/{x['sent']:,} acknowledged, {x['retried']:,} of them only after a retry "
            f"(first failure: {firsts or '?'})" + (f", {x['failed']:,} never" if x.get("failed") else ""))


def by(ratio: float, target: float) -> str:
    """By how much a ratio target is missed."""
    if ratio >= target or math.isnan(ratio):
        return ""
    return f" (by {f((1 - ratio / target) * 100)}%)"
