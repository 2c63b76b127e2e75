"""How requests reach Preservica, and what their failures mean.

`guarded_send` is what `preservica._harden` installs as Session.send on pyPreservica's sessions: every
request (pyPreservica's, and ours) stays on PRESERVICA_SERVER, follows no redirect (a 3xx is an error
naming it, without the token or query) and takes a token from the process's rate limiter.
`get`/`get_xml`/`download` are the one way our own code reads a URL Preservica hands back, so no
caller touches pyPreservica's session, token or login. `classify` turns a pyPreservica or requests
failure into NotFound or a PreservicaError safe to record (a TLS verification failure named as such).
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator

import requests
from pyPreservica.common import HTTPException, ReferenceNotFoundException

from ..core import settings
from ..core.errors import (
    CredentialsRejected,
    NotFound,
    OtherServer,
    PreservicaError,
    Redirected,
    SafeError,
    TooLarge,
)
from . import http

log = logging.getLogger("handlers.clients.preservica")
MAX_XML_BYTES = 16 * 1024 * 1024   # one page of a list or one entity: far less; anything more is not Preservica's
CHUNK = 1024 * 1024
CREDENTIAL_SETTINGS = (f"PRESERVICA_USERNAME, the password (Key Vault secret {settings.KV_PRESERVICA_PASSWORD!r} "
                       f"or PRESERVICA_PASSWORD) and PRESERVICA_TENANT")


def _home(api) -> str:
    return f"{api.protocol}://{api.server}/"


def guarded_send(_send, _home_url: str, _timeout, _slot, request, **kwargs):
    """Session.send as _harden installs it: on the configured server, a default timeout, one token from the
    bucket held until the answer (`_slot`, a context: the request occupies the budget's window until then),
    and a 3xx an error."""
    if not http.same_server(request.url, _home_url):
        raise OtherServer(f"Preservica handed back a URL on another server ({http.shown(request.url, path=False)}); "
                          f"not requested with its token: only PRESERVICA_SERVER is")
    if kwargs.get("timeout") is None:   # pyPreservica's 401 hook re-sends without one
        kwargs["timeout"] = _timeout
    with _slot():
        response = _send(request, **kwargs)
    if 300 <= response.status_code < 400:
        from urllib.parse import urljoin
        target = urljoin(request.url, response.headers.get("location", ""))
        response.close()
        raise Redirected(f"Preservica answered HTTP {response.status_code}, a redirect to {http.shown(target)}; "
                         f"not followed with its token")
    return response


_spending = threading.local()


@contextlib.contextmanager
def counted(spend: Callable[[], None]) -> Iterator[None]:
    """Every request this thread sends to Preservica inside the block, pyPreservica's and ours, each re-send
    included, calls `spend` first (preservica._take): how a run (the custody audit) holds its walks to a budget."""
    _spending.spend = spend
    try:
        yield
    finally:
        _spending.spend = None


def spend_one() -> None:
    spend = getattr(_spending, "spend", None)
    if spend is not None:
        spend()


# ---- classification ------------------------------------------------------------------------

def _is_credentials_error(exc: BaseException) -> bool:
    # pyPreservica's login raises RuntimeError((status, "Failed to create ... authentication token ..."))
    return isinstance(exc, RuntimeError) and len(exc.args) >= 2 and exc.args[0] in (401, 403) \
        and "authentication token" in str(exc.args[1])


def classify(exc: BaseException) -> Exception | None:
    """What a pyPreservica/requests failure means: NotFound, or a PreservicaError safe to record.
    None for anything else (the caller re-raises it unchanged)."""
    if isinstance(exc, SafeError):
        return None
    if isinstance(exc, ReferenceNotFoundException) or getattr(exc, "http_status_code", None) == 404:
        return NotFound()
    if _is_credentials_error(exc):
        log.error("Preservica rejected the credentials (HTTP %s): check %s", exc.args[0], CREDENTIAL_SETTINGS)
        return CredentialsRejected(f"Preservica rejected the credentials (HTTP {exc.args[0]}); check {CREDENTIAL_SETTINGS}")
    if isinstance(exc, HTTPException):
        status = exc.http_status_code
        if status in (401, 403):
            log.error("Preservica refused %s() with HTTP %s: check the roles of PRESERVICA_USERNAME",
                      exc.method_name, status)
        return PreservicaError(f"Preservica answered HTTP {status} to {exc.method_name}()")
    if isinstance(exc, RuntimeError) and exc.args and isinstance(exc.args[0], int):
        return PreservicaError(f"Preservica answered HTTP {exc.args[0]}")  # e.g. the version call at login
    if isinstance(exc, requests.exceptions.RetryError):  # 429/5xx to every retry; the message names no URL
        status = re.search(r"too many (\d{3}) error responses", str(exc))
        if status:
            return PreservicaError(f"Preservica answered HTTP {status[1]} to every retry")
    if isinstance(exc, requests.exceptions.RequestException):
        request = getattr(exc, "request", None)
        tls = http.tls_failure(exc, getattr(request, "url", None) or _configured())
        if tls:
            log.error("Preservica: %s", tls)
            return PreservicaError(f"Preservica: {tls}")
        return PreservicaError(f"Preservica could not be reached: {type(exc).__name__}")
    return None


def _configured() -> str:
    return f"{settings.get('PRESERVICA_PROTOCOL')}://{settings.get('PRESERVICA_SERVER')}/"


# ---- reading a URL Preservica hands back ---------------------------------------------------------

def get(api, url: str, params: dict | None = None, stream: bool = False, spend: Callable[[], None] | None = None):
    """One GET of `url` (on PRESERVICA_SERVER, else guarded_send raises OtherServer) with the access token, logging in again
    once on 401; the 200 response (close it: `with get(...) as resp`). NotFound on 404, PreservicaError
    otherwise, every failure classified. `spend` is called before each request sent (a run's budget)."""
    from pyPreservica.common import HEADER_TOKEN
    try:
        for attempt in (1, 2):
            token = api.token
            if spend:
                spend()
            # X-STREAM-No-Retry: pyPreservica's 401 hook then leaves the response alone (common.py
            # _handle_401), as pyPreservica's own streaming calls ask; it would re-send without stream=True.
            resp = api.session.get(url, params=params, stream=stream,
                                   headers={HEADER_TOKEN: token, "X-STREAM-No-Retry": "true"})
            if resp.status_code != 401 or attempt == 2:
                break
            resp.close()
            _login_again(api, token)
        if resp.status_code == 200:
            return resp
        resp.close()
    except Exception as exc:
        problem = classify(exc)
        if problem is None:
            raise
        raise problem from None
    if resp.status_code == 404:
        raise NotFound()
    if resp.status_code in (401, 403):
        log.error("Preservica refused GET %s with HTTP %s: check the roles of PRESERVICA_USERNAME",
                  http.shown(url), resp.status_code)
    raise PreservicaError(f"Preservica answered HTTP {resp.status_code} to GET {http.shown(url)}")


def _login_again(api, used: str) -> None:
    """A new token, unless another thread already got one since `used` was sent (as pyPreservica's own
    401 hook does, under its `_token_lock`; `api.token = api.__token__()` is its way to log in)."""
    with getattr(api, "_token_lock", None) or contextlib.nullcontext():
        if api.token == used:
            api.token = api.__token__()


def download(api, url: str, out, limit: int) -> int:
    """Stream `url`'s body into the open file `out`, counting: at most `limit` bytes are written
    (TooLarge past that). The bytes written; a connection that breaks off is a PreservicaError, never
    resumed (pyPreservica's bitstream_content "resumes" by fetching from byte 0 again and appending:
    entityAPI.py, the headers with Range are built but not sent)."""
    written = 0
    with get(api, url, stream=True) as resp:
        try:
            for chunk in resp.iter_content(chunk_size=CHUNK):
                if written + len(chunk) > limit:
                    raise TooLarge(limit)
                out.write(chunk)
                written += len(chunk)
        except requests.exceptions.RequestException as exc:
            raise PreservicaError(f"the download from Preservica broke off ({classify(exc)}) with {written} bytes "
                              f"written; it is not resumed: the queue retries it whole") from None
    return written


def get_xml(api, url: str, params: dict | None = None, spend: Callable[[], None] | None = None,
            limit: int | None = None):
    """`get` a URL Preservica hands back and parse its XML (ElementTree root), read with a bound (`limit` bytes,
    else MAX_XML_BYTES): TooLarge past it, never read further."""
    import xml.etree.ElementTree as ET
    bound = MAX_XML_BYTES if limit is None else limit
    body = bytearray()
    with get(api, url, params, stream=True, spend=spend) as resp:
        try:
            for chunk in resp.iter_content(chunk_size=CHUNK):
                body += chunk
                if len(body) > bound:
                    raise TooLarge(bound, f"Preservica's answer to GET {http.shown(url)} is larger than {bound} bytes")
        except requests.exceptions.RequestException as exc:
            raise classify(exc) from None
    # Preservica's documents declare no DTD (inferred from every response pyPreservica parses); one that
    # does could define entities that expand without bound.
    if b"<!DOCTYPE" in body[:4096].upper() or b"<!ENTITY" in body.upper():
        raise PreservicaError(f"Preservica's answer to GET {http.shown(url)} declares a DTD; not parsed")
    try:
        return ET.fromstring(bytes(body))
    except ET.ParseError:
        raise PreservicaError(f"Preservica's answer to GET {http.shown(url)} is not XML") from None
