"""What hookops' commands share, below all of them: failing with a message, the app's storage, the
webhook secret and Preservica's credentials as the app reads them, terminal-safe text, URLs with their
query redacted, and the subscription challenge. Nothing here imports a command or the `hookops` group
(hookops/cli.py)."""
from __future__ import annotations

import secrets as pysecrets
import unicodedata
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import click

from handlers.core import settings


def fail(message: str) -> NoReturn:
    """Stop with `message`, escaped: errors quote what Preservica or an endpoint said (printable())."""
    raise click.ClickException(printable(message))


def webhook_secret() -> str:
    from handlers.clients.secrets import SecretUnavailable, default
    try:
        return default().webhook_secrets()[0]
    except SecretUnavailable as exc:
        fail(f"{exc}. Run `make run` once to create local.settings.json, or set KEY_VAULT_URI.")


def storage():
    from handlers.clients.storage import StorageUnavailable, default
    try:
        return default()
    except StorageUnavailable as exc:
        fail(str(exc))


def preservica_secrets():
    """The app's secret source, once Preservica's server and credentials are all set."""
    from handlers.clients.secrets import default
    secrets = default()
    missing = settings.preservica_missing(secrets)
    if missing:
        fail(f"Preservica is not configured: set {', '.join(missing)}")
    return secrets


# Control and format characters (ESC, CR, DEL, C1, bidi overrides, zero-width ones), line and
# paragraph separators, and lone surrogates: in sender-controlled text they could rewrite the
# operator's screen (erase lines, fake hyperlinks, reorder text), or fail to encode at all.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def printable(value) -> str:
    """`value` as text safe for a terminal: every unprintable character shown as an escape, as
    Python writes them (\\r, \\x1b, \\u202e, ...)."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the usual case, in one C call (what it refuses is a superset)
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


def _escape(c: str) -> str:
    o = ord(c)
    if c in "\t\n\r":
        return repr(c)[1:-1]
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def redact_url(url: str) -> str:
    """The URL without its query string (a function key `code=` or a `sig=` lives there)."""
    parts = urlsplit(str(url or ""))
    return urlunsplit(parts._replace(query="<redacted>" if parts.query else "", fragment=""))


def check_endpoint(url: str, secret: str) -> tuple[bool, str]:
    """Perform Preservica's subscription challenge against `url`; (ok, explanation)."""
    import httpx

    from handlers.core import signature
    code = pysecrets.token_hex(16)
    try:
        resp = httpx.post(url, params={"challengeCode": code}, timeout=30)
    except httpx.HTTPError as exc:
        return False, f"no answer from {url}: {type(exc).__name__}"
    if resp.status_code != 200:
        return False, f"answered {resp.status_code}, expected 200"
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return False, "answer is not application/json"
    try:
        doc = resp.json()
    except ValueError:
        return False, "answer is not JSON"
    if not isinstance(doc, dict) or doc.get("challengeCode") != code:
        return False, "answer does not echo the challengeCode"
    if str(doc.get("challengeResponse", "")).lower() != signature.challenge_response(secret, code):
        return False, "challengeResponse is wrong: the endpoint uses a different secret"
    return True, "challenge answered correctly"
