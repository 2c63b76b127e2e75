"""`teams` action: post an Adaptive Card to a Teams Workflows webhook.

Cards: FULL_TEXT_INDEXED asset -> title, description, files and sizes, a button when
ASSET_URL_TEMPLATE is set (needs Preservica settings; without them a one-line card);
INGEST_FAILED -> alert; other triggers -> one line; a delivery with many events -> one digest.

Throttling: 429/5xx with a Retry-After of at most MAX_WAIT seconds -> wait that long once in
this invocation and post again. Anything else retryable (no Retry-After, a longer one, or a
second failure) raises at once: the queue shows the message again after host.json's
visibilityTimeout (30 s), up to maxDequeueCount times, so a function is never held for long.
The webhook URL is a credential: it is never logged, recorded or put in an error.
"""
from __future__ import annotations

import logging
import re
import time

import httpx

from . import httpclient, journal, settings, teams_cards
from .action_runner import ActionError, Context, Outcome
from .envelope import Job

log = logging.getLogger(__name__)
MAX_WAIT = 30.0
_sleep = time.sleep  # replaced in tests, which never wait
WHERE = f"TEAMS_WEBHOOK_URL or Key Vault secret {settings.KV_TEAMS_WEBHOOK_URL!r}"


def perform(job: Job, ctx: Context) -> Outcome:
    url = ctx.secrets.get(settings.KV_TEAMS_WEBHOOK_URL, "TEAMS_WEBHOOK_URL")
    if not url:
        raise ActionError(f"the Teams webhook URL is not configured ({WHERE})")
    built = _card(job, ctx)
    if isinstance(built, Outcome):
        return built
    kind, card = built
    status = post(url, card)
    return Outcome(journal.DONE, "", {"teams_status": status, "teams_card": kind})


# ---- which card ------------------------------------------------------------------------------

def _preservica_ready(ctx: Context) -> bool:
    from .action_config import preservica_missing
    return not preservica_missing(ctx.secrets)


def _card(job: Job, ctx: Context) -> tuple[str, dict] | Outcome:
    link = teams_cards.asset_link(settings.get("ASSET_URL_TEMPLATE"), job.entity_ref)
    if job.kind == "digest":
        return "digest", _digest(job, ctx)
    if job.trigger == "INGEST_FAILED":
        return "alert", teams_cards.alert_card(job.trigger, job.entity_type, job.entity_ref, job.tenant,
                                               job.timestamp, link)
    if job.trigger == "FULL_TEXT_INDEXED" and job.entity_type == "IO" and _preservica_ready(ctx):
        from . import preservica
        try:
            title, description, files = preservica.call(ctx, lambda api: _asset_details(api, job.entity_ref))
        except preservica.NotFound:
            return Outcome(journal.SKIPPED, "not found")
        return "indexed", teams_cards.indexed_card(title, description, job.entity_ref, files, link)
    return "line", teams_cards.line_card(job.trigger, job.entity_type, job.entity_ref, link)


def _asset_details(api, ref: str):
    asset = api.asset(ref)
    files = sorted((b.filename or "?", _int(b.length)) for b in api.bitstreams_for_asset(asset))
    return asset.title or ref, asset.description, files


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _digest(job: Job, ctx: Context) -> dict:
    digest = job.digest or {}
    sample = [s for s in digest.get("sample") or [] if isinstance(s, dict)]
    names = [f"{s.get('entityType', '?')} {s.get('entityRef', '?')}" for s in sample]
    if _preservica_ready(ctx):
        from . import preservica
        for i, s in enumerate(sample):
            if s.get("entityType") not in ("IO", "SO"):
                continue
            try:
                found = preservica.call(ctx, lambda api: preservica.summary(api, s["entityType"], s["entityRef"]))
                names[i] = found["title"] or names[i]
            except preservica.NotFound:
                names[i] += " (deleted)"
            except ActionError:
                break  # Preservica is unwell: the card goes out with references, not titles
    return teams_cards.digest_card(job.trigger, int(digest.get("total") or len(sample)),
                                   dict(digest.get("counts") or {}), names, len(sample))


# ---- posting ---------------------------------------------------------------------------------

def post(url: str, card: dict) -> int:
    """POST the card; the status on 2xx, else ActionError (safe to record: no URL)."""
    for attempt in (1, 2):
        try:
            resp = httpclient.client().post(url, json=card)
        except httpx.InvalidURL:  # not an HTTPError; its message would quote the URL, a credential
            raise ActionError(f"the Teams webhook URL is not a valid URL: check {WHERE}") from None
        except httpx.HTTPError as exc:
            raise ActionError(f"Teams could not be reached: {type(exc).__name__}") from None
        status = resp.status_code
        if 200 <= status < 300:
            return status
        if status == 429 or status >= 500:
            wait = httpclient.retry_after(resp)
            if attempt == 1 and wait is not None and wait <= MAX_WAIT:
                log.warning("Teams answered HTTP %d with Retry-After %.0f s; posting again then", status, wait)
                _sleep(wait)
                continue
            raise ActionError(f"Teams answered HTTP {status}" + (f" (Retry-After {wait:.0f} s)" if wait else "")
                              + "; the queue will retry")
        if status in (401, 403, 404):
            raise ActionError(f"Teams refused the webhook URL: HTTP {status}{_code(resp)}. The flow may be "
                              f"deleted or its URL regenerated: check {WHERE}")
        raise ActionError(f"Teams refused the card: HTTP {status}{_code(resp)}")
    raise AssertionError  # unreachable


def _code(resp: httpx.Response) -> str:
    """The error code a Workflows endpoint sends (e.g. InvalidRequestContent); never free text."""
    try:
        code = resp.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9_.]{1,80}", code) else ""
