"""A person's correction of the OCR fragment is never overwritten by the machine's text (docs/actions.md, metadata
fragments): not by a later reading, not by the rewrite that withholds a closed file's text.

Real pyPreservica against the Preservica double (which answers a fragment re-serialised, as a server may), the real
Document Intelligence client against its double, Blob in Azurite."""
from __future__ import annotations

import logging

from handlers.clients import fragments, journal
from tests.support.jobs import row, run_one
from tests.support.ocr import SCAN, SCHEMA, job_for

from .test_closed_text import SECURITY, close_the_page, fragment_xml, text_blob, withheld

CORRECTED = "the harbour wall is breached and failing (corrected by the archivist)"


def corrected(pres) -> None:
    xml = fragment_xml(pres, SCAN)
    assert "the harbour wall is &lt;b&gt;breached&lt;/b&gt; &amp; failing." in xml
    pres.edit_metadata(SCAN, SCHEMA, xml.replace("the harbour wall is &lt;b&gt;breached&lt;/b&gt; &amp; failing.",
                                                 CORRECTED))


def test_a_correction_made_between_two_readings_stays(env, app_env, pres, di):
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    corrected(pres)
    di.set_pages([["Dear Sir,", "the harbour wall is read again."]], confidence=0.9)
    raw = job_for(SCAN)   # a re-sent event, a backfill
    outcome = run_one("ocr", raw)
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, fragments.EDITED)
    assert CORRECTED in fragment_xml(pres, SCAN) and "read again" not in fragment_xml(pres, SCAN)
    assert "read again" in text_blob(app_env.connection_string, SCAN)[0]   # the new text is kept, privately
    assert (row(raw)["ocr_fragment"], row(raw)["ocr_blob"]) == ("kept", f"ocr/{SCAN}.txt")


def test_its_own_unchanged_fragment_is_replaced(env, pres, di):
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    di.set_pages([["Dear Sir,", "the harbour wall is read again."]], confidence=0.9)
    raw = job_for(SCAN)
    assert run_one("ocr", raw).state == journal.DONE and row(raw)["ocr_fragment"] == "replaced"
    assert "read again" in fragment_xml(pres, SCAN)


def test_an_unrecorded_fragment_is_replaced_only_with_the_apps_provenance(env, pres, di):
    """Written before the app recorded its writes: its provenance says it is the app's; without it, a person's."""
    pres.add_metadata(SCAN, SCHEMA, f"<ocr xmlns='{SCHEMA}'><text>Typed in by a volunteer</text></ocr>")
    outcome = run_one("ocr", job_for(SCAN))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, fragments.UNRECORDED)
    assert "Typed in by a volunteer" in fragment_xml(pres, SCAN)
    pres.edit_metadata(SCAN, SCHEMA, f"<ocr xmlns='{SCHEMA}'><service>Azure AI Document Intelligence</service>"
                                     f"<text>an older reading</text></ocr>")
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    assert "the harbour wall" in fragment_xml(pres, SCAN)


def test_the_withholding_rewrite_leaves_a_corrected_fragment_and_tells_an_operator(env, pres, di, caplog):
    """Read while closed (the text in the fragment, for staff), corrected by a person, then the asset opened with
    its page left closed: the corrected fragment is the archive's own record now; not rewritten, logged."""
    pres.set_security_tag(SCAN, "closed")
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    corrected(pres)
    pres.set_security_tag(SCAN, "open")
    close_the_page(pres)
    raw = job_for(SCAN, trigger=SECURITY)
    with caplog.at_level(logging.WARNING, logger="handlers.alerts"):
        outcome = run_one("ocr", raw)
    assert outcome.state == journal.SKIPPED and outcome.reason.startswith(fragments.EDITED)
    assert "not withheld" in outcome.reason and "ocr_fragment" not in row(raw)
    xml = fragment_xml(pres, SCAN)
    assert CORRECTED in xml and not withheld(xml)
    [alert] = [r for r in caplog.records if r.getMessage().startswith("ALERT closed-text-kept:")]
    assert SCAN in alert.getMessage() and "not public" in alert.getMessage()


def test_the_withholding_rewrite_proceeds_over_its_own_fragment_answered_in_another_form(env, pres, di):
    pres.set_security_tag(SCAN, "closed")
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    pres.set_security_tag(SCAN, "open")
    close_the_page(pres)
    assert run_one("ocr", job_for(SCAN, trigger=SECURITY)).state == journal.DONE
    assert withheld(fragment_xml(pres, SCAN))
    # and the withheld fragment is recorded as the app's: a later reading replaces it
    pres.set_security_tag(SCAN, "closed")
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE and not withheld(fragment_xml(pres, SCAN))
