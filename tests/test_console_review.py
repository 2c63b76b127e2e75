"""The console's review of describe's drafts through the real HTTP function: listed beside the asset's current
title and description, accepted (as is or edited) and written once with "machine-drafted, reviewed by" provenance,
rejected and never written, and a description changed since the draft shown as a conflict, not overwritten."""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

from handlers.clients import preservica
from handlers.clients.storage import default
from handlers.console import auth
from hookops.doubles.preservica import PreservicaDouble
from tests.support.console import draft_version, operator_get, operator_post, review_form

USER, PASSWORD, TENANT = "hook-user", "pres-password", "ARCHIVE"
REF = "0d9d4a4e-0000-4000-8000-00000000f001"
SCHEMA = "urn:example:description"
DRAFT = "A letter of 3 May 1921 from the Harbour Office reporting the breached harbour wall."


@pytest.fixture
def pres(app_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double:
        double.add_asset(REF, "Letter, 1921", description="Old note by an archivist.")
        for name, value in {"PRESERVICA_SERVER": double.server, "PRESERVICA_USERNAME": USER,
                            "PRESERVICA_PASSWORD": PASSWORD, "PRESERVICA_TENANT": TENANT, "PRESERVICA_PROTOCOL": "http",
                            "NO_PROXY": "127.0.0.1,localhost", "DESCRIBE_SCHEMA": SCHEMA}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DESCRIBE_WRITE", raising=False)
        preservica.forget_client()
        _draft()
        yield double
        preservica.forget_client()


def _draft(description: str = "Old note by an archivist.", status: str = "pending", text: str = DRAFT,
           model: str = "gpt-4o-2024-11-20", ref: str = REF, draft_id: str | None = None) -> None:
    """A draft record as describe writes it (a record written before describe gave drafts an id has none)."""
    record = {"ref": ref, "status": status, "reason": "", "draft": text, "title": "Letter, 1921",
              "description": description, "sources": ["ocr"], "inputCut": False,
              **({"draftId": draft_id} if draft_id else {}),
              "provenance": {"service": "Azure OpenAI", "deployment": "describer", "model": model,
                             "apiVersion": "2024-10-21", "promptSha256": "ab" * 32, "date": "2026-12-07T03:00:00Z",
                             "promptTokens": 120, "completionTokens": 30}}
    default().put_blob("drafts", f"{ref}.json", json.dumps(record).encode(), "application/json",
                       {"ref": ref, "status": status})


def _record(ref: str = REF) -> dict:
    return json.loads(default().blob_service().get_blob_client("drafts", f"{ref}.json").download_blob().readall())


_get, _post = operator_get, operator_post


def _form(ref: str = REF) -> dict:
    """The accept form's hidden fields as the draft's page gives them now."""
    return review_form(_get(f"drafts/{ref}").get_body())


def test_listed_and_shown_beside_the_current_title_and_description(pres):
    assert REF.encode() in _get("drafts").get_body()
    page = _get(f"drafts/{REF}").get_body()
    assert b"Letter, 1921" in page and b"Old note by an archivist." in page and DRAFT.encode() in page
    assert b"gpt-4o-2024-11-20" in page and b"/accept" in page
    assert b"/accept" not in _get(f"drafts/{REF}", auth.READER).get_body()   # a reader sees, never accepts


def test_accept_edited_writes_once_with_provenance(pres):
    form = _form()
    edited = DRAFT + " Two pages."
    resp = _post(f"drafts/{REF}/accept", {"text": edited, **form})
    assert resp.status_code == 303, resp.get_body()
    assert pres.saved == [(REF, "Letter, 1921", edited)]
    [(schema, xml)] = pres.metadata(REF)
    doc = ET.fromstring(xml)
    ns = {"d": SCHEMA}
    assert schema == SCHEMA and doc.findtext("d:provenance", namespaces=ns) == "machine-drafted, reviewed by archivist@example.org"
    assert doc.findtext("d:edited", namespaces=ns) == "true" and doc.findtext("d:model", namespaces=ns) == "gpt-4o-2024-11-20"
    r = _record()
    assert r["status"] == "accepted" and r["review"]["by"] == "archivist@example.org" and r["review"]["text"] == edited
    again = _post(f"drafts/{REF}/accept", {"text": edited, "seen": hashlib.sha256(edited.encode()).hexdigest(),
                                           "version": form["version"]})
    assert again.status_code == 409 and len(pres.saved) == 1   # written once


def test_fragment_mode_leaves_the_description(pres, monkeypatch):
    monkeypatch.setenv("DESCRIBE_WRITE", "fragment")
    assert _post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()}).status_code == 303
    assert pres.saved == []
    [(_, xml)] = pres.metadata(REF)
    assert ET.fromstring(xml).findtext(f"{{{SCHEMA}}}text") == DRAFT


def test_rejected_is_never_written(pres):
    form = _form()
    assert _post(f"drafts/{REF}/reject", {"version": form["version"]}).status_code == 303
    assert _record()["status"] == "rejected" and pres.saved == [] and pres.metadata(REF) == []
    assert _post(f"drafts/{REF}/accept", {"text": DRAFT, **form}).status_code == 409 and pres.saved == []


def test_a_description_changed_since_the_draft_is_a_conflict(pres):
    _draft(description="What the archivist wrote before.")   # the asset now says something else
    page = _get(f"drafts/{REF}").get_body()
    assert b"changed since this draft was made" in page and b"/accept" not in page
    seen = hashlib.sha256(b"Old note by an archivist.").hexdigest()
    resp = _post(f"drafts/{REF}/accept", {"text": DRAFT, "seen": seen, "version": draft_version(page)})
    assert resp.status_code == 409 and pres.saved == [] and _record()["status"] == "pending"


def test_edited_text_is_checked_and_writes_need_csrf_and_the_operator_role(pres):
    form = _form()
    bad = _post(f"drafts/{REF}/accept", {"text": "See <a href='https://x.example'>here</a>", **form})
    assert bad.status_code == 400 and b"markup" in bad.get_body() and b"&lt;a href" in bad.get_body()
    assert _post(f"drafts/{REF}/accept", {"text": DRAFT, **form}, csrf=False).status_code == 403
    assert _post(f"drafts/{REF}/accept", {"text": DRAFT, **form}, role=auth.READER).status_code == 403
    assert _post(f"drafts/{REF}/reject", form, csrf=False).status_code == 403
    assert pres.saved == [] and _record()["status"] == "pending"


def test_every_decision_is_one_log_line_with_the_reviewer_and_never_the_text(pres, caplog):
    """Refusals were not logged at all, nor were decisions: the draft record kept the accepted ones only."""
    import logging
    form = _form()
    hostile = "See <a href='https://x.example'>here</a>, the closed file's words"
    with caplog.at_level(logging.INFO, logger="handlers.console.review"):
        assert _post(f"drafts/{REF}/accept", {"text": hostile, **form}).status_code == 400
        assert _post(f"drafts/{REF}/accept", {"text": DRAFT + " Two pages.", **form}).status_code == 303
        assert _post(f"drafts/{REF}/reject", {"version": form["version"]}).status_code == 409   # reviewed already
    lines = [r.getMessage() for r in caplog.records if r.name == "handlers.console.review"]
    assert lines == [f"console review of {REF} by oid-1: refused (400): Not written: the text is refused by the "
                     f"checks (markup).",
                     f"console review of {REF} by oid-1: accepted (description, edited)",
                     f"console review of {REF} by oid-1: refused (409): This draft is accepted: it was already "
                     f"reviewed or never passed the checks."], lines
    assert not any("closed file" in x or "Two pages" in x for x in lines)


def test_an_asset_gone_from_preservica_is_a_page_not_an_error(pres):
    pres.remove_asset(REF)
    resp = _get(f"drafts/{REF}")
    assert resp.status_code == 404 and b"not in Preservica" in resp.get_body()


def test_a_draft_the_content_filter_refused_is_shown_not_an_error(pres):
    """describe's record when the filter refused the prompt: no answer, so no model and no token counts."""
    record = {"ref": REF, "title": "Letter, 1921", "description": "Old note by an archivist.", "sources": ["ocr"],
              "inputCut": False, "status": "failed", "reason": "the content filter refused the prompt",
              "provenance": {"service": "Azure OpenAI", "deployment": "describer", "apiVersion": "2024-10-21",
                             "promptSha256": "ab" * 32, "date": "2026-12-07T03:00:00Z"}}
    default().put_blob("drafts", f"{REF}.json", json.dumps(record).encode(), "application/json",
                       {"ref": REF, "status": "failed"})
    resp = _get(f"drafts/{REF}")
    assert resp.status_code == 200 and b"content filter refused the prompt" in resp.get_body()
    assert b"none (no answer)" in resp.get_body() and b"/accept" not in resp.get_body()


@pytest.mark.parametrize("routes, trigger", [("*=journal", None), ("MOVED=journal,publish;*=journal", "MOVED"),
                                             ("*=publish", "CHANGED_SECURITY_DESCRIPTOR"),
                                             ("CHANGED_SECURITY_DESCRIPTOR=ocr;MOVED=publish;*=journal", "MOVED")])
def test_accepting_queues_publish_where_publish_is_routed(pres, monkeypatch, routes, trigger):
    """No webhook stands for a description or fragment written: the console queues the `recheck` delivery
    on a trigger that routes publish (not one routing only ocr, which the recheck runs too), and nothing where
    publish is not routed."""
    from handlers.core import settings
    monkeypatch.setenv("PRESERVICA_ROUTES", routes)
    assert _post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()}).status_code == 303
    from azure.core.exceptions import ResourceNotFoundError
    try:   # nothing queued yet: no queue either
        docs = [json.loads(m.content) for m in default().queue(settings.DELIVERY_QUEUE).receive_messages(max_messages=32)]
    except ResourceNotFoundError:
        docs = []
    assert [(d["source"], d["delivery"]["trigger"], d["delivery"]["events"][0]["entityRef"]) for d in docs] == (
        [("recheck", trigger, REF)] if trigger else [])


HOSTILE = ['</textarea><script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "{{ 7*7 }}",
           "javascript:alert(1)", "\u202egnp.exe"]


@pytest.mark.parametrize("status", ["pending", "failed", "accepted"])
def test_text_from_preservica_a_model_or_an_operator_is_shown_as_text(pres, status):
    """Every field of a draft's page comes from Preservica (title, description), a model (the draft, a refused
    answer, its model name) or a person (the accepted text): none is markup, a template or an attribute there."""
    bad = " ".join(HOSTILE)
    pres.add_asset(REF, bad, description=bad)
    record = {"ref": REF, "title": bad, "description": bad, "sources": [bad], "inputCut": False, "status": status,
              "reason": bad, "draft": bad, "rejectedText": bad, "fromPreservation": [bad],
              "review": {"by": bad, "text": bad},
              "provenance": {"service": bad, "deployment": bad, "model": bad, "apiVersion": bad,
                             "promptSha256": bad, "date": bad, "promptTokens": bad, "completionTokens": bad}}
    default().put_blob("drafts", f"{REF}.json", json.dumps(record).encode(), "application/json",
                       {"ref": REF, "status": status})
    for page in (_get(f"drafts/{REF}").get_body(), _get("drafts").get_body()):
        for raw in ("<script>", "<img", "</textarea><", '" onerror'):
            assert raw.encode() not in page, raw
    page = _get(f"drafts/{REF}").get_body()
    assert b"&lt;/textarea&gt;&lt;script&gt;" in page and b"{{ 7*7 }}" in page


def test_a_closure_while_accepting_is_never_sent_back_as_open(pres, monkeypatch):
    """pyPreservica's save() sends the asset's security tag with its description: the tag read when the page was
    accepted would reopen an asset closed since, if Preservica took it (its docs say it does not)."""
    from handlers.console import review
    real_save = review._save

    def claim_then_close(ref, record, etag):   # the archivist closes the asset just after the draft is claimed
        ok = real_save(ref, record, etag)
        pres.set_security_tag(REF, "closed")
        return ok
    monkeypatch.setattr(review, "_save", claim_then_close)
    assert _post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()}).status_code == 303
    [put] = [r for r in pres.received if r.method == "PUT" and r.path.endswith(f"/information-objects/{REF}")]
    tag = ET.fromstring(put.body).findtext(f"{{{pres.xip_ns}}}SecurityTag")
    assert tag == "closed" and pres.saved == [(REF, "Letter, 1921", DRAFT)]
