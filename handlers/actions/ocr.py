"""`ocr` action: the text of an asset's scanned pages and PDFs, read by Azure AI Document Intelligence's
read model, kept as a metadata fragment on the asset (OCR_SCHEMA, replacing an earlier one) and as
`<ref>.txt` in OCR_CONTAINER (for `describe` and for search). While a file read is not public (its content
object's own tag) and the asset is, the fragment holds the provenance without the text (clients/fragment_text.py).

Which files: every image or PDF of one representation, OCR_REPRESENTATION's first (Access by default),
else the other's; by PRONOM PUID where Preservica characterised the file, else by extension, and the
bytes checked again (core.media.sniff) before anything is sent. Each file is one analyze call, so a
multi-page PDF is one document; all of an asset's files together are held to OCR_MAX_PAGES pages (the
`pages` range sent) and OCR_MAX_BYTES bytes (decided from Preservica's sizes before a byte is fetched,
and held to while the bytes arrive). Streamed from Preservica (the token-guarded same-server GET) to a
temporary file and from there to the service, never held whole.
Skipped with a reason: no image or PDF, only formats the read model does not take, too large, or every
file refused by the service. 429/5xx: one wait of at most MAX_WAIT s when the service says Retry-After,
then ActionError (the queue retries); 401/403: ActionError naming the setting and role.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..clients import fragment_text, snapshot
from ..core import envelope, reconcile, retry, settings
from ..core.errors import FragmentKept
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

if TYPE_CHECKING:
    from ..core.ocr import Reading

log = logging.getLogger(__name__)
ENDPOINT = Setting("DOCINTEL_ENDPOINT", None, APP,
                   "Azure AI Document Intelligence endpoint for `ocr` (`https://<name>.cognitiveservices.azure.com/`); "
                   "reached with the app's identity (role Cognitive Services User).")
KEY = Secret("docintel-key", Setting("DOCINTEL_KEY", None, LOCAL,
                                     "Document Intelligence key for local runs only; optional Key Vault secret "
                                     "`docintel-key`. Unset: the app's identity (the Bicep resource disables keys)."))
REPRESENTATION = Setting("OCR_REPRESENTATION", "Access", APP,
                         "Which representation `ocr` reads first: `Access` or `Preservation` (the other when "
                         "the first has no image or PDF).")
MAX_PAGES = Setting("OCR_MAX_PAGES", "100", APP,
                    "Most pages `ocr` reads per asset (all its files together); the rest are left unread "
                    "and the fragment says `truncated`.")
MAX_BYTES = Setting("OCR_MAX_BYTES", "50000000", APP,
                    "Most bytes `ocr` sends per asset; a first file larger than this is `skipped: too large`, "
                    "later files past it are left unread (`truncated`).")
SCHEMA = Setting("OCR_SCHEMA", "urn:preservica-webhooks-azure:ocr:v1", APP,
                 "Schema URI of the OCR text metadata fragment.")
CONTAINER = settings.BY_NAME["OCR_CONTAINER"]   # describe reads the text from there
READS = frozenset({"summary", "visibility"})   # one GET; whether it is public decides a change of access
MAX_WAIT = 30.0
RESULT_WAIT = 300.0   # seconds one file's analysis may take: well inside functionTimeout (10 min)
HEAD = 16             # bytes enough to tell PDF, JPEG, PNG and TIFF apart
_sleep = time.sleep   # replaced in tests, which never wait


@dataclass(frozen=True)
class Page:
    bitstream: object   # pyPreservica Bitstream
    kind: str
    closed: bool = False   # its content object's own tag is not public: describe's reviewer is told
    content_object: str = ""


def perform(job: Job, ctx: Context) -> Outcome:
    if not envelope.is_ref(job.entity_ref):  # it names a blob: only a Preservica reference may
        return Outcome(SKIPPED, "not a Preservica reference")
    if job.trigger in reconcile.ALWAYS or job.entity_type == "CO":   # access changed: no page is read again
        return _changed(job, ctx)
    first = (REPRESENTATION.value() or "Access").strip().capitalize()
    if first not in ("Access", "Preservation"):
        raise ActionError("OCR_REPRESENTATION must be Access or Preservation")
    asset = snapshot.entity("IO", job.entity_ref, ctx.snapshot(job, READS))   # NotFound: the runner's `gone`
    found = ctx.preservica(lambda api: choose(api, asset, first))
    if isinstance(found, Outcome):
        return found
    rep, files = found
    return _read_all(ctx, job, rep, files)


def _changed(job: Job, ctx: Context) -> Outcome:
    """A security or visibility change of the asset, or of a file under it: its fragment's text withheld when a
    file it was read from is not public and the asset is (clients/fragment_text.py)."""
    if job.entity_type == "CO" and job.trigger not in reconcile.ALWAYS:
        return Outcome(SKIPPED, "not an asset")
    done, why = fragment_text.changed(job.entity_type, job.entity_ref, kept(), ctx.storage, ctx.preservica,
                                      lambda: ctx.snapshot(job, READS))
    return Outcome(DONE if done else SKIPPED, why, {"ocr_fragment": "withheld"} if done else {})


def choose(api, asset, first: str) -> tuple[str, list[Page]] | Outcome:
    """The images and PDFs of the first representation that has any (`first`'s type before the other's)."""
    import itertools

    from ..clients import preservica, public_store
    from ..core import ocr
    other = "Preservation" if first == "Access" else "Access"
    unsupported = []
    walk = preservica.files(api, asset, (first, other))   # lazy: stops at the first representation with any
    for (rep_type, _), group in itertools.groupby(walk, key=lambda f: (f.rep_type, f.rep_name)):
        files = []
        for f in group:
            puids = [x.get("PUID") for x in getattr(f.generation, "formats", None) or [] if isinstance(x, dict)]
            kind, image = ocr.kind_of(f.bitstream.filename or "", puids, getattr(f.generation, "format_group", None) or "")
            if kind in ocr.EXTENSIONS:
                files.append(Page(f.bitstream, kind, not public_store.is_public(f.security_tag, False),
                                  f.content_object))
            elif image:
                unsupported.append(kind or "no extension")
        if files:
            return rep_type, files
    if unsupported:
        return Outcome(SKIPPED, f"unsupported format ({', '.join(sorted(set(unsupported)))[:100]})")
    return Outcome(SKIPPED, "no image or PDF")


def _read_all(ctx: Context, job: Job, rep: str, files: list[Page]) -> Outcome:
    from ..clients import docintel
    from ..core import ocr
    max_pages, max_bytes = MAX_PAGES.int_value(minimum=1), MAX_BYTES.int_value(minimum=1)
    if files[0].bitstream.length > max_bytes:
        return Outcome(SKIPPED, f"too large ({files[0].bitstream.length} bytes > {max_bytes})",
                       {"ocr_source": clip(files[0].bitstream.filename or "?", 200)})
    client = docintel.client(ENDPOINT.value(), ctx.secret(KEY))
    reading, refused, sent, truncated, read = ocr.Reading(), [], 0, False, []
    with tempfile.TemporaryDirectory(prefix="ocr-") as tmp:
        for page in files:
            if reading.pages >= max_pages or sent + page.bitstream.length > max_bytes:
                truncated = True
                break
            read.append(page)
            path = os.path.join(tmp, "document")
            why = _fetch(ctx, page, path, max_bytes - sent)
            if why is None:
                why = _read(client, path, max_pages - reading.pages, reading, page)
            sent += page.bitstream.length
            if why:
                refused.append(why)
    name = files[0].bitstream.filename or "?"
    if not reading.sources:
        return Outcome(SKIPPED, clip("; ".join(dict.fromkeys(refused)), 300), {"ocr_source": clip(name, 200)})
    return _keep(ctx, job, rep, reading, truncated, refused, read)


def _fetch(ctx: Context, page: Page, path: str, limit: int) -> str | None:
    """The bitstream into `path`, never more than `limit` bytes and exactly the length Preservica lists;
    a reason when it is not a type the read model takes (the bytes decide, not the name)."""
    from ..clients import preservica
    from ..core import media, ocr
    with open(path, "wb") as out:
        try:
            got = ctx.preservica(lambda api: preservica.download(api, page.bitstream.content_url, out, limit))
        except preservica.TooLarge:
            return f"too large (more than {limit} bytes arrived)"
    if got != page.bitstream.length:
        raise ActionError(f"Preservica sent {got} bytes where it lists {page.bitstream.length}; the queue retries")
    with open(path, "rb") as f:
        content_type, _ = media.sniff(f.read(HEAD))
    return None if content_type in ocr.READABLE else f"not an image or PDF the read model takes ({page.kind})"


def _read(client, path: str, pages: int, reading: Reading, page: Page) -> str | None:
    """One file through the read model into `reading`; a reason when the service will not read it."""
    from ..clients import docintel
    for attempt in (1, 2):
        try:
            with open(path, "rb") as document:
                result = docintel.read(client, document, pages, RESULT_WAIT)
            reading.add(page.bitstream.filename or "?", result)
            return None
        except docintel.DocIntelBusy as exc:
            wait = retry.wait_once(attempt, exc.retry_after, MAX_WAIT)
            if wait is None:
                raise  # the queue retries after its visibility timeout
            _sleep(wait)
        except docintel.DocIntelRejected as exc:
            return str(exc)
    raise AssertionError  # unreachable


def _keep(ctx: Context, job: Job, rep: str, reading: Reading, truncated: bool, refused: list[str],
          read: list[Page]) -> Outcome:
    from ..core import ocr
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    provenance = reading.provenance(date, truncated)
    text = reading.text
    closed = any(p.closed for p in read)
    # Blob metadata: ours or checked tokens only (ASCII); the file names stay in the fragment. The content
    # objects read: a later change of access checks their tags now (clients/fragment_text.py).
    ctx.storage.put_blob(CONTAINER.value(), f"{job.entity_ref}.txt", text.encode(), "text/plain; charset=utf-8",
                         {"ref": job.entity_ref, "representation": rep, "source_closed": str(closed).lower(),
                          "source_content_objects": fragment_text.sources([p.content_object for p in read]),
                          **provenance})
    xml = ocr.fragment(SCHEMA.value(), reading, provenance)
    blob = {"ocr_blob": f"{CONTAINER.value()}/{job.entity_ref}.txt"}
    try:
        how, bare = fragment_text.write(ctx.storage, ctx.secrets, job.entity_ref, kept(), xml, closed)
    except FragmentKept as exc:   # a person's correction stays; the new text is in the blob
        return Outcome(SKIPPED, str(exc), {**blob, "ocr_fragment": "kept"})
    extra = {"ocr_pages": reading.pages, "ocr_characters": len(text), "ocr_representation": rep,
             "ocr_meanConfidence": provenance["meanConfidence"], "ocr_truncated": truncated,
             "ocr_files": len(reading.sources), **blob, "ocr_fragment": how}
    if bare:   # a closed file's text on an open asset: in the blob only
        extra["ocr_withheld"] = True
    if refused:
        extra["ocr_unread"] = clip("; ".join(dict.fromkeys(refused)), 300)
    return Outcome(DONE, "", extra)


def kept() -> fragment_text.Kept:
    """Where the text is kept, and what of the fragment carries a file's text or name (withheld while a file
    read is not public and the asset is: clients/fragment_text.py)."""
    return fragment_text.Kept(CONTAINER.value(), (".txt",), "source_content_objects", SCHEMA.value(), "ocr",
                              ("text", "textTruncated", "source"), "service")


ACTION = Action(name="ocr", perform=perform,
                settings=(ENDPOINT, KEY.local, REPRESENTATION, MAX_PAGES, MAX_BYTES, SCHEMA, CONTAINER),
                required=(ENDPOINT,), secrets=(), preservica=NEEDS, reads=READS, repeatable=False,
                entities=("asset", "content object"), gone=Outcome(SKIPPED, "not found"),
                batch_size=1)  # one asset per message: up to minutes of analysis, within functionTimeout
