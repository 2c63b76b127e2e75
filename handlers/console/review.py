"""The console's review of `describe`'s drafts: `drafts` lists them, `drafts/<ref>` shows one beside the
asset's current title and description, and a Console.Operator accepts it (as is or edited) or rejects it.

Accepting writes once: the draft's record is marked accepted under its ETag first (a second reviewer,
or a second click, gets "already reviewed"), then Preservica is written (DESCRIBE_WRITE: the description,
or a DESCRIBE_SCHEMA fragment), always with a fragment saying "machine-drafted, reviewed by <user>".
An asset whose description changed since the draft was made (or since the page was shown) is not
written: the page shows the conflict. The accepted text is checked as a draft is (core.describe.check).
Once written, publish is queued for the asset (`_refresh_publish`), so the public summary follows.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from urllib.parse import urlencode

from . import auth, render
from .context import BASE, Ctx

log = logging.getLogger(__name__)
HTML = "text/html"
MAX_LISTED = 100
MAX_RECORD = 256 * 1024
_REF = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _settings():
    from ..actions import describe
    return describe


def _container():
    from ..clients.storage import default
    from ..core.settings import refuse_public
    return default().blob_service().get_container_client(refuse_public(_settings().CONTAINER.value()))


def _record(ref: str) -> tuple[dict, str]:
    """The draft record and its ETag; 404 when there is none."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        blob = _container().get_blob_client(f"{ref}.json").download_blob(offset=0, length=MAX_RECORD)
        return json.loads(blob.readall()), blob.properties.etag
    except (ResourceNotFoundError, ValueError):
        raise auth.Refused(404, "No such draft.") from None


def _save(ref: str, record: dict, etag: str) -> bool:
    """Write the record only if it is unchanged since it was read (ETag): False when someone else wrote first."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    from ..clients.storage import holds
    blob, data = _container().get_blob_client(f"{ref}.json"), json.dumps(record).encode()
    try:
        blob.upload_blob(data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified,
                         metadata={"ref": ref, "status": str(record.get("status"))})
        return True
    except ResourceModifiedError:
        return holds(blob, data) is not None   # a lost answer sent again meets itself


def _asset(ref: str):
    """The asset as Preservica has it now; a page saying why when it cannot be read (never a 500)."""
    from pyPreservica.common import EntityType

    from ..clients import preservica, secrets
    from ..core.errors import ActionError, NotFound, PreservicaError
    try:
        return preservica.call(secrets.default(), lambda api: api.entity(EntityType.ASSET, ref))
    except NotFound:
        raise auth.Refused(404, "The asset is not in Preservica any more.") from None
    except (ActionError, PreservicaError) as exc:   # a 5xx is a PreservicaError, not an ActionError
        raise auth.Refused(502, f"Preservica could not be read: {exc}") from None


def _digest(text: str | None) -> str:
    from ..core.describe import description_digest
    return description_digest(text)


def drafts(ctx: Ctx):
    from azure.core.exceptions import ResourceNotFoundError
    items = []
    try:
        for blob in _container().list_blobs(include=["metadata"]):
            ref = blob.name.removesuffix(".json")
            if _REF.fullmatch(ref):
                items.append({"ref": ref, "status": (blob.metadata or {}).get("status", "?")[:20],
                              "modified": blob.last_modified})
            if len(items) >= MAX_LISTED:
                break
    except ResourceNotFoundError:
        pass
    items.sort(key=lambda i: (i["status"] != "pending", str(i["modified"])), reverse=False)
    return 200, render.html("drafts.html", base=BASE, title="Drafts", who=ctx.who, csrf=ctx.token, items=items,
                            cap=MAX_LISTED, done=ctx.params.get("done", "")[:20]), HTML, {}


def draft(ctx: Ctx, ref: str, problem: str = "", status: int = 200, text: str | None = None, replaced: bool = False):
    """The draft's page; `text` is what the reviewer typed (kept when a decision is refused), `replaced` says the
    draft shown is not the one their form came from."""
    from ..core.describe import draft_version
    if status >= 400:   # a decision refused: one line each (our own wording, never the text), as the outcomes are
        log.info("console review of %s by %s: refused (%d): %s", ref, ctx.who.id, status, problem)
    record, _ = _record(ref)
    asset = _asset(ref)
    changed = (asset.description or "") != (record.get("description") or "")
    return status, render.html("draft.html", base=BASE, title="Draft description", who=ctx.who, csrf=ctx.token,
                               ref=ref, r=record, p=record.get("provenance") or {}, current=asset,
                               changed=changed, seen=_digest(asset.description), problem=problem,
                               text=record.get("draft", "") if text is None else text, replaced=replaced,
                               version=draft_version(record), write=_settings().WRITE.value()), HTML, {}


REPLACED = ("Nothing was {done}: this draft was replaced since the page was shown ({why}). The new draft is shown "
            "below{kept}; read it and decide again.")


def _replaced(ctx: Ctx, ref: str, verdict: str, text: str | None, why: str = "describe drafted it again"):
    kept = ", and your text is kept in the box" if text is not None else ""
    done = "written" if verdict == "accept" else "rejected"
    return draft(ctx, ref, REPLACED.format(done=done, why=why, kept=kept), 409, text, replaced=True)


def decide(ctx: Ctx, ref: str, verdict: str):
    from ..core import describe as rules
    from ..core.errors import PreservicaError
    record, etag = _record(ref)
    text = (ctx.form.get("text") or "").replace("\r\n", "\n").strip() if verdict == "accept" else None
    if record.get("status") != "pending":
        return draft(ctx, ref, f"This draft is {record.get('status')}: it was already reviewed or never passed "
                               f"the checks.", 409, text)
    # The form says which draft it was rendered from: a decision is on that draft or on none. The version is the
    # record's own (draft_version), compared with the record read here under `ref`: another asset's, a made-up
    # or a missing one never matches, so no form field can point the decision elsewhere or skip the check.
    if not auth.token_ok(rules.draft_version(record), ctx.form.get("version")):
        why = "the form did not say which draft it showed" if not ctx.form.get("version") else None
        return _replaced(ctx, ref, verdict, text, why or "describe drafted it again, or the form was another draft's")
    by = ctx.who.name or ctx.who.id
    review = {"by": by, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if verdict == "reject":
        record.update(status="rejected", review=review)
        if not _save(ref, record, etag):
            return _lost(ctx, ref, verdict, None, "nothing was changed")
        log.info("console review of %s by %s: rejected", ref, ctx.who.id)
        return 303, b"", "text/plain", {"Location": f"{BASE}/drafts?{urlencode({'done': 'rejected'})}"}
    assert text is not None
    language = _settings().LANGUAGE.value() or "en"
    why = rules.check(text, _settings().MAX_CHARS.int_value(minimum=100), language, "\x00no-nonce")
    if why:
        return draft(ctx, ref, f"Not written: the text is refused by the checks ({why}).", 400, text)
    asset = _asset(ref)
    if (asset.description or "") != (record.get("description") or "") or _digest(asset.description) != ctx.form.get("seen"):
        return draft(ctx, ref, "Not written: the asset's description changed since the draft was made or the page "
                               "was shown. Compare them below.", 409, text)
    mode = _settings().WRITE.value() if _settings().WRITE.value() in ("description", "fragment") else "description"
    review.update(edited=text != record.get("draft"), wrote=mode, text=text)
    previous = dict(record)
    record.update(status="accepted", review=review)
    if not _save(ref, record, etag):   # the claim: only one acceptance ever writes, and only of the draft read
        return _lost(ctx, ref, verdict, text, "nothing was written")
    try:
        written = _write(asset, text, mode, record, by, language)
    except Exception as exc:
        _, now = _record(ref)
        _save(ref, previous, now)   # back to pending: the write did not happen (or not whole: accept again)
        if isinstance(exc, PreservicaError):
            return draft(ctx, ref, f"Not written: Preservica could not be written ({exc}). Accept again later.",
                         502, text)
        raise
    if not written:
        _, now = _record(ref)
        _save(ref, previous, now)
        return draft(ctx, ref, "Not written: the asset's description changed since the draft was made or the page "
                               "was shown. Compare them below.", 409, text)
    log.info("console review of %s by %s: accepted (%s, %s)", ref, ctx.who.id, mode,
             "edited" if review["edited"] else "as drafted")
    _refresh_publish(ref)
    return 303, b"", "text/plain", {"Location": f"{BASE}/drafts?{urlencode({'done': 'accepted'})}"}


def _lost(ctx: Ctx, ref: str, verdict: str, text: str | None, nothing: str):
    """The claim lost to a write between reading the record and claiming it: a review, or a new draft."""
    from ..core.describe import draft_version
    now, _ = _record(ref)
    if now.get("status") == "pending" and not auth.token_ok(draft_version(now), ctx.form.get("version")):
        return _replaced(ctx, ref, verdict, text)
    return draft(ctx, ref, f"Someone reviewed this draft at the same time; {nothing}.", 409, text)


def _refresh_publish(ref: str) -> None:
    """Queue publish for the asset, so its manifest's summary takes what was just written. No webhook trigger
    stands for a description or metadata change (Preservica's five: core.routing.SDK_TRIGGERS), and whether
    its event log records one as `Modified` (the reconciler's default mapping) is inferred, and late: the
    same `recheck` delivery the reconciler makes for a logged security change (publish, converging on
    Preservica's state now, and ocr and transcribe where routed: they read no file for it), on a trigger that
    routes publish. Nothing when none does. A failure is logged,
    not shown: the text is written, and the public sweep brings every published manifest up to date."""
    from ..clients import delivery_queue, storage
    from ..core import reconcile, routing, settings
    from ..pipeline import registry
    try:
        routes = registry.routes()
        trigger = next((t for t in ("CHANGED_SECURITY_DESCRIPTOR", *routing.TRIGGERS)
                        if "publish" in routes.actions_for(t)), None)
        if trigger is None:
            return
        found = reconcile.Found(ref, "IO", trigger, dt.datetime.now(dt.UTC), "DescriptionReviewed")
        [doc] = reconcile.deliveries([found], reconcile.RECHECK, settings.get("PRESERVICA_TENANT") or "", 1)
        delivery_queue.enqueue_document(storage.default(), doc, reconcile.RECHECK)
    except Exception as exc:
        log.warning("the accepted description of %s was written; queueing publish failed (%s): the public "
                    "sweep will refresh its manifest", ref, type(exc).__name__)


def _write(asset, text: str, mode: str, record: dict, by: str, language: str) -> bool:
    """Write the fragment, then (DESCRIBE_WRITE=description) the description; False, nothing written, when the
    description is no longer the one decide() compared (a person's edit since: Preservica's save() is an
    unconditional PUT, so the read just before it is the last check there is)."""
    from ..clients import preservica, secrets
    from ..core import describe as rules
    schema = _settings().SCHEMA.value()
    xml = rules.review_fragment(schema, text if mode == "fragment" else None, record.get("provenance") or {},
                                by, record["review"]["date"], record["review"]["edited"], language,
                                text if mode == "description" else asset.description)

    def work(api) -> bool:
        # pyPreservica's save() PUTs the entity's SecurityTag and Parent back with its description
        # (entityAPI.py save; its docstring says Preservica does not save the tag from it): read them now,
        # not with the page, so a closure or a move since is never sent back as it was.
        now = api.asset(asset.reference)
        if (now.description or "") != (asset.description or ""):
            return False
        # The fragment first: should the save then fail, no machine-drafted text stands without it.
        api.write_metadata(now, schema, xml)
        if mode == "description":
            now.description = text
            api.save(now)
        return True
    return preservica.call(secrets.default(), work)
