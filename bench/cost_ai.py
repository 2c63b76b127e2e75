"""Row 10's AI lines: the Document Intelligence and Azure OpenAI doubles for the cost run, and the pages and
tokens each run used, read from what the app recorded (not from the doubles' scripts).

Pages: `ocr` keeps each asset's text as `<ref>.txt` in OCR_CONTAINER with its provenance as blob metadata,
`pages` the number of pages the read model returned (handlers/core/ocr.py Reading.provenance); the service
bills analysed pages (learn.microsoft.com, Document Intelligence "Service quotas and limits", Billing: each
image is one page, each PDF page one page). Tokens: `describe` keeps `<ref>.json` in DESCRIBE_CONTAINER with
`provenance.promptTokens` and `completionTokens`, the `usage` the chat completions response reported; Azure
OpenAI bills input and output tokens separately. Read after the run's storage count is taken, so these reads
are not charged to the configuration.
"""
from __future__ import annotations

import json

DEPLOYMENT = "describe-cost"
KEYS = {"DOCINTEL_KEY": "cost-docintel-key", "OPENAI_KEY": "cost-openai-key"}
# One typed page of an archive letter (~1,700 characters, ~300 words): what the read model returns for each
# scanned sheet, and so what `describe` sends. Synthetic: the measured tokens follow its length.
PAGE = [
    "Harbour Office, 14 March 1921.",
    "Dear Sir, I beg to acknowledge your letter of the 9th instant concerning the condition of the",
    "north harbour wall after the gales of February. The Board's engineer inspected the wall on the",
    "11th and reports that some forty feet of the parapet between the lighthouse steps and the coal",
    "staithes has been undermined, and that two courses of the facing stones have fallen into the",
    "channel. He advises that the breach be closed with timber before the spring tides, and that the",
    "masonry be rebuilt in the summer when the weather allows the divers to work for longer hours.",
    "The Board will consider his estimate of four hundred and twenty pounds at its meeting on the",
    "28th, and I am instructed to ask whether the Fishermen's Association would contribute towards the",
    "cost, since the boats that land at the staithes would gain most from the repair. I enclose a copy",
    "of the engineer's report and a sketch of the damaged section for the information of your members.",
    "I am, Sir, your obedient servant, J. Pritchard, Clerk to the Harbour Board.",
]
# A draft of the length the default prompt asks for (two short paragraphs; DESCRIBE_MAX_CHARS is 1,500).
ANSWER = (
    "Letter of 14 March 1921 from J. Pritchard, Clerk to the Harbour Board, acknowledging a letter about the "
    "north harbour wall after the February gales. It reports the Board engineer's inspection on 11 March: about "
    "forty feet of parapet between the lighthouse steps and the coal staithes undermined, and two courses of "
    "facing stones fallen into the channel.\n\n"
    "The engineer advises a timber closure before the spring tides and rebuilding the masonry in summer, at an "
    "estimated cost of four hundred and twenty pounds. The Board asks whether the Fishermen's Association will "
    "contribute. The engineer's report and a sketch of the damaged section were enclosed.")


def enter_doubles(enter, ca) -> dict:
    """Start both doubles on the shared CA (`enter`: an ExitStack's enter_context); the app's settings."""
    from hookops.doubles.chat import ChatDouble
    from hookops.doubles.docintel import DocIntelDouble
    docintel = enter(DocIntelDouble(key=KEYS["DOCINTEL_KEY"], ca=ca))
    docintel.set_pages([PAGE], confidence=0.97)
    chat = enter(ChatDouble(key=KEYS["OPENAI_KEY"], ca=ca))
    chat.answer = ANSWER
    return {"DOCINTEL_ENDPOINT": docintel.endpoint, "OPENAI_ENDPOINT": chat.endpoint,
            "DESCRIBE_DEPLOYMENT": DEPLOYMENT, **KEYS,
            # the openai package's httpx client trusts SSL_CERT_FILE; azure-core's requests REQUESTS_CA_BUNDLE
            "SSL_CERT_FILE": chat.ca_bundle}


def measure(conn: str, refs: list[str]) -> dict:
    """Pages OCR'd and prompt and completion tokens over `refs`, from the app's records of this run."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    from handlers.actions import describe
    from handlers.core import settings
    service = BlobServiceClient.from_connection_string(conn)
    ocr = service.get_container_client(settings.get("OCR_CONTAINER"))
    drafts = service.get_container_client(describe.CONTAINER.value())
    out = {"ocr_assets": 0, "ocr_pages": 0, "described_assets": 0, "prompt_tokens": 0, "completion_tokens": 0}
    for ref in refs:
        try:
            meta = ocr.get_blob_client(f"{ref}.txt").get_blob_properties().metadata
            out["ocr_assets"] += 1
            out["ocr_pages"] += int(meta["pages"])
        except ResourceNotFoundError:
            pass
        try:
            record = json.loads(drafts.get_blob_client(f"{ref}.json").download_blob().readall())
        except ResourceNotFoundError:
            continue
        used = record.get("provenance", {})
        if "promptTokens" in used:
            out["described_assets"] += 1
            out["prompt_tokens"] += int(used["promptTokens"])
            out["completion_tokens"] += int(used.get("completionTokens", 0))
    return out
