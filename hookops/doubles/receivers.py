"""Local HTTP receivers for tests and benchmarks: Teams Workflows webhook, catalogue lookup, relay.

Each is an ``HttpDouble`` (``base.py``): it listens on 127.0.0.1 at a free port, records each
request in ``received`` before it answers, and is stopped by ``stop()`` or by leaving its ``with`` block.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qs, unquote, urlsplit

from .base import HttpDouble, Received, Reply


def _json_reply(status: int, doc) -> Reply:
    return Reply(status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(doc).encode())


# ---------------------------------------------------------------------------------------------
class TeamsDouble(HttpDouble):
    """A Teams Workflows "When a Teams webhook request is received" endpoint.

    ``url`` looks like the real one, ``sig=`` included (a wrong or missing sig gets 401). A valid
    Adaptive Card message gets 202 with an empty body; a malformed one gets 400 with a reason.
    ``cards`` holds the ``content`` of every accepted card. Use ``respond_with(429,
    {"Retry-After": "1"})`` or ``respond_with(400)`` to script failures.
    """

    # Shapes: the envelope {"type": "message", "attachments": [{contentType adaptive, content}]} is Microsoft's
    # "Send Adaptive Cards using an Incoming Webhook" (learn.microsoft.com/microsoftteams/platform/
    # webhooks-and-connectors/how-to/connectors-using); the URL (api-version, sp, sv, sig) is a Logic Apps
    # request trigger's callback URL (learn.microsoft.com/azure/logic-apps/logic-apps-http-endpoint).
    # Inferred: 202 with an empty body, and the error codes/statuses of a bad sig or body. Over 28 KB ("The message
    # size limit is 28 KB", learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/
    # add-incoming-webhook) the card is dropped behind a 202, as one public receiver reports (inferred): `dropped`.
    PATH = "/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke"
    MAX_BYTES = 28 * 1024

    def __init__(self, sig: str | None = None):
        super().__init__()
        self.sig = sig or secrets.token_urlsafe(32)
        self.cards: list[dict] = []
        self.dropped = 0

    @property
    def url(self) -> str:
        return (f"{self.base_url}{self.PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
                f"&sv=1.0&sig={self.sig}")

    def handle(self, request: Received) -> Reply:
        parts = urlsplit(request.path)
        if request.method != "POST" or parts.path != self.PATH:
            return _json_reply(404, {"error": {"code": "NotFound"}})
        if not hmac.compare_digest(parse_qs(parts.query).get("sig", [""])[0], self.sig):
            return _json_reply(401, {"error": {"code": "DirectApiAuthorizationRequired"}})
        problem = adaptive_card_problem(request.body)
        if problem:
            return _json_reply(400, {"error": {"code": "InvalidRequestContent", "message": problem}})
        if len(request.body) > self.MAX_BYTES:
            with self._cond:
                self.dropped += 1
            return Reply(202)
        with self._cond:
            self.cards.append(json.loads(request.body)["attachments"][0]["content"])
        return Reply(202)


def adaptive_card_problem(body: bytes) -> str | None:
    """Why ``body`` is not a Teams Adaptive Card message envelope, or None when it is one."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        return f"body is not JSON: {e}"
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return 'type must be "message"'
    attachments = doc.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    first = attachments[0]
    if not isinstance(first, dict) or first.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return 'attachments[0].contentType must be "application/vnd.microsoft.card.adaptive"'
    content = first.get("content")
    if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
        return 'attachments[0].content.type must be "AdaptiveCard"'
    if "body" in content and not isinstance(content["body"], list):
        return "attachments[0].content.body must be a list"
    return None


# ---------------------------------------------------------------------------------------------
class CatalogueDouble(HttpDouble):
    """An external catalogue: ``GET /records/{identifier}`` answers the XML set by ``add_record``, else 404."""
    # Inferred throughout: no particular product; CATALOGUE_URL_TEMPLATE names whatever server an archive has.

    def __init__(self):
        super().__init__()
        self.records: dict[str, bytes] = {}

    @property
    def url_template(self) -> str:
        return f"{self.base_url}/records/{{identifier}}"

    def add_record(self, identifier: str, xml: str | bytes) -> None:
        with self._cond:
            self.records[identifier] = xml.encode("utf-8") if isinstance(xml, str) else xml

    def remove_record(self, identifier: str) -> None:
        with self._cond:
            self.records.pop(identifier, None)

    def handle(self, request: Received) -> Reply:
        path = urlsplit(request.path).path
        if request.method not in ("GET", "HEAD") or not path.startswith("/records/"):
            return Reply(404)
        with self._cond:
            record = self.records.get(unquote(path[len("/records/"):]))
        if record is None:
            return Reply(404, {"Content-Type": "text/plain"}, b"no such record")
        return Reply(200, {"Content-Type": "application/xml; charset=utf-8"}, record)


# ---------------------------------------------------------------------------------------------
class RelayReceiver(HttpDouble):
    """A downstream endpoint that receives Standard Webhooks deliveries.

    A delivery is accepted (204) only when BOTH the svix package and this module's own reading of
    the spec (``verify_standard_webhook``) accept its signature: svix 2.x is a thin wrapper around
    the ``standardwebhooks`` package the app signs with, so on its own it is not an independent check.
    Bad signature -> 401. ``gone()`` makes every later request answer 410; ``respond_with`` scripts
    any other status (scripted answers skip verification and are not deliveries). ``deliveries`` holds accepted requests;
    ``disagreements`` lists requests the two verifiers judged differently (should stay empty).
    """

    def __init__(self, secret: str | None = None, path: str = "/hooks/preservica"):
        super().__init__()
        self.secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.path = path
        self.deliveries: list[Received] = []
        self.disagreements: list[Received] = []
        self._gone = False

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def gone(self) -> None:
        self._gone = True

    def wait_for_deliveries(self, n: int, timeout: float = 5.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.deliveries) >= n, timeout):
                raise TimeoutError(f"RelayReceiver: {len(self.deliveries)} of {n} deliveries after {timeout}s "
                                   f"({len(self.received)} requests received)")
            return list(self.deliveries)

    # Signature scheme: the Standard Webhooks spec (github.com/standard-webhooks/standard-webhooks,
    # spec/standard-webhooks.md); 204/401/410 statuses are inferred (any 2xx is success per the spec).
    def handle(self, request: Received) -> Reply:
        if self._gone:
            return Reply(410)
        if request.method != "POST" or urlsplit(request.path).path != self.path:
            return Reply(404)
        from svix.webhooks import Webhook as SvixWebhook  # here: importing svix costs ~1 s
        try:
            SvixWebhook(self.secret).verify(request.body, request.headers)
            svix_ok = True
        except Exception:   # WebhookVerificationError, or UnicodeDecodeError on a non-UTF-8 body
            svix_ok = False
        own_ok = verify_standard_webhook(self.secret, request.body, request.headers)
        with self._cond:
            if svix_ok != own_ok:
                self.disagreements.append(request)
            if not (svix_ok and own_ok):
                return Reply(401)
            self.deliveries.append(request)
            self._cond.notify_all()
        return Reply(204)


def verify_standard_webhook(secret: str, body: bytes, headers: dict[str, str], tolerance: int = 300,
                            now: float | None = None) -> bool:
    """Standard Webhooks v1 check written from the spec, independent of svix/standardwebhooks:
    HMAC-SHA256(base64-decoded whsec_ key, f"{id}.{timestamp}.".encode() + raw body), base64,
    any of the space-separated ``v1,<sig>`` entries may match, timestamp within ``tolerance`` s."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and stamp and sigs):
        return False
    try:
        ts = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    for entry in sigs.split():
        version, _, sig = entry.partition(",")
        try:
            if version == "v1" and hmac.compare_digest(base64.b64decode(sig, validate=True), expected):
                return True
        except ValueError:
            continue
    return False
