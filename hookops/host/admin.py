"""Who may call the runner's `POST /admin/functions/<name>` (run a timer function now, as with Core Tools).

In Azure the host's admin API wants the master key, sent in `x-functions-key` (azure-functions-host,
`Security/Authentication/Keys/AuthenticationLevelHandler.cs`, `FunctionsKeyHeaderName`). Here the key is the
runner's admin token (`hookops run` passes the local console token; otherwise a random one per start), and
the request must also be same-origin: a web page open in the developer's browser can POST to
127.0.0.1 with a simple form (no preflight), so without these any site could start a reconcile run.
A browser cannot add `x-functions-key` to a cross-origin request without a CORS preflight, which the
runner never grants; the Origin / Sec-Fetch-Site / Host checks refuse such a request even before that.
"""
from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from handlers.core.hosting import LOOPBACK

KEY_HEADER = "x-functions-key"


def _hostname(value: str) -> str:
    try:
        return (urlsplit("//" + value).hostname or "").lower()
    except ValueError:
        return ""


def refusal(token: str, port: int, headers) -> int | None:
    """None when the admin call may run; else the status to answer (403 cross-site, 401 no or wrong key)."""
    host = headers.get("Host")
    if host is None or _hostname(host) not in LOOPBACK:  # a rebound name (DNS rebinding) sends its own
        return 403
    origin = headers.get("Origin")
    if origin is not None:  # browsers send it on every cross-origin POST; curl sends none
        try:
            got = urlsplit(origin)
            same = got.scheme == "http" and (got.hostname or "").lower() in LOOPBACK and got.port == port
        except ValueError:
            same = False
        if not same:
            return 403
    if (headers.get("Sec-Fetch-Site") or "same-origin").lower() not in ("same-origin", "none"):
        return 403
    given = headers.get(KEY_HEADER) or ""
    if not given or not hmac.compare_digest(token.encode("utf-8"), given.encode("utf-8")):
        return 401
    return None
