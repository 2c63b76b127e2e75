"""What the console's accept writes to Preservica when something goes wrong between its check and its writes:
a person's description is never overwritten, and the machine-drafted text never stands in Preservica without
the fragment that says so. The console's real HTTP function, Azurite, real pyPreservica against the double."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from handlers.console import review
from tests import test_console_review as base
from tests.support.console import operator_post
from tests.test_console_review import DRAFT, REF, SCHEMA, _form, _record

pres = base.pres   # the fixture: the Preservica double with the asset and its draft
PERSON = "Corrected by the archivist a moment ago."


def test_a_description_a_person_edits_between_the_check_and_the_write_is_kept(pres, monkeypatch):
    """The accept compares the description with the draft's, claims the draft, then writes: an edit in Preservica
    after the comparison was overwritten by the drafted text (a lost update)."""
    real_save = review._save

    def claim_then_edit(ref, record, etag):
        ok = real_save(ref, record, etag)
        if record.get("status") == "accepted":
            pres.set_description(REF, PERSON)
        return ok
    monkeypatch.setattr(review, "_save", claim_then_edit)
    resp = operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()})
    assert resp.status_code == 409 and b"changed since the draft was made" in resp.get_body()
    assert pres.saved == [] and pres.metadata(REF) == []
    assert _record()["status"] == "pending"


def test_machine_text_is_never_in_the_description_without_its_provenance_fragment(pres):
    """The fragment saying "machine-drafted, reviewed by" is written first: when it cannot be, the description is
    not touched either, and the reviewer gets a page saying so (it was a 500, the description already written)."""
    pres.fail_next(4, 500, path_prefix=f"/api/entity/information-objects/{REF}/metadata")
    resp = operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()})
    assert resp.status_code == 502 and b"Not written: Preservica" in resp.get_body()
    assert pres.saved == [] and pres.metadata(REF) == [] and _record()["status"] == "pending"
    pres.clear_failures()
    assert operator_post(f"drafts/{REF}/accept", {"text": DRAFT, **_form()}).status_code == 303
    assert pres.saved == [(REF, "Letter, 1921", DRAFT)]
    [(schema, xml)] = pres.metadata(REF)
    assert schema == SCHEMA and ET.fromstring(xml).findtext(f"{{{SCHEMA}}}provenance").startswith("machine-drafted")
