"""`relay` action: hand the event to another system as a Standard Webhooks delivery.

Body: {event, asset (summary or null), trigger, tenant, timestamp, deliveryId}; `webhook-id` is
the event key, so the receiver can drop the duplicates that at-least-once delivery brings.
2xx -> done; 410 -> `gone` (the receiver asked us to stop; not retried); anything else raises
and the queue retries.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

import httpx

from . import httpclient, journal, settings
from .action_runner import ActionError, Context, Outcome
from .envelope import Job

log = logging.getLogger(__name__)


def perform(job: Job, ctx: Context) -> Outcome:
    import standardwebhooks

    url = settings.get("RELAY_URL")
    secret = ctx.secrets.get(settings.KV_RELAY_SECRET, "RELAY_SECRET")
    if not (url and secret):
        raise ActionError(f"the relay is not configured: set RELAY_URL and RELAY_SECRET "
                          f"(Key Vault secret {settings.KV_RELAY_SECRET!r} in Azure)")
    try:
        signer = standardwebhooks.Webhook(secret)
    except Exception:  # bad base64 or empty: say so without echoing the value
        raise ActionError("RELAY_SECRET is not a Standard Webhooks secret (whsec_ + base64)") from None

    body = json.dumps({"event": job.event, "asset": _summary(job, ctx), "trigger": job.trigger,
                       "tenant": job.tenant, "timestamp": job.timestamp, "deliveryId": job.delivery_id},
                      ensure_ascii=False, separators=(",", ":"))
    now = dt.datetime.now(dt.timezone.utc)
    headers = {"webhook-id": job.key, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signer.sign(msg_id=job.key, timestamp=now, data=body),
               "content-type": "application/json"}
    try:
        resp = httpclient.client().post(url, content=body.encode("utf-8"), headers=headers)
    except httpx.InvalidURL:
        raise ActionError("RELAY_URL is not a valid URL") from None
    except httpx.HTTPError as exc:
        raise ActionError(f"the relay receiver could not be reached: {type(exc).__name__}") from None
    if 200 <= resp.status_code < 300:
        return Outcome(journal.DONE, "", {"relay_status": resp.status_code})
    if resp.status_code == 410:
        log.warning("the relay receiver answered 410 Gone: remove `relay` from PRESERVICA_ROUTES or fix RELAY_URL")
        return Outcome(journal.GONE, "receiver gone", {"relay_status": 410})
    raise ActionError(f"the relay receiver answered HTTP {resp.status_code}")


def _summary(job: Job, ctx: Context) -> dict | None:
    """The entity's summary for assets and folders; None when Preservica is not set up or it is gone."""
    if job.entity_type not in ("IO", "SO") or not settings.get("PRESERVICA_SERVER"):
        return None
    from . import preservica
    try:
        return preservica.call(ctx, lambda api: preservica.summary(api, job.entity_type, job.entity_ref))
    except preservica.NotFound:
        return None
