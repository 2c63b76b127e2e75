"""A closed file's text never sits in an open asset's OCR fragment (docs/security.md, what may be public).

`ocr` reads files for staff, an access file closed on its own (its content object's tag) too. Preservica's public
access indexes an open asset's metadata (inferred), so the fragment on an open asset holds the provenance without
the text or the file's name while a file read is not public; the private blob keeps the text. A closed (or hidden)
asset keeps it in the fragment too: staff search it there, and nothing of it is public. Real pyPreservica against
the Preservica double, the real Document Intelligence client against its double, Blob in Azurite."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import partial

from azure.storage.blob import BlobServiceClient

from handlers.clients import journal
from tests.support import fragments
from tests.support.jobs import row, run_one
from tests.support.ocr import SCAN, SCHEMA, TIFF, job_for

NS = {"o": SCHEMA}
WORDS = ("Dear Sir", "harbour wall", "letter.png")   # the page's text (the conftest's) and the file's name

fragment_xml = partial(fragments.fragment_xml, schema=SCHEMA)
withheld = partial(fragments.withheld, schema=SCHEMA)


def text_blob(conn: str, ref: str) -> tuple[str, dict]:
    client = BlobServiceClient.from_connection_string(conn).get_blob_client("ocr", f"{ref}.txt")
    return client.download_blob().readall().decode(), client.get_blob_properties().metadata



def close_the_page(pres) -> str:
    co, _ = pres.source_of(SCAN, "Access", 0)
    pres.set_security_tag(co, "closed")
    return co


def test_an_open_asset_gets_the_provenance_without_a_closed_files_text(env, app_env, pres, di):
    close_the_page(pres)
    raw = job_for(SCAN)
    assert run_one("ocr", raw).state == journal.DONE
    xml = fragment_xml(pres, SCAN)
    assert withheld(xml) and not [w for w in WORDS if w in xml]
    doc = ET.fromstring(xml)
    assert doc.findtext("o:service", namespaces=NS) == "Azure AI Document Intelligence"   # provenance kept
    assert doc.findtext("o:pages", namespaces=NS) == "1" and doc.findtext("o:date", namespaces=NS).endswith("Z")
    assert "not public" in doc.findtext("o:textWithheld", namespaces=NS)
    body, meta = text_blob(app_env.connection_string, SCAN)   # staff and describe read it here
    assert "the harbour wall is <b>breached</b>" in body and meta["source_closed"] == "true"
    assert row(raw)["ocr_withheld"] is True


def test_a_closed_asset_keeps_its_text_in_the_fragment(env, pres, di):
    pres.set_security_tag(SCAN, "closed")   # the asset and its files: nothing of it is public
    raw = job_for(SCAN)
    assert run_one("ocr", raw).state == journal.DONE
    xml = fragment_xml(pres, SCAN)
    assert not withheld(xml) and "the harbour wall" in xml and "ocr_withheld" not in row(raw)


def test_a_hidden_asset_keeps_its_text_in_the_fragment(env, pres, di):
    close_the_page(pres)
    pres.set_hidden(SCAN)
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    assert not withheld(fragment_xml(pres, SCAN))


def test_an_open_file_under_an_open_asset_is_written_as_before(env, app_env, pres, di):
    raw = job_for(SCAN)
    assert run_one("ocr", raw).state == journal.DONE
    xml = fragment_xml(pres, SCAN)
    assert not withheld(xml) and all(w in xml for w in WORDS) and "textWithheld" not in xml
    assert text_blob(app_env.connection_string, SCAN)[1]["source_closed"] == "false" and "ocr_withheld" not in row(raw)


def test_the_asset_is_read_at_the_write_not_at_the_event(env, pres, di):
    """Closed when the event was dispatched (its snapshot), opened with the file left closed while the page was
    being read: the write sees it open."""
    pres.set_security_tag(SCAN, "closed")
    raw = job_for(SCAN)
    pres.set_security_tag(SCAN, "open")
    close_the_page(pres)
    assert run_one("ocr", raw).state == journal.DONE
    assert withheld(fragment_xml(pres, SCAN))


def test_a_closed_preservation_file_read_as_the_fallback_is_withheld_too(env, pres, di):
    """No image in the access representation: ocr falls back to the master, closed here under the open asset."""
    master = fragments.with_closed_master(pres, "0d9d4a4e-0000-4000-8000-00000000d030", "Letter and reading",
                                          [("scan.tif", TIFF), ("reading.wav", 500, "Access")])
    raw = job_for(master)
    assert run_one("ocr", raw).state == journal.DONE and row(raw)["ocr_representation"] == "Preservation"
    xml = fragment_xml(pres, master)
    assert withheld(xml) and "scan.tif" not in xml and "harbour wall" not in xml


# ---- a change of access later: no page is read again ------------------------------------------------------

SECURITY, VISIBILITY = "CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY"


def read_closed(pres, di) -> None:
    """The letter read while the asset (and so its page) was closed: the text is in the fragment, for staff."""
    pres.set_security_tag(SCAN, "closed")
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE and not withheld(fragment_xml(pres, SCAN))
    di.calls.clear()


def test_an_asset_opened_later_with_its_page_left_closed_loses_the_text_without_a_new_reading(env, app_env, pres,
                                                                                             di):
    """Opened with includeDescendants=false: the asset's own tag open, its page's still closed."""
    read_closed(pres, di)
    pres.set_security_tag(SCAN, "open")
    close_the_page(pres)
    before = len(pres.requests)
    raw = job_for(SCAN, trigger=SECURITY)
    outcome = run_one("ocr", raw)
    assert outcome.state == journal.DONE and "withheld" in outcome.reason and row(raw)["ocr_fragment"] == "withheld"
    xml = fragment_xml(pres, SCAN)
    assert withheld(xml) and not [w for w in WORDS if w in xml]
    assert ET.fromstring(xml).findtext("o:service", namespaces=NS) == "Azure AI Document Intelligence"
    assert di.calls == []   # Document Intelligence is not asked again
    assert not [p for _, p in pres.requests[before:] if "/representations" in p or p.endswith("/content")]
    assert "the harbour wall" in text_blob(app_env.connection_string, SCAN)[0]   # staff keep it
    again = run_one("ocr", job_for(SCAN, trigger=SECURITY))
    assert (again.state, again.reason) == (journal.SKIPPED, "its fragment holds no text")


def test_an_asset_opened_with_its_page_keeps_the_text(env, pres, di):
    """Opened with its descendants (an embargo lifted): the page's tag is read now, and it is open."""
    read_closed(pres, di)
    pres.set_security_tag(SCAN, "open")
    outcome = run_one("ocr", job_for(SCAN, trigger=SECURITY))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "the files its text was read from are public")
    assert not withheld(fragment_xml(pres, SCAN)) and di.calls == []


def test_a_closing_changes_nothing(env, pres, di):
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    pres.set_security_tag(SCAN, "closed")
    outcome = run_one("ocr", job_for(SCAN, trigger=SECURITY))
    assert outcome.state == journal.SKIPPED and "not public" in outcome.reason
    assert not withheld(fragment_xml(pres, SCAN)) and len(analyses(di)) == 1


def test_a_hidden_asset_shown_again_loses_a_closed_pages_text(env, pres, di):
    close_the_page(pres)
    pres.set_hidden(SCAN)
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE and not withheld(fragment_xml(pres, SCAN))
    pres.set_hidden(SCAN, False)
    assert run_one("ocr", job_for(SCAN, trigger=VISIBILITY)).state == journal.DONE
    assert withheld(fragment_xml(pres, SCAN)) and len(analyses(di)) == 1


def test_a_page_closed_later_under_the_open_asset_takes_its_text_out(env, pres, di):
    """The redaction made after the reading: the content object's own event (entityType CO) names it."""
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    master, _ = pres.source_of(SCAN, "Preservation", 0)
    pres.set_security_tag(master, "closed")   # a file the text was not read from
    outcome = run_one("ocr", job_for(master, "CO", trigger=SECURITY))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, f"its asset {SCAN}: its text was not read from this file")
    assert not withheld(fragment_xml(pres, SCAN))
    page = close_the_page(pres)
    outcome = run_one("ocr", job_for(page, "CO", trigger=SECURITY))
    assert outcome.state == journal.DONE and outcome.reason.startswith(f"its asset {SCAN}: text withheld")
    assert withheld(fragment_xml(pres, SCAN)) and len(analyses(di)) == 1
    assert run_one("ocr", job_for(page, "CO")).reason == "not an asset"   # another trigger: nothing to do


def analyses(di) -> list:
    return [c for c in di.calls if c.method == "POST"]


def test_a_text_kept_before_its_files_were_recorded_goes_by_what_was_recorded(env, app_env, pres, di):
    """A blob written before `source_content_objects` (its tags then in `source_closed`, or nothing at all)."""
    read_closed(pres, di)
    blob = BlobServiceClient.from_connection_string(app_env.connection_string).get_blob_client("ocr", f"{SCAN}.txt")
    meta = blob.get_blob_properties().metadata
    assert meta.pop("source_content_objects") == pres.source_of(SCAN, "Access", 0)[0]
    older = {k: v for k, v in meta.items() if k != "source_closed"}
    blob.set_blob_metadata(older)
    pres.set_security_tag(SCAN, "open")
    close_the_page(pres)
    outcome = run_one("ocr", job_for(SCAN, trigger=SECURITY))
    assert outcome.state == journal.SKIPPED and "no record of the files" in outcome.reason
    blob.set_blob_metadata(meta)   # source_closed "true": the page was closed when it was read
    assert run_one("ocr", job_for(SCAN, trigger=SECURITY)).state == journal.DONE and withheld(fragment_xml(pres, SCAN))


def test_a_file_closed_later_under_an_older_text_is_taken_for_one_it_was_read_from(env, app_env, pres, di):
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    blob = BlobServiceClient.from_connection_string(app_env.connection_string).get_blob_client("ocr", f"{SCAN}.txt")
    blob.set_blob_metadata({k: v for k, v in blob.get_blob_properties().metadata.items()
                            if k != "source_content_objects"})
    master, _ = pres.source_of(SCAN, "Preservation", 0)
    pres.set_security_tag(master, "closed")
    assert run_one("ocr", job_for(master, "CO", trigger=SECURITY)).state == journal.DONE   # it may have been
    assert withheld(fragment_xml(pres, SCAN))
