"""HTTP facts every client shares: the process's one httpx client for Teams, the catalogue and the
relay (created on first use, reused for pooling, never following redirects: a redirect could carry a
secret elsewhere); whether two URLs name the same server; and naming a TLS verification failure.
httpx loads on first use, so the Preservica and Speech clients can use the rest without it. And, for the
clients that use requests (pyPreservica's sessions, azure-core's transport), what requests would read from
the environment on every request, read once (environment_read_once)."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from ..core.errors import EndpointError
from .shared import Shared

if TYPE_CHECKING:
    import httpx

# httpx logs every request URL at INFO; the Teams URL is a credential.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

DEFAULT_PORTS = {"http": 80, "https": 443}


def _build():
    import httpx
    # Keep-alive for as many connections as a batch of invocations uses at once (16 + newBatchThreshold 8).
    return httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False,
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))


_client = Shared(_build)


def client() -> httpx.Client:
    return _client.get()


def send(method: str, url: str, *, peer: str, where: str, **kwargs) -> httpx.Response:
    """One request through the process's client; a failure to send becomes an EndpointError that names the
    `peer` and `where` the URL is configured, never the URL (it may be a credential, as Teams' is)."""
    with _classified(url, peer, where):
        return client().request(method, url, **kwargs)


def get_bounded(url: str, limit: int, *, peer: str, where: str, **kwargs) -> tuple[httpx.Response, bytes | None]:
    """A GET as `send`, its body read as it arrives up to `limit` bytes: (response, body), body None when more
    arrived (the rest is never read)."""
    with _classified(url, peer, where), client().stream("GET", url, **kwargs) as resp:
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > limit:
                return resp, None
        return resp, bytes(body)


@contextlib.contextmanager
def _classified(url: str, peer: str, where: str) -> Iterator[None]:
    # httpx.InvalidURL is not an HTTPError, and its message quotes the URL.
    import httpx
    try:
        yield
    except httpx.InvalidURL:
        raise EndpointError(f"the {peer} URL is not a valid URL: check {where}") from None
    except httpx.HTTPError as exc:
        raise EndpointError(tls_failure(exc, url) or f"{peer} could not be reached: {type(exc).__name__}") from None


def error_code(response) -> str:
    """" <code>" from an Azure AI services error body ({"error": {"code": ...}}), e.g. " InvalidAudioFormat";
    never its free text, which may quote input. "" when there is none."""
    import json
    try:
        doc = json.loads(response.text())
        code = doc.get("error", {}).get("code") or doc.get("code")
    except Exception:  # no body, not JSON, not the usual shape
        return ""
    return f" {code}" if isinstance(code, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,79}", code) else ""


def retry_after(response) -> float | None:
    """Seconds from a response's Retry-After header (see core.retry.parse), or None."""
    from ..core import retry
    return retry.parse(response.headers.get("retry-after"))


# ---- what requests reads from the environment, read once ---------------------------------------------

# With a session's trust_env on (its default), requests reads the environment again on every request: ~/.netrc
# (Session.prepare_request -> get_netrc_auth), the proxy variables (merge_environment_settings, and
# resolve_proxies in Session.send) and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (merge_environment_settings;
# psf/requests src/requests/sessions.py). Under load that was a fifth of a process's CPU (docs/benchmarks.md).
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
                   "all_proxy")
ENVIRONMENT_VARIABLES = CA_BUNDLE_VARIABLES + PROXY_VARIABLES   # a client reading them once is rebuilt on a change


def environment_read_once(session, url: str) -> bool | str:
    """Turn `session`'s trust_env off and give it, once, what requests would have read on every request to
    `url`'s server: its proxies (requests.utils.get_environ_proxies: none when NO_PROXY covers the host) and
    the CA bundle to verify with, as `session.verify` and returned (azure-core passes verify on every request,
    which wins over the session's: requests' merge_setting). `.netrc` is not read at all: for a matching host
    requests would replace a client's own Authorization header with Basic auth (prepare_auth runs after the
    headers are set). A plain http:// URL with no proxy has nothing to verify: True, since a path costs an
    os.path.isdir on every request (requests/adapters.py _urllib3_request_context), whatever the scheme."""
    from requests.utils import get_environ_proxies
    session.trust_env = False
    proxies = get_environ_proxies(url)
    session.proxies.update(proxies)
    bundle = next((os.environ[v] for v in CA_BUNDLE_VARIABLES if os.environ.get(v)), None)
    scheme = urlsplit(url).scheme.lower()
    plain = scheme == "http" and not (proxies.get(scheme) or proxies.get("all"))
    session.verify = True if bundle is None or plain else bundle
    return session.verify


# ---- which server a URL names -------------------------------------------------------------------

def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, effective port) of an absolute http(s) URL, compared as RFC 3986 §6.2.2-3 and
    RFC 9110 §4.2.3 say: scheme and host case-insensitive, an omitted port the scheme's default.
    None for anything else, or a URL with user information (nothing we follow carries one)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except (AttributeError, ValueError):   # not a string; a port out of range or not a number
        return None
    # A trailing dot names the same fully qualified host (RFC 1034 §3.1).
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower().rstrip(".")
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def same_server(url: str, base: str) -> bool:
    """Whether `url` is on the server `base` names (scheme, host, effective port)."""
    here = origin(base)
    return here is not None and origin(url) == here


def shown(url: str, path: bool = True) -> str:
    """scheme://host[:port][/path] of a URL, for a message: no user information, query or fragment
    (they may hold a credential), printable ASCII only, bounded."""
    try:
        parts = urlsplit(str(url))
        netloc = parts.hostname or "?"
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        netloc += f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "an unreadable URL"
    text = f"{parts.scheme or '?'}://{netloc}{parts.path if path else ''}"
    return quote(text, safe=":/[]._-~%")[:200]


# ---- TLS failures, named ------------------------------------------------------------------------

def _causes(exc: BaseException):
    """`exc` and what it wraps, as requests, urllib3, httpx and azure-core wrap: __cause__/__context__,
    exceptions among args (requests/adapters.py `raise SSLError(e, request=request)` with urllib3's
    MaxRetryError, whose .reason holds urllib3's SSLError, whose args hold ssl.SSLCertVerificationError),
    and azure-core's .inner_exception (azure/core/pipeline/transport/_requests_basic.py wraps requests'
    error as `ServiceRequestError(err, error=err)`; azure/core/exceptions.py keeps it there)."""
    seen, todo = set(), [exc]
    while todo and len(seen) < 32:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), getattr(e, "inner_exception", None),
                 *[a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]]


def tls_failure(exc: BaseException, url: str | None = None) -> str | None:
    """The message for a failed certificate verification while reaching `url` (else the URL of the
    request a wrapped requests error carries), or None when `exc` is not one. The commonest local cause:
    the CA that signed the server's certificate is not in the bundle requests uses (REQUESTS_CA_BUNDLE)
    or the system store."""
    causes = list(_causes(exc))
    if not any(isinstance(e, ssl.SSLCertVerificationError) for e in causes):
        return None
    for e in causes:
        url = url or getattr(getattr(e, "request", None), "url", None)
    where = shown(url, path=False).split("://", 1)[-1] if url else "the server"
    return f"TLS certificate verification failed for {where} (check REQUESTS_CA_BUNDLE / the CA you trust)"
