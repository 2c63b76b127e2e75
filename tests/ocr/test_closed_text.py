"""A closed file's text never sits in an open asset's OCR fragment (docs/security.md, what may be public).

`ocr` reads files for staff, an access file closed on its own (its content object's tag) too. Preservica's public
access indexes an open asset's metadata (inferred), so the fragment on an open asset holds the provenance without
the text or the file's name while a file read is not public; the private blob keeps the text. A closed (or hidden)
asset keeps it in the fragment too: staff search it there, and nothing of it is public. Real pyPreservica against
the Preservica double, the real Document Intelligence client against its double, Blob in Azurite."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from azure.storage.blob import BlobServiceClient

from handlers.clients import journal
from tests.support.jobs import row, run_one
from tests.support.ocr import SCAN, SCHEMA, TIFF, job_for

NS = {"o": SCHEMA}
WORDS = ("Dear Sir", "harbour wall", "letter.png")   # the page's text (the conftest's) and the file's name


def fragment_xml(pres, ref: str) -> str:
    [(schema, xml)] = pres.metadata(ref)
    assert schema == SCHEMA
    return xml


def text_blob(conn: str, ref: str) -> tuple[str, dict]:
    client = BlobServiceClient.from_connection_string(conn).get_blob_client("ocr", f"{ref}.txt")
    return client.download_blob().readall().decode(), client.get_blob_properties().metadata


def withheld(xml: str) -> bool:
    doc = ET.fromstring(xml)
    return doc.find("o:textWithheld", NS) is not None and doc.find("o:text", NS) is None


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
    master = "0d9d4a4e-0000-4000-8000-00000000d030"
    pres.add_asset(master, "Letter and reading", bitstreams=[("scan.tif", TIFF), ("reading.wav", 500, "Access")])
    co, _ = pres.source_of(master, "Preservation", 0)
    pres.set_security_tag(co, "closed")
    raw = job_for(master)
    assert run_one("ocr", raw).state == journal.DONE and row(raw)["ocr_representation"] == "Preservation"
    xml = fragment_xml(pres, master)
    assert withheld(xml) and "scan.tif" not in xml and "harbour wall" not in xml
