"""core.retry: the one Retry-After reading behind Teams and Speech."""
import datetime as dt

import pytest

from handlers.core import retry

NOW = dt.datetime(2026, 12, 7, 2, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("value,seconds", [
    ("5", 5.0), (" 30 ", 30.0), ("0", 0.0),
    ("Mon, 07 Dec 2026 02:00:20 GMT", 20.0),        # HTTP-date (IMF-fixdate)
    ("Mon, 07 Dec 2026 01:59:00 GMT", 0.0),         # in the past: never negative
    ("9" * 400, retry.MAX_SECONDS),                 # would be float inf uncapped
    ("Fri, 31 Dec 9999 23:59:59 GMT", retry.MAX_SECONDS),
])
def test_parse_reads_both_forms_capped_and_never_negative(value, seconds):
    assert retry.parse(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "  ", "-5", "1.5", "²", "soon", "5 s", "Mon, 99 Foo 2026", "0x10"])
def test_parse_garbage_is_none(value):
    assert retry.parse(value, NOW) is None


def test_wait_once_only_after_the_first_attempt_and_within_the_limit():
    assert retry.wait_once(1, 3.0, 30.0) == 3.0
    assert retry.wait_once(1, 30.0, 30.0) == 30.0
    assert retry.wait_once(1, 31.0, 30.0) is None     # longer: the queue retries
    assert retry.wait_once(1, None, 30.0) is None     # not said: the queue retries
    assert retry.wait_once(2, 3.0, 30.0) is None      # waited once already
