"""Who may see the console and who may change anything: pure rules over the request and the environment.

In Azure the platform's built-in authentication (Easy Auth, Entra ID) signs the user in and passes
who they are in `X-MS-CLIENT-PRINCIPAL` (base64 JSON; app roles are claims of type `roles`). The
platform sets `WEBSITE_AUTH_ENABLED=True` when it is on, and then it replaces any such header a
caller sends. When it is off the header is whatever the caller wrote, so the console refuses to
serve at all. "In Azure" is the host's own rule (core/hosting.py: App Service, Linux and Flex Consumption).
Locally the console serves only when `hookops run` turned local mode on, with development storage
(core/hosting.local_console), requests made to a loopback address with no proxy headers, from a browser
that opened the link `hookops run` prints (a token from the console's own random key, not from any
secret shared with Preservica, then kept in a cookie); it treats the local user as an operator and
ignores the header there, so a forged one gains nothing. Anything else is refused.

Writes are POSTs with a CSRF token and a same-origin `Origin`: the token is an HMAC, under a key only
the app holds, of the signed-in principal and a random per-browser session id (cookie `console_sid`).
"Session" is that pair: Easy Auth's own session cookie is opaque to the app and may be refreshed, so the
console keeps its own id, bound to whoever is signed in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..core.errors import AccessRefused as Refused
from ..core.hosting import LOOPBACK, in_azure, local_console

READER, OPERATOR = "Console.Reader", "Console.Operator"
PRINCIPAL_HEADER = "x-ms-client-principal"
SESSION_COOKIE = "console_sid"
LOCAL_COOKIE = "console_local"   # a local run's proof that the browser got the link `hookops run` printed
PROXY_HEADERS = ("x-forwarded-for", "x-forwarded-host", "forwarded", "x-original-host")
MAX_PRINCIPAL = 16 * 1024  # bytes of header read; Easy Auth's is a few KiB


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    roles: frozenset[str]
    local: bool = False

    def can_read(self) -> bool:
        return bool(self.roles & {READER, OPERATOR})

    def can_operate(self) -> bool:
        return OPERATOR in self.roles




def auth_enabled(env: Mapping[str, str]) -> bool:
    # As the host's IsEasyAuthEnabled (bool.TryParse: "True", any case). On Flex the host sets it from the
    # site's auth config at assignment unless an app setting of that name exists, which wins
    # (azure-functions-host Models/HostAssignmentContext.cs, ApplyAppSettings); the Python worker copies the
    # host's variables into os.environ when it specialises (azure-functions-python-worker dispatcher,
    # _handle__function_environment_reload_request). So WEBSITE_AUTH_ENABLED must never be an app setting.
    return (env.get("WEBSITE_AUTH_ENABLED") or "").strip().lower() == "true"


def _host(value: str) -> str:
    try:
        return (urlsplit("//" + value).hostname or "").lower()
    except ValueError:
        return ""


def is_local(url: str, headers: Mapping[str, str], env: Mapping[str, str]) -> bool:
    """A local run's console (never in Azure, see core/hosting.local_console), the request made to a
    loopback address (its URL and its Host header: a page on another site that rebinds its name to
    127.0.0.1 sends its own name), and not proxied."""
    if not local_console(env):
        return False
    try:
        url_host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    host = headers.get("host")
    if url_host not in LOOPBACK or (host is not None and _host(host) not in LOOPBACK):
        return False
    return not any(headers.get(h) for h in PROXY_HEADERS)


def parse_principal(value: str | None) -> Principal | None:
    """The principal Easy Auth passes, or None when absent or not what it writes."""
    if not value or len(value) > MAX_PRINCIPAL:
        return None
    try:
        doc = json.loads(base64.b64decode(value, validate=False))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    claims = doc.get("claims") if isinstance(doc, dict) else None
    if not isinstance(claims, list):
        return None
    role_types = {"roles", str(doc.get("role_typ") or "roles")}
    name_type = str(doc.get("name_typ") or "name")
    roles, name, oid = set(), "", ""
    for c in claims:
        if not isinstance(c, dict):
            continue
        typ, val = str(c.get("typ") or ""), str(c.get("val") or "")
        if typ in role_types:
            roles.add(val)
        elif typ == name_type and not name:
            name = val
        elif typ in ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid") and not oid:
            oid = val
    return Principal(oid or name, name[:200], frozenset(roles))


def principal(url: str, headers: Mapping[str, str], env: Mapping[str, str]) -> Principal:
    """Who is asking, or Refused. `headers` with lower-case names."""
    if in_azure(env):
        if not auth_enabled(env):
            raise Refused(503, "The console is off: built-in authentication is not enabled for this app.")
        who = parse_principal(headers.get(PRINCIPAL_HEADER))
        if who is None or not who.id:
            raise Refused(401, "Sign in to use the console.")
        if not who.can_read():
            raise Refused(403, "Your account has no console role (Console.Reader or Console.Operator).")
        return who
    if is_local(url, headers, env):
        return Principal("local", "local operator", frozenset({READER, OPERATOR}), local=True)
    raise Refused(403, "The console is served only behind built-in authentication, or locally by `hookops run`.")


LOCAL_LABEL = b"hookops local console token v1"  # domain separation: CSRF tokens MAC a JSON list instead


def local_token(key: bytes) -> str:
    """A local run's console token, from the console's own random key (routes.console_key: a private blob
    in local storage), never from the webhook secret: Preservica and whoever set up the subscription know
    that one, and rotating it should not change this. `func start` listens on every interface and the
    Host header is the caller's to write: without this, anyone on the network could claim to be local."""
    return hmac.new(key, LOCAL_LABEL, hashlib.sha256).hexdigest()[:32]


def token_ok(expected: str, given: str | None) -> bool:
    """Constant-time, on bytes: `compare_digest` raises TypeError for a `str` that is not ASCII."""
    return bool(given) and hmac.compare_digest(expected.encode("utf-8"), str(given).encode("utf-8"))



# ---- CSRF and Origin ------------------------------------------------------------------------------

def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(key: bytes, who: Principal, session_id: str) -> str:
    msg = json.dumps([who.id, session_id]).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def check_csrf(key: bytes, who: Principal, session_id: str | None, token: str | None) -> None:
    if not session_id or not token:
        raise Refused(403, "The form has expired: reload the page and try again.")
    if not token_ok(csrf_token(key, who, session_id), token):
        raise Refused(403, "The form has expired: reload the page and try again.")


def check_origin(url: str, headers: Mapping[str, str]) -> None:
    """A write comes from a page of this app: its Origin (or, without one, its Referer) names this host."""
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        raise Refused(403, "Refused: the request does not say where it came from.")
    try:
        got = urlsplit(source)
        mine = urlsplit(url)
    except ValueError:
        raise Refused(403, "Refused: cross-site request.") from None
    allowed = {f"{mine.scheme}://{mine.netloc}".lower()}
    host = headers.get("host")
    if host:
        allowed.add(f"{mine.scheme}://{host}".lower())
        allowed.add(f"https://{host}".lower())  # behind the platform's TLS front end the app may see http
    if f"{got.scheme}://{got.netloc}".lower() not in allowed:
        raise Refused(403, "Refused: cross-site request.")


def cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value
    return out
