"""What the Azure AI service doubles (Document Intelligence, Speech, Azure OpenAI) share: a key in a header or an
Entra ID bearer token, checked alike, and each call's headers kept with those credentials redacted.

Sources: each service's auth is its key header (`Ocp-Apim-Subscription-Key`; Azure OpenAI's `api-key`) or
`Authorization: Bearer <Entra ID token>` (the modules of the doubles cite each service's spec). Inferred: the
401 body, the text Azure AI services answer a wrong key with, the same for the three.
"""
from __future__ import annotations

import hmac
import threading
from urllib.parse import parse_qs, urlsplit

import trustme

from .tls import HttpsDouble, JsonHandler

DENIED = {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}


class AiServiceDouble(HttpsDouble):
    """An HTTPS AI service double: `key` (in KEY_HEADER) or a bearer token `accept_token(token)` approves."""
    KEY_HEADER = "Ocp-Apim-Subscription-Key"

    def __init__(self, key: str, ca: trustme.CA | None = None, accept_token=None):
        self.key = key
        self.accept_token = accept_token          # callable(token) -> bool, for Entra ID tokens
        self._ca = ca or trustme.CA()
        self._lock = threading.Lock()

    def _authorized(self, headers) -> bool:
        key = headers.get(self.KEY_HEADER)
        if key is not None:
            return hmac.compare_digest(key.encode(), self.key.encode())
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(token) and bool(self.accept_token and self.accept_token(token))


class AiHandler(JsonHandler):
    """A request handler of an AiServiceDouble."""

    def request_parts(self) -> tuple[str, dict, dict]:
        """The path, the query (first value of each name) and the headers (lower-case names, the credentials
        "<redacted>"): what a double keeps of a call."""
        url = urlsplit(self.path)
        secret = (self.server.double.KEY_HEADER.lower(), "authorization")
        headers = {k.lower(): ("<redacted>" if k.lower() in secret else v) for k, v in self.headers.items()}
        return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, headers
