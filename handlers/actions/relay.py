"""`relay` action: hand the event to another system as a Standard Webhooks delivery.

Body: {event, asset (summary or null; title and description null unless public now), trigger, tenant, timestamp,
deliveryId, iiif?}; `webhook-id` is
the event key, so the receiver can drop the duplicates that at-least-once delivery brings.
`iiif` (when `publish` is routed for the trigger): {"state": "published", "manifest": url} or
{"state": "withdrawn"}, from the security tag and visibility the dispatcher read (public_store.is_public); the manifest
may appear a moment later.
2xx -> done; 410 -> `gone` (the receiver asked us to stop; not retried); anything else raises
and the queue retries.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from ..pipeline.contract import APP, DONE, GONE, LOCAL, USES, Action, ActionError, Context, Job, Outcome, Secret, Setting

log = logging.getLogger(__name__)
READS = frozenset({"summary", "visibility"})   # visibility: `iiif` says withdrawn for a hidden asset
URL = Setting("RELAY_URL", None, APP, "Receiver the `relay` action POSTs Standard Webhooks to.")
SECRET = Secret("relay-secret", Setting(
    "RELAY_SECRET", None, LOCAL,
    "Standard Webhooks secret (`whsec_...`) for `relay` (local); Key Vault `relay-secret` in Azure."))


def perform(job: Job, ctx: Context) -> Outcome:
    import standardwebhooks

    from ..clients import http
    url, secret = URL.value(), ctx.secret(SECRET)  # required: the dispatcher skips the action without them
    try:
        signer = standardwebhooks.Webhook(secret)
    except Exception:  # bad base64 or empty: say so without echoing the value
        raise ActionError("RELAY_SECRET is not a Standard Webhooks secret (whsec_ + base64)") from None

    snap = _snapshot(job, ctx)
    doc = {"event": job.event, "asset": _summary(job, snap), "trigger": job.trigger,
           "tenant": job.tenant, "timestamp": job.timestamp, "deliveryId": job.delivery_id}
    if (published := _iiif(job, ctx, snap)) is not None:
        doc["iiif"] = published
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    now = dt.datetime.now(dt.UTC)
    headers = {"webhook-id": job.key, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signer.sign(msg_id=job.key, timestamp=now, data=body),
               "content-type": "application/json"}
    from ..clients import telemetry
    if trace := telemetry.traceparent():  # the receiver can join this delivery's trace
        headers["traceparent"] = trace
    resp = http.send("POST", url, peer="the relay receiver", where="RELAY_URL", content=body.encode("utf-8"),
                     headers=headers)
    if 200 <= resp.status_code < 300:
        return Outcome(DONE, "", {"relay_status": resp.status_code})
    if resp.status_code == 410:
        log.warning("the relay receiver answered 410 Gone: remove `relay` from PRESERVICA_ROUTES or fix RELAY_URL")
        return Outcome(GONE, "receiver gone", {"relay_status": 410})
    raise ActionError(f"the relay receiver answered HTTP {resp.status_code}")


def _snapshot(job: Job, ctx: Context) -> dict | None:
    """The entity's snapshot for assets and folders; None when Preservica is not set up or it is gone."""
    if job.entity_type not in ("IO", "SO") or not ctx.preservica_ready():
        return None
    snap = ctx.snapshot(job, READS)
    return None if snap.get("gone") else snap


def _summary(job: Job, snap: dict | None) -> dict | None:
    """What the receiver, a discovery platform, is told of the entity. One Preservica says is not public (by the rule
    publish applies) is named by its ref and tag only: its title and description are null, never sent."""
    if snap is None:
        return None
    from ..clients import public_store
    shown = public_store.is_public(snap.get("securityTag"), bool(snap.get("hidden")))
    return {"ref": job.entity_ref, "type": job.entity_type, "title": snap.get("title") if shown else None,
            "description": snap.get("description") if shown else None, "securityTag": snap.get("securityTag"),
            "parent": snap.get("parent")}


def _iiif(job: Job, ctx: Context, snap: dict | None) -> dict | None:
    """When `publish` runs for this trigger too: the manifest URL the asset converges to, or its withdrawal."""
    if job.entity_type != "IO" or not ctx.preservica_ready():
        return None
    from ..core import routing, settings
    if "publish" not in routing.parse(settings.get("PRESERVICA_ROUTES"), None).actions_for(job.trigger):
        return None
    from ..clients import public_store
    snap = snap or {}   # gone: withdrawn
    return public_store.link(job.entity_ref, snap.get("securityTag"), bool(snap.get("hidden")))


ACTION = Action(name="relay", perform=perform, settings=(URL, SECRET.local), required=(URL,), secrets=(SECRET,),
                preservica=USES, reads=READS, repeatable=False)
