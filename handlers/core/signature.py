"""Preservica's HMAC scheme: the challenge answer and the delivery signature. Pure, no I/O.

Both are lowercase hex HMAC-SHA256 keyed with the shared secret. A delivery is signed over
b"preservica-webhook-auth" + the raw body bytes; we never decode the body first, so any
bytes verify (the reference SDK's latin-1 round trip crashes on non-latin-1 text).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from .errors import UnsafeChallenge as UnsafeChallenge

SIGNATURE_HEADER = "Preservica-Signature"
_PREFIX = b"preservica-webhook-auth"
_HEX_LEN = 64
_HEX = frozenset("0123456789abcdef")
# What a challenge code may be: no public source documents its format (pyPreservica's receivers echo
# any string), so this admits UUIDs, hex, base64 and base64url tokens up to 256 characters, and
# nothing that could be JSON. The prefix rule is what matters: the answer is HMAC(secret, code) and a
# delivery signature is HMAC(secret, prefix + body), so a code that starts with the prefix would make
# the challenge sign a forged delivery.
CHALLENGE_RULE = "1 to 256 characters of A-Z a-z 0-9 . _ ~ : + / = -, not starting with 'preservica-webhook-auth'"
_CHALLENGE = re.compile(r"[A-Za-z0-9._~:+/=-]{1,256}")


def challenge_ok(code: str) -> bool:
    return bool(_CHALLENGE.fullmatch(code)) and not code.lower().startswith(_PREFIX.decode())


def _key(secret: str | bytes) -> bytes:
    # UTF-8; pyPreservica's receivers use latin-1 (webHooksAPI.py). The same bytes for an ASCII secret, which
    # `hookops subscribe` insists on: Preservica's own key encoding is not public (inferred).
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def challenge_response(secret: str | bytes, code: str) -> str:
    """The answer to a subscription challenge; refuses any code that could double as a signed delivery."""
    if not challenge_ok(code):
        raise UnsafeChallenge(f"challengeCode must be {CHALLENGE_RULE}")
    return hmac.new(_key(secret), code.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes) -> str:
    """What Preservica puts in the Preservica-Signature header for this body."""
    mac = hmac.new(_key(secret), _PREFIX, hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def verify(secrets: Iterable[str | bytes], body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of `body` under any of `secrets` (current, previous).

    Constant time in the signature's value; hex case does not matter. Every secret is tried
    so the time does not tell which one matched.
    """
    if not header:
        return False
    given = header.strip().lower()
    if len(given) != _HEX_LEN or not _HEX.issuperset(given):
        return False
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(sign(secret, body), given)
    return ok
