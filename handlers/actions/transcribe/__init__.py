"""`transcribe` action: speech in an asset's audio or video, transcribed with Azure AI Speech (fast
transcription), kept as captions and text in Blob and as a metadata fragment on the asset.

Which file: the access representation's bitstreams first (smaller, playable), else the preservation
representation's; audio or video by PRONOM PUID or format group where Preservica characterised it,
else by extension. The first one Speech reads is used; AV that Speech cannot read is `skipped:
unsupported format`. Larger than TRANSCRIBE_MAX_BYTES (default: the fast API's 250 MB): `skipped:
too large`, decided from Preservica's file size before any byte is fetched (see docs/actions.md: why not batch),
and held to while it arrives: the download counts bytes and stops at the limit.
The file is streamed from Preservica to a temporary file and from there to Speech, never held whole;
at most TRANSCRIBE_CONCURRENCY of these run at once in an instance (temporary disk, Speech calls).
Writes `<ref>.txt` and `<ref>.vtt` to TRANSCRIBE_CONTAINER, each with metadata naming the
representation, content object and fixity transcribed (core.transcript.source_metadata: publish
attaches captions only to that very file), and the TRANSCRIPT_SCHEMA fragment (replacing an earlier
one, never a second; without the text while the file is not public and the asset is: clients/fragment_text.py).
A retry whose transcript is already there for the same file and fixity writes only the fragment: Speech is
paid once. Speech 429/5xx: one wait of at most MAX_WAIT s when the
service says Retry-After, then ActionError (the queue retries); 401/403: ActionError naming the
setting and role; a file the service refuses: `skipped`. No key or token is logged or recorded.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import TYPE_CHECKING

from ...clients import fragment_text, journal, snapshot
from ...clients.shared import Shared
from ...clients.slots import Slots
from ...core import envelope, reconcile, retry, settings  # core.transcript is imported where used: not at cold start
from ...core.errors import FragmentKept
from ...pipeline.contract import (
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
)
from .formats import SUPPORTED, Media, kind_of

if TYPE_CHECKING:  # annotations only
    from ...core import transcript

log = logging.getLogger(__name__)
ENDPOINT = Setting("SPEECH_ENDPOINT", None, APP,
                   "Azure AI Speech endpoint for `transcribe` (`https://<name>.cognitiveservices.azure.com/`); "
                   "reached with the app's identity (role Cognitive Services Speech User).")
KEY = Secret("speech-key", Setting("SPEECH_KEY", None, LOCAL,
                                   "Speech key for local runs only; optional Key Vault secret `speech-key`. "
                                   "Unset: the app's identity (the Bicep resource disables keys)."))
LOCALES = Setting("TRANSCRIBE_LOCALES", None, APP,
                  "Candidate locales, e.g. `en-US,cy-GB` (more than one: language identification; "
                  "unset: the service detects the language).")
# 250 MB and 2 hours: azure-ai-transcription models/_models.py (TranscriptionContent.audio, API 2025-10-15); the
# Speech quotas page has said 200 MB (2024) and 500 MB / 5 hours since: a file the service refuses is skipped.
MAX_BYTES = Setting("TRANSCRIBE_MAX_BYTES", "250000000", APP,
                    "Largest file `transcribe` sends (the fast API takes up to 250 MB and 2 hours); "
                    "larger: `skipped: too large`.")
SCHEMA = Setting("TRANSCRIPT_SCHEMA", "urn:preservica-webhooks-azure:transcript:v1", APP,
                 "Schema URI of the transcript metadata fragment.")
CONTAINER = settings.BY_NAME["TRANSCRIBE_CONTAINER"]   # publish reads captions from there too
CONCURRENCY = Setting("TRANSCRIBE_CONCURRENCY", "2", APP,
                      "Transcriptions one instance runs at once; each holds up to TRANSCRIBE_MAX_BYTES of "
                      "temporary disk and one Speech call. Others wait (up to 4 minutes, then the queue retries).")
READS = frozenset({"summary", "visibility"})  # deleted since the event? public? (one GET; fragments read again to write)
MAX_WAIT = 30.0
SLOT_WAIT = 240.0   # seconds a transcription waits for a slot: well inside functionTimeout (10 min)
_sleep = time.sleep  # replaced in tests, which never wait


def perform(job: Job, ctx: Context) -> Outcome:
    if not envelope.is_ref(job.entity_ref):  # it names blobs: only a Preservica reference may
        return Outcome(SKIPPED, "not a Preservica reference")
    if job.trigger in reconcile.ALWAYS or job.entity_type == "CO":   # access changed: nothing is transcribed again
        return _changed(job, ctx)
    locales = _locales()
    limit = MAX_BYTES.int_value(minimum=1)
    asset = snapshot.entity("IO", job.entity_ref, ctx.snapshot(job, READS))
    found = ctx.preservica(lambda api: choose(api, asset))
    if isinstance(found, Outcome):
        return found
    if found.bitstream.length > limit:
        return Outcome(SKIPPED, f"too large ({found.bitstream.length} bytes > {limit})",
                       {"transcribe_source": journal.clip(found.name, 200)})
    kept = _kept(ctx, job, found, locales)
    if kept is not None:   # a retry after the fragment write failed: Speech is not paid twice
        return _finish(ctx, job, found, *kept, {"transcribe_reused": True})
    with _slots.get().held(), tempfile.TemporaryDirectory(prefix="transcribe-") as tmp:
        path = os.path.join(tmp, "media")
        result = _fetch(ctx, found, path, limit)
        if result is None:
            result = _transcribe(ctx, path, SUPPORTED[found.kind], locales)
    if isinstance(result, Outcome):
        return result
    return _keep(ctx, job, found, result, locales)


def _changed(job: Job, ctx: Context) -> Outcome:
    """A security or visibility change of the asset, or of its recording: the fragment's text withheld when the
    file is not public and the asset is (clients/fragment_text.py)."""
    if job.entity_type == "CO" and job.trigger not in reconcile.ALWAYS:
        return Outcome(SKIPPED, "not an asset")
    done, why = fragment_text.changed(job.entity_type, job.entity_ref, kept(), ctx.storage, ctx.preservica,
                                      lambda: ctx.snapshot(job, READS))
    return Outcome(DONE if done else SKIPPED, why, {"transcribe_fragment": "withheld"} if done else {})


def _locales() -> list[str]:
    from ...core import transcript
    values = [v.strip() for v in (LOCALES.value() or "").split(",") if v.strip()]
    bad = [v for v in values if not transcript.is_locale(v)]
    if bad:
        raise ActionError("TRANSCRIBE_LOCALES must be locales such as en-US,cy-GB, separated by commas")
    return values


# ---- which file ------------------------------------------------------------------------------

def choose(api, asset) -> Media | Outcome:
    """The first audio or video file Speech reads, access representation first; or why there is none."""
    from ...clients import preservica, public_store
    unsupported = []
    for f in preservica.files(api, asset, ("Access", "Preservation")):
        kind, av = kind_of(f.bitstream.filename, f.generation)
        if av and kind in SUPPORTED:
            return Media(f.bitstream, kind, f.rep_type, f.content_object,
                         not public_store.is_public(f.security_tag, False))
        if av:
            unsupported.append(kind or "no extension")
    if unsupported:
        return Outcome(SKIPPED, f"unsupported format ({', '.join(sorted(set(unsupported)))[:100]})")
    return Outcome(SKIPPED, "no audio or video")


# ---- the file, on temporary disk, one of TRANSCRIBE_CONCURRENCY at a time ---------------------------

_slots = Shared(lambda: Slots(CONCURRENCY.int_value(minimum=1), SLOT_WAIT, CONCURRENCY.name),
                key=lambda: CONCURRENCY.value())


def _fetch(ctx: Context, media: Media, path: str, limit: int) -> Outcome | None:
    """The bitstream into `path` through the same-server GET, counting bytes: never more than `limit`
    on disk, and exactly the length Preservica lists, or no transcription. A connection that breaks
    off fails the attempt (the queue retries from byte 0, into a new file)."""
    from ...clients import preservica
    with open(path, "wb") as out:
        try:
            got = ctx.preservica(lambda api: preservica.download(api, media.bitstream.content_url, out, limit))
        except preservica.TooLarge:
            return Outcome(SKIPPED, f"too large (more than {limit} bytes arrived)",
                           {"transcribe_source": journal.clip(media.name, 200)})
    if got != media.bitstream.length:
        raise ActionError(f"Preservica sent {got} bytes where it lists {media.bitstream.length}; the queue retries")
    return None


# ---- Speech ----------------------------------------------------------------------------------

def _transcribe(ctx: Context, path: str, content_type: str, locales: list[str]) -> dict | Outcome:
    from ...clients import speech
    client = speech.client(ENDPOINT.value(), ctx.secret(KEY))
    for attempt in (1, 2):
        try:
            with open(path, "rb") as media:
                return speech.transcribe(client, media, content_type, locales)
        except speech.SpeechBusy as exc:
            wait = retry.wait_once(attempt, exc.retry_after, MAX_WAIT)
            if wait is None:
                raise  # the queue retries after its visibility timeout
            _sleep(wait)
        except speech.SpeechRejected as exc:
            return Outcome(SKIPPED, str(exc))
    raise AssertionError  # unreachable


def phrases(result: dict) -> list[transcript.Phrase]:
    from ...core import transcript
    found = []
    for p in result.get("phrases") or []:
        if isinstance(p, dict) and isinstance(p.get("text"), str):
            found.append(transcript.Phrase(_int(p.get("offsetMilliseconds")), _int(p.get("durationMilliseconds")),
                                           p["text"], str(p.get("locale") or "")))
    return found


def _int(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


# ---- what it keeps ---------------------------------------------------------------------------

def _keep(ctx: Context, job: Job, media: Media, result: dict, locales: list[str]) -> Outcome:
    from ...core import transcript
    said = phrases(result)
    text = transcript.plain_text(said)
    lang = transcript.language(said, locales)
    duration = _int(result.get("durationMilliseconds"))
    container, ref = CONTAINER.value(), job.entity_ref
    # All checked or ours: a UUID, a locale, digits, the source record. The .vtt last: its metadata says both are whole.
    meta = {"ref": ref, "language": lang, "duration_ms": str(duration), "locales": ",".join(locales), **_source(media),
            "source_closed": str(media.closed).lower()}
    ctx.storage.put_blob(container, f"{ref}.txt", text.encode(), "text/plain; charset=utf-8", meta)
    ctx.storage.put_blob(container, f"{ref}.vtt", transcript.webvtt(said).encode(), "text/vtt; charset=utf-8", meta)
    return _finish(ctx, job, media, text, lang, duration, {})


def _finish(ctx: Context, job: Job, media: Media, text: str, lang: str, duration: int, extra: dict) -> Outcome:
    from ...core import transcript
    xml = transcript.fragment(SCHEMA.value(), text, lang, media.name, duration)
    # A closed file's text on an open asset goes in the blobs only (clients/fragment_text.py).
    try:
        how, bare = fragment_text.write(ctx.storage, ctx.secrets, job.entity_ref, kept(), xml, media.closed)
    except FragmentKept as exc:   # a person's correction stays; the new transcript is in the blobs
        return Outcome(SKIPPED, str(exc), {"transcribe_blob": f"{CONTAINER.value()}/{job.entity_ref}.vtt",
                                           "transcribe_fragment": "kept", **extra})
    return Outcome(DONE, "", {"transcribe_language": lang, "transcribe_durationMs": duration,
                                      "transcribe_characters": len(text.strip()),
                                      "transcribe_source": journal.clip(media.name, 200),
                                      "transcribe_representation": media.representation,
                                      "transcribe_blob": f"{CONTAINER.value()}/{job.entity_ref}.vtt",
                                      "transcribe_fragment": how, **({"transcribe_withheld": True} if bare else {}),
                                      **extra})


def kept() -> fragment_text.Kept:
    """Where the transcript is kept, and what of the fragment carries the file's text or name."""
    return fragment_text.Kept(CONTAINER.value(), (".txt", ".vtt"), "source_content_object", SCHEMA.value(),
                              "transcript", ("text", "truncated", "source"), "durationMilliseconds")


def _source(media: Media) -> dict[str, str]:
    """core.transcript.source_metadata, with what Preservica said kept only where blob metadata can hold it
    (ASCII): a value it cannot is recorded empty, which matches nothing (no reuse, no captions in publish)."""
    from ...core import transcript
    co = media.content_object if envelope.is_ref(media.content_object or "") else ""
    fixity = media.bitstream.fixity
    text = transcript.fixity_text(fixity)
    return transcript.source_metadata(media.representation, co,
                                      fixity if text.isascii() and text.isprintable() else None)


def _kept(ctx: Context, job: Job, media: Media, locales: list[str]) -> tuple[str, str, int] | None:
    """(text, language, duration) of a transcript already kept for this very file (content object and fixity),
    made with these locales; None when there is none to reuse."""
    from azure.core.exceptions import ResourceNotFoundError

    from ...core import transcript
    service = ctx.storage.blob_service()
    container, ref = CONTAINER.value(), job.entity_ref
    co, fixity = _source(media)["source_content_object"], media.bitstream.fixity

    def mine(md) -> bool:
        return transcript.same_source(md, co, fixity) and (md or {}).get("locales", "") == ",".join(locales)
    try:
        vtt = service.get_blob_client(container, f"{ref}.vtt").get_blob_properties().metadata
        if not co or not mine(vtt):
            return None
        txt = service.get_blob_client(container, f"{ref}.txt").download_blob()
        if not mine(txt.properties.metadata):
            return None
        text = txt.readall().decode("utf-8", "replace")
    except ResourceNotFoundError:
        return None
    lang = vtt.get("language", "")
    duration = vtt.get("duration_ms", "")
    if not (transcript.is_locale(lang) or lang == "und") or not duration.isdigit():
        return None
    return text, lang, int(duration)


ACTION = Action(name="transcribe", perform=perform,
                settings=(ENDPOINT, KEY.local, LOCALES, MAX_BYTES, SCHEMA, CONTAINER, CONCURRENCY),
                required=(ENDPOINT,), secrets=(), preservica=NEEDS, reads=READS, repeatable=False,
                entities=("asset", "content object"), gone=Outcome(SKIPPED, "not found"),
                batch_size=1)  # one recording per message: minutes each, and a message must end within functionTimeout
