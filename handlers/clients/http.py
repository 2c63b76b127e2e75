"""The process's one httpx client for Teams, the catalogue and the relay: created on first use,
reused (connection pooling), never following redirects (a redirect could carry a secret elsewhere)."""
from __future__ import annotations

import logging

import httpx

from ..core.errors import ActionError
from .shared import Shared

# httpx logs every request URL at INFO; the Teams URL is a credential.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Keep-alive for as many connections as a batch of invocations uses at once (16 + newBatchThreshold 8).
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32)
_client = Shared(lambda: httpx.Client(timeout=TIMEOUT, follow_redirects=False, limits=LIMITS))


def client() -> httpx.Client:
    return _client.get()


def send(method: str, url: str, *, peer: str, where: str, **kwargs) -> httpx.Response:
    """One request through the process's client; a failure to send becomes an ActionError that names the
    `peer` and `where` the URL is configured, never the URL (it may be a credential, as Teams' is).
    httpx.InvalidURL is not an HTTPError, and its message quotes the URL."""
    try:
        return client().request(method, url, **kwargs)
    except httpx.InvalidURL:
        raise ActionError(f"the {peer} URL is not a valid URL: check {where}") from None
    except httpx.HTTPError as exc:
        raise ActionError(f"{peer} could not be reached: {type(exc).__name__}") from None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime
    import datetime as dt
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
