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

from ...clients import journal
from ...core import envelope, retry, settings
from ...pipeline.contract import (
    APP,
    DONE,
    LOCAL,
    SKIPPED,
    USES,
    Action,
    ActionError,
    Context,
    FanOut,
    Job,
    NotFound,
    Outcome,
    SafeError,
    Secret,
    Setting,
)

log = logging.getLogger(__name__)
MAX_WAIT = 30.0
DIGEST_SAMPLE = 5  # events named in a digest card
_sleep = time.sleep  # replaced in tests, which never wait
WEBHOOK = Secret("teams-webhook-url", Setting(
    "TEAMS_WEBHOOK_URL", None, LOCAL,
    "Teams Workflows webhook URL (local); Key Vault secret `teams-webhook-url` in Azure. It is a credential."))
DIGEST_THRESHOLD = Setting("TEAMS_DIGEST_THRESHOLD", "10", APP,
                           "A delivery with more events than this posts one digest card.")
LIST_FILES = Setting("TEAMS_LIST_FILES", "false", APP,
                     "`true`: an ingest card lists the asset's files and sizes. Off by default: listing them costs "
                     "Preservica 4 or more requests per asset (representations, content objects, generations, bitstreams).")


def reads() -> frozenset[str]:
    """The snapshot parts the card needs: the file list only when TEAMS_LIST_FILES is on."""
    return frozenset({"summary", "files"}) if (LIST_FILES.value() or "").lower() in ("true", "1", "yes") \
        else frozenset({"summary"})
ASSET_URL = settings.BY_NAME["ASSET_URL_TEMPLATE"]  # the pipeline's: pages link to assets too
WHERE = f"TEAMS_WEBHOOK_URL or Key Vault secret {WEBHOOK.vault_name!r}"


def perform(job: Job, ctx: Context) -> Outcome:
    url = ctx.secret(WEBHOOK)  # required: the dispatcher skips the action without it
    built = _card(job, ctx)
    if isinstance(built, Outcome):
        return built
    kind, card = built
    status = post(url, card)
    return Outcome(DONE, "", {"teams_status": status, "teams_card": kind})


# ---- which card ------------------------------------------------------------------------------

def _card(job: Job, ctx: Context) -> tuple[str, dict] | Outcome:
    from . import cards as teams_cards  # here, not at cold start
    link = envelope.asset_link(ASSET_URL.value(), job.entity_ref)
    if job.kind == "digest":
        return "digest", _digest(job, ctx)
    if job.trigger == "INGEST_FAILED":
        return "alert", teams_cards.alert_card(job.trigger, job.entity_type, job.entity_ref, job.tenant,
                                               job.timestamp, link)
    if job.trigger == "FULL_TEXT_INDEXED" and job.entity_type == "IO" and ctx.preservica_ready():
        parts = reads()
        snap = ctx.snapshot(job, parts)
        if snap.get("gone"):
            return Outcome(SKIPPED, "not found")
        files = [tuple(f) for f in snap.get("files") or []] if "files" in parts else None
        return "indexed", teams_cards.indexed_card(snap.get("title") or job.entity_ref, snap.get("description"),
                                                   job.entity_ref, files, link, snap.get("fileCount"))
    return "line", teams_cards.line_card(job.trigger, job.entity_type, job.entity_ref, link)


def _digest(job: Job, ctx: Context) -> dict:
    from . import cards as teams_cards
    digest = job.digest or {}
    sample = [s for s in digest.get("sample") or [] if isinstance(s, dict)]
    names = [s.get("title") or f"{s.get('entityType', '?')} {s.get('entityRef', '?')}" for s in sample]
    names = [n + " (deleted)" if s.get("gone") else n for n, s in zip(names, sample, strict=True)]
    if ctx.preservica_ready():
        from ...clients import preservica
        for i, s in enumerate(sample):
            if s.get("entityType") not in ("IO", "SO") or "title" in s or s.get("gone"):
                continue  # the dispatcher's snapshot already said
            try:
                found = ctx.preservica(lambda api, s=s: preservica.summary(api, s["entityType"], s["entityRef"]))
                names[i] = found["title"] or names[i]
            except NotFound:
                names[i] += " (deleted)"
            except SafeError:
                break  # Preservica is unwell or not set up: the card goes out with references, not titles
    return teams_cards.digest_card(job.trigger, int(digest.get("total") or len(sample)),
                                   dict(digest.get("counts") or {}), names, len(sample))


# ---- posting ---------------------------------------------------------------------------------

def post(url: str, card: dict) -> int:
    """POST the card; the status on 2xx, else ActionError (safe to record: no URL)."""
    from ...clients import http
    for attempt in (1, 2):
        resp = http.send("POST", url, peer="Teams", where=WHERE, json=card)
        status = resp.status_code
        if 200 <= status < 300:
            return status
        if status == 429 or status >= 500:
            wait = http.retry_after(resp)
            pause = retry.wait_once(attempt, wait, MAX_WAIT)
            if pause is not None:
                log.warning("Teams answered HTTP %d with Retry-After %.0f s; posting again then", status, pause)
                _sleep(pause)
                continue
            raise ActionError(f"Teams answered HTTP {status}" + (f" (Retry-After {wait:.0f} s)" if wait else "")
                              + "; the queue will retry")
        if status in (401, 403, 404):
            raise ActionError(f"Teams refused the webhook URL: HTTP {status}{_code(resp)}. The flow may be "
                              f"deleted or its URL regenerated: check {WHERE}")
        raise ActionError(f"Teams refused the card: HTTP {status}{_code(resp)}")
    raise AssertionError  # unreachable


def _code(resp) -> str:
    """The error code a Workflows endpoint sends (e.g. InvalidRequestContent); never free text."""
    try:
        code = resp.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9_.]{1,80}", code) else ""


# ---- the digest: many events of one delivery become one card ----------------------------------

def fan_out(jobs: list[Job], delivery) -> FanOut | None:
    """Dispatcher hook: more Teams events in one delivery than TEAMS_DIGEST_THRESHOLD become one digest,
    which gets a journal row of its own, so `hookops events` shows the card and its state."""
    if len(jobs) <= DIGEST_THRESHOLD.int_value():
        return None
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.entity_type or "?"] = counts.get(j.entity_type or "?", 0) + 1
    did, pk = jobs[0].delivery_id, jobs[0].pk
    prefix = envelope.journal_row_prefix(delivery, did)
    # settle() marks this delivery's rows (`prefix` + subscription and trigger), so the message stays
    # small whatever the number of events.
    digest = {"total": len(jobs), "counts": counts, "prefix": prefix,
              "sample": [_sample(j) for j in jobs[:DIGEST_SAMPLE]]}
    key = envelope.event_key(delivery, {"event": "digest " + envelope.event_key(delivery, delivery.events[0])})  # per page
    job = Job(action="teams", kind="digest", key=key, pk=pk, rk=prefix + "digest-" + key, delivery_id=did,
              trigger=delivery.trigger, tenant=delivery.tenant, subscription_id=delivery.subscription_id,
              timestamp=delivery.timestamp, event={}, digest=digest)
    row = journal.event_row(pk, job.rk, key, did, "", delivery, {"event": "digest"}, ("teams",))
    row = {**row, "entityRef": f"(digest of {len(jobs)} events)", **journal.state_columns("teams", journal.QUEUED)}
    return FanOut([job], {j.rk: "in digest" for j in jobs}, {job.rk: row})


def _sample(job: Job) -> dict:
    found = {"entityType": job.entity_type, "entityRef": job.entity_ref}
    snap = job.snapshot or {}
    if snap.get("gone"):
        found["gone"] = True
    elif snap.get("title"):
        found["title"] = str(snap["title"])[:200]  # what a digest card shows; the message stays small
    return found


def settle(book, job: Job, outcome: Outcome) -> list[dict]:
    """Runner hook: a digest's outcome is its events' outcome. Its events share the row prefix (the
    delivery's timestamp), subscription and trigger; another subscription's delivery with the same
    timestamp shares only the prefix."""
    if job.kind != "digest" or not job.digest:
        return []
    rows = book.rows_with_prefix(job.pk, job.digest["prefix"])
    reason = f"in digest {job.key}" + (f": {outcome.reason}" if outcome.reason else "")
    return [{"PartitionKey": job.pk, "RowKey": rk, **journal.state_columns("teams", outcome.state, reason)}
            for rk, row in rows.items()
            if rk != job.rk and journal.state_of(row, "teams") == journal.QUEUED
            and row.get("subscriptionId") == journal.clip(job.subscription_id)
            and row.get("trigger") == journal.clip(job.trigger)]


ACTION = Action(name="teams", perform=perform, settings=(WEBHOOK.local, DIGEST_THRESHOLD, LIST_FILES, ASSET_URL),
                required=(), secrets=(WEBHOOK,), preservica=USES, reads=reads, repeatable=False, fan_out=fan_out,
                settle=settle)
