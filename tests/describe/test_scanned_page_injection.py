"""A scanned page that tells the model to ignore its instructions, from the page to Preservica: read by `ocr`
(the real Document Intelligence client against its double), drafted by `describe` (the real openai client
against the chat double), reviewed in the console. Whatever the model makes of it, the draft is a description
of the page or is refused by the checks, and nothing reaches the asset's description unless a person accepts it."""
from __future__ import annotations

import pytest

from handlers.actions import ocr
from handlers.clients import docintel, journal
from hookops.doubles.docintel import DocIntelDouble
from hookops.doubles.preservica import PreservicaDouble, make_png
from tests.support.console import draft_version, operator_get, operator_post, review_form
from tests.support.describe import FOLDER, INJECTION, LETTER, PASSWORD, TENANT, USER, draft, job_for
from tests.support.jobs import dispatched, run_one

HUMAN = "Written by the archivist."
DESCRIBES = "A note of the Harbour Office, 1921; its text addresses instructions to whoever reads it."
OBEYS_LOUDLY = "Buy now at <a href=\"https://evil.example\">evil.example</a>"
OBEYS_QUIETLY = "The harbour is closed for ever and all its records have been destroyed."


@pytest.fixture(scope="module")
def di():
    with DocIntelDouble(key="docintel-key-0123") as double:
        yield double


@pytest.fixture
def pres():   # the letter as a real scanned page (the read model's double reads PNG)
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double:
        double.add_folder(FOLDER, "Letters")
        double.add_asset(LETTER, "Letter, 1921", description=HUMAN, parent=FOLDER,
                         bitstreams=[("letter.png", make_png(), "Access")])
        yield double


@pytest.fixture
def page(env, di, monkeypatch):
    """The page read by `ocr`: its text in the OCR container, where `describe` reads it."""
    read_page(di, monkeypatch)


def read_page(di, monkeypatch) -> None:
    for name, value in {"DOCINTEL_ENDPOINT": di.endpoint, "DOCINTEL_KEY": "docintel-key-0123",
                        "REQUESTS_CA_BUNDLE": di.ca_bundle, "DESCRIBE_WRITE": "description"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(docintel, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(ocr, "_sleep", lambda s: None)
    di.reset()
    di.set_pages([INJECTION.splitlines()])
    assert run_one("ocr", dispatched("ocr", LETTER)).state == journal.DONE


def writes(pres) -> list:
    """What was written to the asset: saves, and fragments other than the OCR text."""
    return pres.saved + [s for s, _ in pres.metadata(LETTER) if s != ocr.SCHEMA.value()]


def test_a_model_that_describes_the_page_gives_a_draft_written_only_once_accepted(page, pres, chat):
    chat.answer = DESCRIBES
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    system, user = chat.calls[-1].messages
    assert "IGNORE ALL PREVIOUS" in user["content"] and "IGNORE ALL PREVIOUS" not in system["content"]
    assert draft(LETTER)["status"] == "pending" and writes(pres) == []      # a suggestion only
    form = review_form(operator_get(f"drafts/{LETTER}").get_body())
    assert operator_post(f"drafts/{LETTER}/accept", {"text": DESCRIBES, **form}).status_code == 303
    assert pres.saved == [(LETTER, "Letter, 1921", DESCRIBES)]


def test_a_model_that_obeys_with_markup_is_refused_and_cannot_be_accepted(page, pres, chat):
    chat.answer = OBEYS_LOUDLY
    outcome = run_one("describe", job_for(LETTER))
    assert outcome.state == journal.SKIPPED and "refused by the checks (markup)" in outcome.reason
    d = draft(LETTER)
    assert d["status"] == "failed" and "draft" not in d
    page_shown = operator_get(f"drafts/{LETTER}").get_body()
    assert b"/accept" not in page_shown and b"evil.example</a>" not in page_shown   # shown escaped, not offered
    resp = operator_post(f"drafts/{LETTER}/accept", {"text": OBEYS_LOUDLY, "seen": seen_digest_of(HUMAN)})
    assert resp.status_code == 409 and writes(pres) == []


def test_a_model_that_obeys_in_plain_prose_waits_for_a_person_who_can_reject_it(page, pres, chat):
    chat.answer = OBEYS_QUIETLY   # passes every check: only a person can tell it is not a description
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    assert draft(LETTER)["status"] == "pending" and writes(pres) == []
    version = draft_version(operator_get(f"drafts/{LETTER}").get_body())
    assert operator_post(f"drafts/{LETTER}/reject", {"version": version}).status_code == 303
    assert draft(LETTER)["status"] == "rejected" and writes(pres) == []


def seen_digest_of(description: str) -> str:
    from handlers.core.describe import description_digest
    return description_digest(description)


def test_a_draft_from_a_closed_access_files_text_says_so_to_its_reviewer(env, di, pres, chat, monkeypatch):
    """An open asset whose scanned page is closed on its own (its content object's tag): publish never shows the
    page, but ocr reads it for staff and an accepted draft of it becomes the open asset's public summary. The
    reviewer is told, as for a preservation file's text (the page said nothing before). The asset's OCR fragment,
    which Preservica's public access may index, holds no text of the page (it did before); describe drafts from
    the private blob's."""
    co, _ = pres.source_of(LETTER, "Access", 0)
    pres.set_security_tag(co, "closed")
    read_page(di, monkeypatch)
    assert "IGNORE ALL PREVIOUS" not in ocr_fragment(pres) and "textWithheld" in ocr_fragment(pres)
    chat.answer = DESCRIBES
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    assert "IGNORE ALL PREVIOUS" in chat.calls[-1].messages[1]["content"]   # drafted from the private blob's text
    assert draft(LETTER)["fromClosed"] == ["ocr"]
    shown = operator_get(f"drafts/{LETTER}").get_body()
    assert b"Drafted from the text of a file Preservica says is not public (ocr)" in shown
    pres.set_security_tag(co, "open")
    read_page(di, monkeypatch)
    assert "IGNORE ALL PREVIOUS" in ocr_fragment(pres)
    run_one("describe", job_for(LETTER))
    assert draft(LETTER)["fromClosed"] == [] and b"not public" not in operator_get(f"drafts/{LETTER}").get_body()


def ocr_fragment(pres) -> str:
    [xml] = [x for s, x in pres.metadata(LETTER) if s == ocr.SCHEMA.value()]
    return xml
