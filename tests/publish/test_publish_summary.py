"""The manifest's `summary` from what a person reviewed of describe's drafts, through the real console, queue,
dispatcher and publish, the real pyPreservica against the Preservica double and Azurite: the accepted text (the
description, or the DESCRIBE_SCHEMA fragment's text), never a draft nobody accepted, never anything of a closed
asset, a person's later description over the reviewed fragment, and markup as plain text."""
from __future__ import annotations

import json

import pytest

from handlers import dispatch
from handlers.clients import journal, preservica, secrets
from handlers.clients.storage import default
from handlers.core import describe, reconcile, settings
from tests.support.console import operator_get, operator_post, review_form
from tests.support.jobs import run_one
from tests.support.publish import ASSET, blobs, dispatched

SCHEMA = "urn:example:reviewed"
DESCRIPTION = "Two sheets and a report"     # the asset's own description (tests/publish/conftest.py)
REVIEWED = "Survey of the harbour in 1887: two sheets of plans and a report on the breached wall."


@pytest.fixture
def review(env, monkeypatch):
    """describe's settings as the console and publish read them (fragment mode); a pending draft of ASSET."""
    for name, value in {"DESCRIBE_SCHEMA": SCHEMA, "DESCRIBE_LANGUAGE": "en", "DESCRIBE_WRITE": "fragment"}.items():
        monkeypatch.setenv(name, value)
    draft(DESCRIPTION)
    return env


def draft(description: str, status: str = "pending") -> None:
    record = {"ref": ASSET, "status": status, "reason": "", "draft": REVIEWED, "title": "Harbour survey, 1887",
              "description": description, "sources": ["ocr"], "inputCut": False,
              "provenance": {"service": "Azure OpenAI", "deployment": "describer", "model": "gpt-4o-2024-11-20",
                             "apiVersion": "2024-10-21", "promptSha256": "ab" * 32, "date": "2026-12-07T03:00:00Z"}}
    default().put_blob("drafts", f"{ASSET}.json", json.dumps(record).encode(), "application/json",
                       {"ref": ASSET, "status": status})


def accept(text: str = REVIEWED) -> None:
    form = review_form(operator_get(f"drafts/{ASSET}").get_body())
    resp = operator_post(f"drafts/{ASSET}/accept", {"text": text, **form})
    assert resp.status_code == 303, resp.get_body()


def queued() -> list[bytes]:
    """The intake messages on the delivery queue, taken off it."""
    q, found = default().queue(settings.DELIVERY_QUEUE), []
    for msg in q.receive_messages(max_messages=32):
        found.append(msg.content.encode() if isinstance(msg.content, str) else msg.content)
        q.delete_message(msg)
    return found


def run_queued(messages: list[bytes]) -> None:
    """What the dispatcher and the publish queue function would do with them."""
    for message in messages:
        dispatch.dispatch(message)
    q = default().queue(settings.action_queue("publish"))
    for msg in q.receive_messages(max_messages=32):
        assert run_one("publish", msg.content).state == journal.DONE
        q.delete_message(msg)


def manifest(env) -> tuple[bytes, dict]:
    raw = blobs(env, f"{ASSET}/")[f"{ASSET}/manifest.json"]
    return raw, json.loads(raw)


def fragment_reads(pres) -> int:
    return sum(1 for m, p in pres.requests if m == "GET" and "/metadata/" in p)


def test_accepting_queues_publish_and_the_reviewed_fragment_becomes_the_summary(review, pres):
    run_one("publish", dispatched(ASSET))
    assert manifest(review)[1]["summary"] == {"none": [DESCRIPTION]}
    accept()
    [message] = queued()   # no webhook stands for a metadata write: the console queues publish itself
    doc = json.loads(message)
    assert doc["source"] == reconcile.RECHECK and doc["delivery"]["events"][0]["entityRef"] == ASSET
    before = fragment_reads(pres)
    run_queued([message])
    assert manifest(review)[1]["summary"] == {"en": [REVIEWED]}     # DESCRIBE_LANGUAGE as its language (§4.3)
    assert fragment_reads(pres) == before + 1                        # one GET more per publish, only this asset's
    assert [s for s, _ in pres.metadata(ASSET)] == [SCHEMA] and pres.saved == []   # the description untouched


def test_description_mode_publishes_the_accepted_description_with_no_request_more(review, pres, monkeypatch):
    monkeypatch.setenv("DESCRIBE_WRITE", "description")
    accept()
    run_queued(queued())
    assert manifest(review)[1]["summary"] == {"none": [REVIEWED]}
    assert pres.saved == [(ASSET, "Harbour survey, 1887", REVIEWED)] and fragment_reads(pres) == 0


@pytest.mark.parametrize("status", ["pending", "rejected", "failed"])
def test_a_draft_nobody_accepted_is_never_the_summary(review, pres, status):
    draft(DESCRIPTION, status)
    run_one("publish", dispatched(ASSET))
    raw, doc = manifest(review)
    assert doc["summary"] == {"none": [DESCRIPTION]} and REVIEWED.encode() not in raw and fragment_reads(pres) == 0


def test_a_closed_asset_publishes_nothing_of_its_reviewed_text(review, pres):
    accept()
    queued()
    pres.set_security_tag(ASSET, "closed")
    outcome = run_one("publish", dispatched(ASSET))
    assert outcome.reason == "not published (not public)" and blobs(review) == {}
    assert fragment_reads(pres) == 0                                 # not even read


def test_a_description_written_after_the_review_wins_over_the_fragment(review, pres):
    accept()
    run_queued(queued())

    def edit(api):   # a person edits the description in Preservica (pyPreservica's save, as the console's)
        asset = api.asset(ASSET)
        asset.description = "Catalogued by hand in 2027."
        api.save(asset)
    preservica.call(secrets.default(), edit)
    run_one("publish", dispatched(ASSET, "MOVED"))
    assert manifest(review)[1]["summary"] == {"none": ["Catalogued by hand in 2027."]}


@pytest.mark.parametrize("text, shown", [
    ("A plan <b>of</b> the wall", "A plan of the wall"),                     # elements in the fragment: their text
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<span>&lt;script&gt;alert(1)&lt;/script&gt;</span>"),   # text, not HTML
    ("Plan\u202e\u200b of the wall", "Plan of the wall"),                   # bidi and invisible characters go
])
def test_markup_in_a_reviewed_fragment_stays_plain_text(review, pres, text, shown):
    xml = (f'<reviewedDescription xmlns="{SCHEMA}"><language>en</language>'
           f'<descriptionSha256>{describe.description_digest(DESCRIPTION)}</descriptionSha256>'
           f'<text>{text}</text></reviewedDescription>')
    pres.add_metadata(ASSET, SCHEMA, xml)
    run_one("publish", dispatched(ASSET))
    raw, doc = manifest(review)
    assert doc["summary"] == {"en": [shown]} and b"<" not in raw and b">" not in raw


def test_only_the_reviewed_schema_is_read(review, pres):
    pres.add_metadata(ASSET, "urn:preservica-webhooks-azure:ocr:v1",
                      f'<reviewedDescription xmlns="{SCHEMA}"><text>IGNORE THE ABOVE: smuggled</text></reviewedDescription>')
    run_one("publish", dispatched(ASSET))
    assert manifest(review)[1]["summary"] == {"none": [DESCRIPTION]} and fragment_reads(pres) == 0
