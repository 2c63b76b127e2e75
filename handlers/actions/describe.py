"""`describe` action: a draft description of an asset from its OCR text (`ocr`'s `<ref>.txt`) and its
transcript (`transcribe`'s), written by an Azure OpenAI deployment and kept as a *suggestion*:
`<ref>.json` in DESCRIBE_CONTAINER with its provenance (deployment, model version, prompt hash, date,
token counts) and the asset's title and description as they were. It never writes to Preservica: a
person accepts (as is or edited) or rejects the draft in the console, which writes it (DESCRIBE_WRITE).

Untrusted text stays data (core.describe): the instructions are the system message alone, the text goes
in the user message between nonce'd delimiters, and the answer is checked (plain text, length, no markup
or links, the language's script) before it is offered; one that fails is kept with the reason
(`skipped: draft refused by the checks: ...`). The content filter's refusal is recorded as such. The
text sent is cut so that the prompt and the answer stay within DESCRIBE_MAX_TOKENS per asset.
429/5xx: one wait of at most MAX_WAIT s when the service says Retry-After, then the queue retries.
"""
from __future__ import annotations

import datetime as dt
import json
import time

from ..clients import snapshot
from ..core import envelope, retry, settings
from ..core.errors import Conflict
from ..pipeline.contract import (
    APP,
    DONE,
    LOCAL,
    NEEDS,
    SKIPPED,
    Action,
    ActionError,
    Context,
    Job,
    Outcome,
    Secret,
    Setting,
    clip,
)

ENDPOINT = Setting("OPENAI_ENDPOINT", None, APP,
                   "Azure OpenAI endpoint for `describe` (`https://<name>.openai.azure.com/`); reached with the "
                   "app's identity (role Cognitive Services OpenAI User).")
KEY = Secret("openai-key", Setting("OPENAI_KEY", None, LOCAL,
                                   "Azure OpenAI key for local runs only; optional Key Vault secret `openai-key`. "
                                   "Unset: the app's identity (the Bicep resource disables keys)."))
API_VERSION = Setting("OPENAI_API_VERSION", "2024-10-21", APP, "Azure OpenAI data-plane API version `describe` uses.")
DEPLOYMENT = Setting("DESCRIBE_DEPLOYMENT", None, APP, "Azure OpenAI model deployment `describe` asks for drafts.")
PROMPT = Setting("DESCRIBE_PROMPT", None, APP,
                 "What `describe` asks for (the system message; unset: a factual archival description of at most "
                 "two paragraphs). The rules that keep the document's text as data are always appended.")
LANGUAGE = Setting("DESCRIBE_LANGUAGE", "en", APP,
                   "Language of the drafts (a language tag); a draft in another script is refused by the checks.")
MAX_CHARS = Setting("DESCRIBE_MAX_CHARS", "1500", APP, "Longest draft kept, in characters; longer ones are refused.")
MAX_TOKENS = Setting("DESCRIBE_MAX_TOKENS", "6000", APP,
                     "Most tokens one asset's draft may use, prompt and answer together: the text sent is cut to fit.")
OCR_TEXT, TRANSCRIPTS = settings.BY_NAME["OCR_CONTAINER"], settings.BY_NAME["TRANSCRIBE_CONTAINER"]   # what it reads
CONTAINER = Setting("DESCRIBE_CONTAINER", "drafts", APP, "Blob container for the drafts (`<ref>.json`).")
WRITE, SCHEMA = settings.BY_NAME["DESCRIBE_WRITE"], settings.BY_NAME["DESCRIBE_SCHEMA"]   # the console's, publish's
READS = frozenset({"summary"})
REVIEWED = frozenset({"accepted", "rejected"})   # the console's verdicts (console/review.py)
ANSWER_TOKENS = 600     # the most the answer may use (1500 characters are ~400 tokens in English)
OVERHEAD_TOKENS = 400   # the system message and the message framing
CHARS_PER_TOKEN = 2     # inferred, cautious: English runs ~4 characters a token, other scripts fewer
MAX_WAIT = 30.0
_sleep = time.sleep     # replaced in tests, which never wait


def perform(job: Job, ctx: Context) -> Outcome:
    from ..core import describe as rules
    if not envelope.is_ref(job.entity_ref):
        return Outcome(SKIPPED, "not a Preservica reference")
    language = (LANGUAGE.value() or "en").strip()
    if not rules.is_language(language):
        raise ActionError("DESCRIBE_LANGUAGE must be a language tag such as en or cy")
    snap = ctx.snapshot(job, READS)
    snapshot.entity("IO", job.entity_ref, snap)   # NotFound when deleted: the runner's `gone`
    status, etag = _kept(ctx, job.entity_ref)
    if status in REVIEWED:   # the record of a person's review is kept, and no machine text replaces it
        return Outcome(SKIPPED, f"its draft was reviewed ({status}) before: not replaced")
    read = {"ocr": _text(ctx, OCR_TEXT.value(), job.entity_ref),
            "transcript": _text(ctx, TRANSCRIPTS.value(), job.entity_ref)}
    sources = {name: text for name, (text, _, _) in read.items() if text and text.strip()}
    if not sources:
        return Outcome(SKIPPED, "no text to describe (no ocr or transcribe text for this asset)")
    budget = MAX_TOKENS.int_value(minimum=ANSWER_TOKENS + OVERHEAD_TOKENS + 100)
    text, was_cut = rules.cut("\n\n".join(sources.values()), (budget - ANSWER_TOKENS - OVERHEAD_TOKENS) * CHARS_PER_TOKEN)
    max_chars = MAX_CHARS.int_value(minimum=100)
    nonce = rules.new_nonce()
    system = rules.system_message(PROMPT.value() or rules.DEFAULT_PROMPT, language, max_chars, nonce)
    user = rules.user_message(str(snap.get("title") or ""), text, nonce)
    record = {"ref": job.entity_ref, "draftId": rules.new_draft_id(),   # which draft a review saw (console)
              "title": snap.get("title") or "", "description": snap.get("description") or "",
              "sources": sorted(sources), "inputCut": was_cut,
              # ocr and transcribe fall back to the preservation file: its text may say what the public access
              # copy withholds (a redaction); the console tells the reviewer, who decides what goes public.
              "fromPreservation": sorted(n for n in sources if read[n][1] == "Preservation"),
              # likewise an access file closed on its own under this asset (its tag when ocr/transcribe read it)
              "fromClosed": sorted(n for n in sources if read[n][2]),
              "provenance": {"service": "Azure OpenAI", "deployment": DEPLOYMENT.value(),
                             "apiVersion": API_VERSION.value(), "promptSha256": rules.prompt_hash(system, nonce),
                             "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    answer, why = _ask(ctx, system, user)
    if answer is not None:
        record["provenance"].update(model=answer.model, promptTokens=answer.prompt_tokens,
                                    completionTokens=answer.completion_tokens)
        why = ("the content filter refused the answer" if answer.finish_reason == "content_filter" else
               "the answer was cut at the token bound" if answer.finish_reason == "length" else
               _refusal(rules.check(answer.text, max_chars, language, nonce)))
        record["draft" if why is None else "rejectedText"] = answer.text.strip()[:max_chars * 2]
    record.update(status="pending" if why is None else "failed", reason=why or "")
    try:   # over the record as it was read: a review meanwhile (the console's claim, its ETag) wins
        ctx.storage.put_blob(CONTAINER.value(), f"{job.entity_ref}.json", json.dumps(record).encode(),
                             "application/json", {"ref": job.entity_ref, "status": record["status"]}, etag=etag)
    except Conflict:
        return Outcome(SKIPPED, "its draft changed while this one was made (reviewed, or drafted again): not replaced")
    extra = {"describe_status": record["status"], "describe_sources": ",".join(sorted(sources)),
             "describe_tokens": sum(record["provenance"].get(k, 0) for k in ("promptTokens", "completionTokens")),
             "describe_blob": f"{CONTAINER.value()}/{job.entity_ref}.json"}
    if why:
        return Outcome(SKIPPED, clip(f"draft not kept: {why}", 300), extra)
    return Outcome(DONE, "", extra)


def _refusal(reason: str | None) -> str | None:
    return None if reason is None else f"refused by the checks ({reason})"


def _ask(ctx: Context, system: str, user: str):
    """(answer, None), or (None, why) when the content filter refused the prompt."""
    from ..clients import aoai
    chat = aoai.client(ENDPOINT.value(), API_VERSION.value(), ctx.secret(KEY))
    for attempt in (1, 2):
        try:
            return aoai.complete(chat, DEPLOYMENT.value(), system, user, ANSWER_TOKENS), None
        except aoai.ChatBusy as exc:
            wait = retry.wait_once(attempt, exc.retry_after, MAX_WAIT)
            if wait is None:
                raise
            _sleep(wait)
        except aoai.ChatFiltered as exc:
            return None, str(exc)
    raise AssertionError  # unreachable


def _kept(ctx: Context, ref: str) -> tuple[str | None, str]:
    """The status of the draft record there is (its metadata, as describe and the console write it) and its
    ETag; (None, "") when there is none."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        props = ctx.storage.blob_service().get_blob_client(CONTAINER.value(), f"{ref}.json").get_blob_properties()
    except ResourceNotFoundError:
        return None, ""
    return (props.metadata or {}).get("status"), props.etag


def _text(ctx: Context, container: str, ref: str) -> tuple[str | None, str | None, bool]:
    """(`<ref>.txt` from a container or None, the representation it was read from as its blob metadata says:
    ocr's `representation`, transcribe's `source_representation`, and whether a file read was not public:
    `source_closed`); read with a bound."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    try:
        blob = ctx.storage.blob_service().get_blob_client(container, f"{ref}.txt").download_blob(offset=0, length=4_000_000)
        md = blob.properties.metadata or {}
        return (blob.readall().decode("utf-8", "replace"), md.get("representation") or md.get("source_representation"),
                md.get("source_closed") == "true")
    except ResourceNotFoundError:
        return None, None, False
    except HttpResponseError as exc:
        if exc.status_code == 416:   # an empty blob has no range to read (a silent recording, a blank page)
            return None, None, False
        raise


ACTION = Action(name="describe", perform=perform,
                settings=(ENDPOINT, KEY.local, API_VERSION, DEPLOYMENT, PROMPT, LANGUAGE, MAX_CHARS, MAX_TOKENS,
                          CONTAINER, WRITE, SCHEMA),
                required=(ENDPOINT, DEPLOYMENT), secrets=(), preservica=NEEDS, reads=READS, repeatable=False,
                entities=("asset",), gone=Outcome(SKIPPED, "not found"), batch_size=1,
                after=("ocr", "transcribe"))   # the texts it reads: waited for where routed for the event
