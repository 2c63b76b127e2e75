"""HTTP intake: Preservica's challenge handshake and signed deliveries, acknowledged once queued.

Order matters for cost and safety: size bound first (no HMAC work on huge bodies), then the
signature (nothing unsigned is parsed or stored), then the shape, then one durable write.
A 200 is only sent after the delivery is on the queue (or its body in a blob plus a queue
message): anything else is 503 so the sender retries.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

import azure.functions as func

from .core import envelope, settings, signature

log = logging.getLogger(__name__)
bp = func.Blueprint()

ROUTE = "preservica/webhook"
RETRY_AFTER_SECONDS = "30"


# JSON only, never sniffed as anything else, never cached (a challenge answer is per code).
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _json(status: int, doc: dict, headers: dict | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(doc), status_code=status, mimetype="application/json",
                             headers={**HEADERS, **(headers or {})})


def _error(status: int, message: str, **headers: str) -> func.HttpResponse:
    # Error bodies say what is wrong with the request, never what was expected.
    return _json(status, {"error": message}, headers or None)


def _unavailable(what: str) -> func.HttpResponse:
    return _error(503, f"{what} is unavailable; retry later", **{"Retry-After": RETRY_AFTER_SECONDS})


@bp.route(route=ROUTE, methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def preservica_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return handle(req)


def handle(req: func.HttpRequest) -> func.HttpResponse:
    from .clients import telemetry
    # A SERVER span with a method and a status becomes a request with that resultCode in Application Insights;
    # no route or URL attribute, so its name stays "intake", which the alerts query (telemetry.http_status).
    with telemetry.span("intake", server=True, http__request__method=req.method or "POST"):
        status = 500   # what the host answers when the function raises
        try:
            resp = _handle(req)
            status = resp.status_code
            return resp
        finally:
            telemetry.http_status(status)


def _handle(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body() or b""
    limit = settings.get_int("MAX_BODY_BYTES", minimum=1)
    if len(body) > limit:
        log.warning("delivery rejected: %d bytes is over MAX_BODY_BYTES (%d)", len(body), limit)
        return _error(413, f"body is larger than {limit} bytes")

    from .clients.secrets import SecretUnavailable, default as secret_source
    try:
        secrets = secret_source().webhook_secrets()
    except SecretUnavailable as exc:
        log.error("webhook secret unavailable: %s", exc)
        return _unavailable("the webhook secret")

    code = req.params.get("challengeCode")
    if code is not None:
        return _challenge(secrets[0], code)

    if not signature.verify(secrets, body, req.headers.get(signature.SIGNATURE_HEADER)):
        log.warning("delivery rejected: %s signature (%d bytes)",
                    "bad" if req.headers.get(signature.SIGNATURE_HEADER) else "missing", len(body))
        return _error(401, "missing or invalid Preservica-Signature")

    did = envelope.delivery_id(body)
    received = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    try:
        delivery, text = envelope.parse_delivery(body)  # any number of events: dispatched a page at a time
    except envelope.InvalidDelivery as exc:
        return _reject(did, received, body, str(exc))
    return _enqueue(did, received, delivery, text)


def _challenge(secret: str, code: str) -> func.HttpResponse:
    if not signature.challenge_ok(code):
        log.warning("challenge refused: the code (%d characters) is not of the allowed form", len(code))
        return _error(400, f"challengeCode must be {signature.CHALLENGE_RULE}")
    log.info("answered a subscription challenge")
    return _json(200, {"challengeCode": code, "challengeResponse": signature.challenge_response(secret, code)})


def _reject(did: str, received: str, body: bytes, reason: str) -> func.HttpResponse:
    """A signed body that is not a delivery is kept, so nothing Preservica sent is lost."""
    from .clients.storage import StorageUnavailable, default as storage
    try:
        storage().put_blob(settings.REJECTED_CONTAINER, f"{did}.bin", body, "application/octet-stream",
                           {"reason": reason, "received": received})
    except StorageUnavailable as exc:
        log.error("could not keep rejected delivery %s: %s", did, exc)
        return _unavailable("storage")
    log.warning("delivery %s rejected (%s); body kept as %s/%s.bin", did, reason, settings.REJECTED_CONTAINER, did)
    return _error(400, f"not a Preservica delivery: {reason}")


def _enqueue(did: str, received: str, delivery: envelope.Delivery, text: str) -> func.HttpResponse:
    from .clients import delivery_queue, telemetry
    from .clients.storage import StorageUnavailable, default as storage
    telemetry.annotate(delivery__id=did, delivery__trigger=delivery.trigger, delivery__events=len(delivery.events))
    trace = telemetry.traceparent()  # the dispatcher continues this trace
    try:
        delivery_queue.enqueue(storage(), did, received, text, trace)
    except StorageUnavailable as exc:
        log.error("delivery %s not queued: %s", did, exc)
        return _unavailable("the delivery queue")
    log.info("delivery %s accepted: trigger=%s events=%d", did, delivery.trigger or "?", len(delivery.events))
    return _json(200, {"status": "accepted", "deliveryId": did, "events": len(delivery.events)})
