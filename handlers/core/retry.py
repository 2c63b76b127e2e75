"""Retry-After: how long a service asks us to wait, and whether this invocation waits for it once."""
from __future__ import annotations

import datetime as dt
import re

MAX_SECONDS = 86400.0   # beyond a day the number only says "later"; keeps float(10**400) and year 9999 finite
_DELTA = re.compile(r"[0-9]+")   # RFC 9110 §10.2.3: delay-seconds = 1*DIGIT (ASCII: str.isdigit takes "²")


def parse(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds a Retry-After value (delay-seconds or HTTP-date, RFC 9110 §10.2.3) asks for: never
    negative (a past date is 0), at most MAX_SECONDS; None when absent or not one of the two forms."""
    value = (value or "").strip()
    if not value:
        return None
    if _DELTA.fullmatch(value):
        return min(float(value), MAX_SECONDS)
    from email.utils import parsedate_to_datetime
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_SECONDS)


def wait_once(attempt: int, wait: float | None, limit: float) -> float | None:
    """The seconds to wait before trying again in this invocation: only after the first attempt, only
    when the service said how long and that is at most `limit`; None leaves the retry to the queue."""
    return wait if attempt == 1 and wait is not None and wait <= limit else None
