"""The webhook part of the Preservica double: subscriptions (with Preservica's challenge to the
subscriber when ``handshake`` is on) and sending signed event notifications as Preservica does."""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import threading
import urllib.request
import uuid
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from ..base import Reply
from .model import Entity, json_reply

TRIGGERS = ("MOVED", "FULL_TEXT_INDEXED", "CHANGED_SECURITY_DESCRIPTOR", "INGEST_FAILED", "CHANGE_ASSET_VISIBILITY")
MANAGER_ROLES = {"ROLE_SDB_ADMIN_USER", "ROLE_SDB_MANAGER_USER", "ROLE_SDB_CONFIG_MANAGER_USER"}


class WebhookApi:
    """Route handlers and ``notify`` of PreservicaDouble (a mixin). Uses the double's ``roles``,
    ``subscriptions``, ``_entities``, ``_lock``, ``tenant`` and ``version``."""
    roles: list[str]
    subscriptions: dict[str, dict]
    _entities: dict[str, Entity]
    _lock: threading.RLock
    tenant: str
    version: str

    def _may_manage_webhooks(self) -> bool:
        return bool(MANAGER_ROLES & set(self.roles))

    # Roles: pyPreservica common.py _check_if_user_has_config_manager_role (ADMIN, MANAGER or CONFIG_MANAGER).
    def _list_subscriptions(self, request, query):
        # pyPreservica webHooksAPI.py subscriptions(): GET /api/webhook/subscriptions, a JSON list of dicts
        # whose 'id' unsubscribe_all() uses. The other fields (url, triggerType, includeIdentifiers, created)
        # and leaving out the secret are inferred.
        if not self._may_manage_webhooks():
            return json_reply(403, {"message": "Forbidden"})
        return json_reply(200, [{k: v for k, v in s.items() if k != "secret"} for s in self.subscriptions.values()])

    def _subscribe(self, request, query):
        # pyPreservica webHooksAPI.py subscribe(): POST JSON {url, triggerType, secret, includeIdentifiers: "true"},
        # 200 with a JSON body the caller parses; the status and wording of a refusal are inferred.
        if not self._may_manage_webhooks():
            return json_reply(403, {"message": "Forbidden"})
        try:
            doc = json.loads(request.body)
        except ValueError:
            return json_reply(400, {"message": "body is not JSON"})
        url, trigger, secret = doc.get("url"), doc.get("triggerType"), doc.get("secret")
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return json_reply(400, {"message": "url must be an http(s) URL"})
        if trigger not in TRIGGERS:
            return json_reply(400, {"message": f"unknown triggerType {trigger!r}"})
        if not secret:
            return json_reply(400, {"message": "secret is required"})
        if self.handshake:
            problem = _challenge(url, secret)
            if problem:
                return json_reply(400, {"message": f"Subscriber challenge failed: {problem}"})
        sub_id = uuid.uuid4().hex
        self.subscriptions[sub_id] = {
            "id": sub_id, "url": url, "triggerType": trigger, "secret": secret,
            "includeIdentifiers": str(doc.get("includeIdentifiers", "false")).lower() == "true",
            "created": datetime.now(UTC).isoformat(timespec="milliseconds")}
        return json_reply(200, {k: v for k, v in self.subscriptions[sub_id].items() if k != "secret"})

    def _unsubscribe(self, request, query, sub_id):
        # pyPreservica webHooksAPI.py unsubscribe(): DELETE .../subscriptions/<id>, 204 expected; 404 inferred.
        if not self._may_manage_webhooks():
            return json_reply(403, {"message": "Forbidden"})
        sub_id = unquote(sub_id)   # the path segment as sent: percent-encoded (requests quotes it; RFC 3986 2.1)
        if self.subscriptions.pop(sub_id, None) is None:
            return json_reply(404, {"message": f"no subscription {sub_id}"})
        return Reply(204)

    # sending events, as Preservica does --------------------------------------------------------------
    def notify(self, subscription_id: str, refs=(), *, events: list[dict] | None = None,
               event_name: str = "FullTextIndexed", timeout: float = 10.0) -> tuple[int, bytes]:
        """POST one event notification to a subscriber the way Preservica does: JSON body sent
        chunked, header ``Preservica-Signature`` = hex HMAC-SHA256(secret, "preservica-webhook-auth"
        + body, pyPreservica webHooksAPI.py process_request/process_event). ``refs`` become events (type and identifiers
        from the stored entities) unless ``events`` is given. Returns (status, body) of the subscriber's answer."""
        with self._lock:
            sub = dict(self.subscriptions[subscription_id])
            if events is None:
                events = [self._event(ref, event_name, sub["includeIdentifiers"]) for ref in refs]
        major, minor = self.version.split(".")[:2]
        # Field names as pyPreservica's receivers read them (webHooksAPI.py process_event: events[].entityRef,
        # entityType), sent chunked as its reference receiver expects; the other fields follow public receivers'
        # examples (docs/../shared notes "Payload shape"): no official schema, so their exact form is inferred.
        body = json.dumps({
            "subscriptionId": subscription_id,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],   # no zone, like Preservica
            "tenant": self.tenant, "version": f"{major}.{minor}", "trigger": sub["triggerType"],
            "events": events}).encode()
        signature = hmac.new(sub["secret"].encode(), b"preservica-webhook-auth" + body, hashlib.sha256).hexdigest()
        target = urlsplit(sub["url"])
        conn_type = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(target.hostname, target.port, timeout=timeout)
        try:
            path = target.path or "/"
            conn.request("POST", path + (f"?{target.query}" if target.query else ""), body=iter([body]),
                         headers={"Content-Type": "application/json", "Preservica-Signature": signature},
                         encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _event(self, ref: str, event_name: str, include_identifiers: bool) -> dict:
        e = self._entities.get(ref)
        ids = [{t: v} for _, t, v in e.identifiers] if (e and include_identifiers) else []
        return {"event": event_name, "entityType": e.kind if e else "IO", "entityRef": ref, "identifiers": ids}


def _challenge(url: str, secret: str) -> str | None:
    """Do Preservica's subscription handshake against ``url``; None when it is answered correctly.
    The answer's shape, {"challengeCode", "challengeResponse": hex HMAC-SHA256(secret, code)}, is what
    pyPreservica's receivers return (webHooksAPI.py verify_challenge); sending it as a POST is inferred."""
    code = secrets.token_hex(16)
    expected = hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{url}{'&' if '?' in url else '?'}challengeCode={code}", data=b"",
                                     method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never via a proxy
    try:
        with opener.open(request, timeout=10) as response:
            answer = json.loads(response.read())
    except Exception as e:   # HTTPError, connection refused, not JSON...
        return repr(e)
    if answer.get("challengeCode") != code or not hmac.compare_digest(str(answer.get("challengeResponse")), expected):
        return f"wrong challenge answer {answer!r}"
    return None
