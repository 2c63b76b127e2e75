"""`ocr`: the real azure-ai-documentintelligence client against a local HTTPS Document Intelligence double
(analyze, Operation-Location, polls), the real pyPreservica calls against the Preservica double, Blob in Azurite."""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.actions import ocr as action
from handlers.clients import journal
from handlers.core.errors import SafeError
from handlers.pipeline.contract import Context
from hookops.doubles.preservica import make_png
from tests.support.jobs import read_job, row, run_one
from tests.support.ocr import PDF, PDF_ASSET, SCAN, SCHEMA, TIFF, job_for

NS = {"o": SCHEMA}


def blob(conn: str, name: str):
    client = BlobServiceClient.from_connection_string(conn).get_blob_client("ocr", name)
    return client.download_blob().readall().decode(), client.get_blob_properties().metadata


def fragment(pres, ref: str) -> ET.Element:
    [(schema, xml)] = pres.metadata(ref)
    assert schema == SCHEMA
    return ET.fromstring(xml)


def analyses(di) -> list:
    return [c for c in di.calls if c.method == "POST"]


def test_success_writes_fragment_blob_and_journal(env, app_env, pres, di):
    di.running_polls = 2   # the client polls Operation-Location until "succeeded"
    raw = job_for(SCAN)
    outcome = run_one("ocr", raw)
    assert (outcome.state, outcome.reason) == (journal.DONE, "")

    # What the real client sent: the access PNG's bytes to prebuilt-read, a page range, the key header.
    [post] = analyses(di)
    assert post.path == "/documentintelligence/documentModels/prebuilt-read:analyze"
    assert post.query["api-version"] == "2024-11-30" and post.query["pages"] == "1-100"
    assert post.body == make_png() and post.content_type == "application/octet-stream"
    assert post.headers["ocp-apim-subscription-key"] == "<redacted>" and "authorization" not in post.headers
    polls = [c for c in di.calls if c.method == "GET"]
    assert len(polls) == 3 and all("/prebuilt-read/analyzeResults/" in c.path for c in polls)

    doc = fragment(pres, SCAN)
    assert doc.findtext("o:service", namespaces=NS) == "Azure AI Document Intelligence"
    assert (doc.findtext("o:model", namespaces=NS), doc.findtext("o:apiVersion", namespaces=NS)) == (
        "prebuilt-read", "2024-11-30")
    assert doc.findtext("o:pages", namespaces=NS) == "1" and doc.findtext("o:meanConfidence", namespaces=NS) == "0.9000"
    assert doc.findtext("o:date", namespaces=NS).endswith("Z") and doc.findtext("o:truncated", namespaces=NS) == "false"
    assert doc.findtext("o:source", namespaces=NS) == "letter.png"
    text = doc.findtext("o:text", namespaces=NS)
    assert text == "Dear Sir,\nthe harbour wall is <b>breached</b> & failing."   # text, escaped in the XML

    body, meta = blob(app_env.connection_string, f"{SCAN}.txt")
    assert body == text and meta["pages"] == "1" and meta["model"] == "prebuilt-read" and meta["representation"] == "Access"
    r = row(raw)
    assert (r["ocr_state"], r["ocr_pages"], r["ocr_fragment"], r["ocr_representation"]) == ("done", 1, "added", "Access")


def test_a_multi_page_pdf_is_one_document(env, app_env, pres, di):
    di.set_pages([["Minutes of the meeting"], ["Page two: resolved"]])
    assert run_one("ocr", job_for(PDF_ASSET)).state == journal.DONE
    [post] = analyses(di)
    assert post.body_sha256 == hashlib.sha256(PDF).hexdigest()
    doc = fragment(pres, PDF_ASSET)
    assert doc.findtext("o:pages", namespaces=NS) == "2"
    assert doc.findtext("o:text", namespaces=NS) == "Minutes of the meeting\nPage two: resolved"


def test_a_second_run_replaces_the_fragment(env, pres, di):
    raw = job_for(SCAN)
    action.perform(read_job(raw), Context())   # an attempt whose journal write was lost
    di.set_pages([["A better reading"]])
    assert run_one("ocr", raw, attempt=2).state == journal.DONE
    assert len(pres.metadata(SCAN)) == 1 and row(raw)["ocr_fragment"] == "replaced"
    assert fragment(pres, SCAN).findtext("o:text", namespaces=NS) == "A better reading"


def test_characters_xml_cannot_hold_never_reach_the_fragment(env, app_env, pres, di):
    """A lone surrogate (valid in the service's JSON) or U+FFFF in the read text: pyPreservica could not build the
    request and Preservica could not parse it. Dropped; the rest kept."""
    di.set_pages([["Dear\ud800 Sir \U0001F600 \uffff end"]])
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    assert fragment(pres, SCAN).findtext("o:text", namespaces=NS) == "Dear Sir \U0001F600  end"
    assert blob(app_env.connection_string, f"{SCAN}.txt")[0] == "Dear Sir \U0001F600  end"


def test_preservation_first_by_setting(env, pres, di, monkeypatch):
    monkeypatch.setenv("OCR_REPRESENTATION", "Preservation")
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    assert analyses(di)[0].body == TIFF and fragment(pres, SCAN).findtext("o:source", namespaces=NS) == "letter.tif"


# ---- limits ----------------------------------------------------------------------------------

def test_page_limit_is_sent_and_recorded(env, pres, di, monkeypatch):
    monkeypatch.setenv("OCR_MAX_PAGES", "1")
    many = "0d9d4a4e-0000-4000-8000-00000000d010"
    pres.add_asset(many, "Two scans", bitstreams=[("p1.png", make_png(), "Access"), ("p2.tif", TIFF, "Access")])
    di.set_pages([["first page"], ["second page"]])
    raw = job_for(many)
    assert run_one("ocr", raw).state == journal.DONE
    [post] = analyses(di)   # the budget is spent on the first file: the second is never sent
    assert post.query["pages"] == "1-1"
    doc = fragment(pres, many)
    assert doc.findtext("o:pages", namespaces=NS) == "1" and doc.findtext("o:truncated", namespaces=NS) == "true"
    assert doc.findtext("o:text", namespaces=NS) == "first page" and row(raw)["ocr_truncated"] is True


def test_too_large_is_skipped_before_any_byte_is_fetched(env, pres, di, monkeypatch):
    monkeypatch.setenv("OCR_MAX_BYTES", "100")
    outcome = run_one("ocr", job_for(PDF_ASSET))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, f"too large ({len(PDF)} bytes > 100)")
    assert not [p for _, p in pres.requests if p.endswith("/content")] and di.calls == []


def test_bytes_budget_leaves_later_files_unread(env, pres, di, monkeypatch):
    two = "0d9d4a4e-0000-4000-8000-00000000d011"
    pres.add_asset(two, "Two", bitstreams=[("a.png", make_png(), "Access"), ("b.tif", TIFF, "Access")])
    monkeypatch.setenv("OCR_MAX_BYTES", str(len(make_png()) + len(TIFF) - 1))
    assert run_one("ocr", job_for(two)).state == journal.DONE
    assert len(analyses(di)) == 1 and fragment(pres, two).findtext("o:truncated", namespaces=NS) == "true"


# ---- what it cannot read -----------------------------------------------------------------------

def test_skips_what_it_cannot_read(env, pres, di):
    jp2, named, folder_ref = ("0d9d4a4e-0000-4000-8000-00000000d020", "0d9d4a4e-0000-4000-8000-00000000d021",
                              "0d9d4a4e-0000-4000-8000-00000000d004")
    pres.add_asset(jp2, "JPEG 2000", bitstreams=[("scan.jp2", 500, "Access"), ("scan.gif", 300)])
    outcome = run_one("ocr", job_for(jp2))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "unsupported format (gif, jp2)")
    pres.add_asset(named, "Audio", bitstreams=[("talk.wav", 500, "Access")])
    assert run_one("ocr", job_for(named)).reason == "no image or PDF"
    assert run_one("ocr", job_for(folder_ref, "SO")).reason == "not an asset or a content object"
    assert di.calls == []

    # Named .pdf, but the bytes are not a PDF (nor any image the read model takes): never sent.
    fake = "0d9d4a4e-0000-4000-8000-00000000d022"
    pres.add_asset(fake, "Not a PDF", bitstreams=[("report.pdf", b"<html><script>x</script></html>", "Access")])
    outcome = run_one("ocr", job_for(fake))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "not an image or PDF the read model takes (pdf)")
    assert di.calls == [] and pres.metadata(fake) == []


def test_a_file_the_service_refuses_is_skipped_with_its_code(env, pres, di):
    di.fail_next(400, body={"error": {"code": "InvalidRequest", "message": "cannot read <letter.png>",
                                      "innererror": {"code": "InvalidContent"}}})
    outcome = run_one("ocr", job_for(SCAN))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED,
                                               "Document Intelligence cannot read this file (HTTP 400 InvalidRequest)")
    assert pres.metadata(SCAN) == []


def test_an_operation_that_fails_is_skipped(env, pres, di):
    di.fail_next(200, on="poll", body={"status": "failed", "error": {"code": "InvalidContent", "message": "x"}})
    outcome = run_one("ocr", job_for(SCAN))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED,
                                               "Document Intelligence could not read this file (InvalidContent)")


# ---- throttling and refusal ---------------------------------------------------------------------

def test_throttled_then_success_waits_what_retry_after_says(env, pres, di):
    di.fail_next(429, {"Retry-After": "3"})
    assert run_one("ocr", job_for(SCAN)).state == journal.DONE
    assert env == [3.0] and len(analyses(di)) == 2 and analyses(di)[1].body == make_png()   # the whole file again


@pytest.mark.parametrize("status,headers,step", [(429, {"Retry-After": "120"}, "analyze"), (503, {}, "analyze"),
                                                 (429, {"Retry-After": "1"}, "poll")])
def test_throttling_beyond_the_budget_is_left_to_the_queue(env, pres, di, status, headers, step):
    di.fail_next(status, headers, times=2, on=step)
    raw = job_for(SCAN)
    with pytest.raises(SafeError, match=f"Document Intelligence answered HTTP {status}"):
        run_one("ocr", raw)
    assert row(raw)["ocr_state"] == "failed" and pres.metadata(SCAN) == []


def test_a_wrong_key_is_an_error_naming_the_role(env, pres, di, monkeypatch, caplog):
    monkeypatch.setenv("DOCINTEL_KEY", "wrong-key-0000")
    with pytest.raises(SafeError, match="Cognitive Services User") as err:
        run_one("ocr", job_for(SCAN))
    assert "wrong-key" not in str(err.value) and "wrong-key" not in caplog.text


def test_with_the_app_identity_a_bearer_token_and_no_key(keyvault, pres, monkeypatch, tmp_path):
    """In Azure: secrets from Key Vault (no docintel-key there), DefaultAzureCredential for Document Intelligence."""
    from handlers.clients import preservica
    from handlers.core import settings
    from hookops.doubles.docintel import DocIntelDouble
    from tests.support.ocr import PASSWORD, TENANT, USER
    audience = "https://cognitiveservices.azure.com"
    with DocIntelDouble(ca=keyvault.ca, accept_token=keyvault.accepts(audience)) as entra:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr("handlers.clients.docintel.POLL_SECONDS", 0.01)
        keyvault.set_secret(settings.KV_PRESERVICA_PASSWORD, PASSWORD)
        for name, value in {"PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_TENANT": TENANT,
                            "PRESERVICA_PROTOCOL": "http", "DOCINTEL_ENDPOINT": entra.endpoint,
                            "OCR_SCHEMA": SCHEMA}.items():
            monkeypatch.setenv(name, value)
        preservica.forget_client()
        assert run_one("ocr", job_for(SCAN)).state == journal.DONE
        post = entra.calls[0]
        assert post.headers["authorization"] == "<redacted>" and "ocp-apim-subscription-key" not in post.headers
        assert all(c.headers.get("authorization") == "<redacted>" for c in entra.calls)   # the polls too
        assert {"client_id": "11111111-2222-3333-4444-555555555555", "resource": audience} in keyvault.token_requests
    preservica.forget_client()
