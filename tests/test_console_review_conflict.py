"""A draft replaced while its review page is open (describe ran again: its upstream replayed, a later event, a
backfill), through the console's real HTTP function, Azurite and the Preservica double: the accept and reject forms
carry which draft the page showed (`version`), a decision on a draft replaced since is refused with the new draft
shown and the reviewer's text kept, and what is written on accept is always the provenance of the draft the
reviewer saw. No hidden field can point a decision at another asset's draft or skip the check."""
from __future__ import annotations

import html
import re
import secrets
import xml.etree.ElementTree as ET

import pytest

from handlers.console import review
from tests import test_console_review as base
from tests.support.console import draft_version, operator_get, operator_post, review_form
from tests.test_console_review import DRAFT, REF, _draft, _form, _record

NEW = "A letter of 3 May 1921 from the Harbour Office, with a plan of the breach in the harbour wall."
NEW_MODEL = "gpt-4o-2025-08-06"
EDITED = DRAFT + " Two pages, reviewed against the scan."
OTHER = "0d9d4a4e-0000-4000-8000-00000000f002"
pres = base.pres   # the fixture: the Preservica double with the asset and its draft


def _redraft(text: str = NEW, model: str = NEW_MODEL) -> None:
    """describe writes the asset's draft again: new words and provenance, and a new draftId."""
    _draft(text=text, model=model, draft_id=secrets.token_hex(16))


def _written(pres) -> dict[str, str]:
    [(_, xml)] = pres.metadata(REF)
    return {el.tag.split("}")[1]: el.text or "" for el in ET.fromstring(xml)}


def _box(page: bytes) -> str:
    """The text in the page's textarea (what an accept would post)."""
    return html.unescape(re.search(rb'<textarea[^>]*>(.*?)</textarea>', page, re.S)[1].decode())


def test_an_accept_of_a_draft_replaced_while_open_is_refused_showing_the_new_draft_and_keeping_the_edit(pres):
    form = _form()
    _redraft()
    resp = operator_post(f"drafts/{REF}/accept", {"text": EDITED, **form})
    page = resp.get_body()
    assert resp.status_code == 409 and b"replaced since the page was shown" in page, page
    assert pres.saved == [] and pres.metadata(REF) == []                       # nothing written
    assert _record()["status"] == "pending" and _record()["draft"] == NEW       # the new draft waits, unreviewed
    new_block = re.search(rb'<p class="text" id="new-draft">(.*?)</p>', page, re.S)[1]
    assert html.unescape(new_block.decode()) == NEW and NEW_MODEL.encode() in page
    assert _box(page) == EDITED                                                # nothing the reviewer typed is lost
    # Decided again on the conflict page: its form is the new draft's, and the write carries that draft's provenance.
    again = review_form(page)
    assert again["version"] != form["version"]
    assert operator_post(f"drafts/{REF}/accept", {"text": _box(page), **again}).status_code == 303
    assert pres.saved == [(REF, "Letter, 1921", EDITED)]
    assert (_written(pres)["model"], _written(pres)["edited"]) == (NEW_MODEL, "true")


def test_an_accept_as_is_of_a_replaced_draft_never_writes_the_old_words_as_the_new_draft(pres):
    form = _form()
    _redraft()
    assert operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **form}).status_code == 409
    assert pres.saved == [] and _record()["status"] == "pending"


def test_a_reject_of_a_draft_replaced_while_open_is_refused(pres):
    form = _form()
    _redraft()
    resp = operator_post(f"drafts/{REF}/reject", {"version": form["version"]})
    assert resp.status_code == 409 and b"Nothing was rejected" in resp.get_body() and NEW.encode() in resp.get_body()
    assert _record()["status"] == "pending" and "review" not in _record()


def test_the_current_draft_accepted_as_is_is_written_with_its_own_provenance(pres):
    _redraft(DRAFT, "gpt-4o-2024-11-20")   # a draft with an id, as describe writes them now
    assert operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()}).status_code == 303
    assert pres.saved == [(REF, "Letter, 1921", DRAFT)]
    assert (_written(pres)["model"], _written(pres)["edited"]) == ("gpt-4o-2024-11-20", "false")
    assert _record()["status"] == "accepted"


def test_a_draft_written_again_with_the_same_words_is_another_draft(pres):
    """Same words, same model: still a new run (its own date, tokens, prompt); the id tells them apart."""
    _redraft(DRAFT, "gpt-4o-2024-11-20")
    form = _form()
    _redraft(DRAFT, "gpt-4o-2024-11-20")
    assert operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **form}).status_code == 409 and pres.saved == []


def test_a_draft_replaced_between_the_check_and_the_claim_is_refused_too(pres, monkeypatch):
    """describe's write lands after the console read the record and before its claim (the ETag catches it)."""
    form = _form()
    real_save = review._save

    def redrafted_first(ref, record, etag):
        _redraft()
        return real_save(ref, record, etag)
    monkeypatch.setattr(review, "_save", redrafted_first)
    resp = operator_post(f"drafts/{REF}/accept", {"text": EDITED, **form})
    assert resp.status_code == 409 and b"replaced since the page was shown" in resp.get_body()
    assert _box(resp.get_body()) == EDITED and pres.saved == [] and _record()["draft"] == NEW


@pytest.mark.parametrize("version", [None, "", "0" * 64, "f" * 64, "é" * 64, "x" * 8000, "ＡＢ", "draftId"])
def test_a_missing_or_tampered_version_is_refused(pres, version):
    form = _form()
    fields = {"text": DRAFT, "seen": form["seen"], **({} if version is None else {"version": version})}
    resp = operator_post(f"drafts/{REF}/accept", fields)
    assert resp.status_code == 409 and pres.saved == [] and pres.metadata(REF) == []
    assert _record()["status"] == "pending" and _box(resp.get_body()) == DRAFT
    assert operator_post(f"drafts/{REF}/reject", {k: v for k, v in fields.items() if k != "text"}).status_code == 409
    assert _record()["status"] == "pending"


def test_another_assets_form_cannot_decide_on_this_draft_nor_this_form_on_another(pres):
    """The decision is on the asset of the URL, and the version is that asset's draft's or nothing."""
    pres.add_asset(OTHER, "Plan, 1921", description="Old note by an archivist.")
    _draft(ref=OTHER, text=NEW, draft_id=secrets.token_hex(16))
    mine, theirs = _form(), _form(OTHER)
    assert operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **theirs}).status_code == 409
    assert operator_post(f"drafts/{OTHER}/accept", {"text": DRAFT, **mine}).status_code == 409
    assert operator_post(f"drafts/{OTHER}/reject", {"version": mine["version"]}).status_code == 409
    assert pres.saved == [] and _record()["status"] == _record(OTHER)["status"] == "pending"


def test_the_version_is_still_behind_csrf_and_the_operator_role(pres):
    from handlers.console import auth
    form = _form()
    assert operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **form}, csrf=False).status_code == 403
    assert operator_post(f"drafts/{REF}/reject", form, role=auth.READER).status_code == 403
    assert b'name="version"' not in operator_get(f"drafts/{REF}", auth.READER).get_body()   # a reader gets no form
    assert draft_version(operator_get(f"drafts/{REF}").get_body()) == form["version"]     # stable while unchanged
    assert _record()["status"] == "pending" and pres.saved == []
