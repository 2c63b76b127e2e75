"""A closed recording's words never sit in an open asset's transcript fragment (docs/security.md).

`transcribe` transcribes a recording closed on its own (its content object's tag), and falls back to the
preservation master, for staff. Preservica's public access indexes an open asset's metadata (inferred), so on an
open asset the fragment keeps the language and duration but not the text or the file's name; the private blobs
keep both. A closed asset keeps the text in the fragment. Real pyPreservica against the Preservica double, the
Speech double, Blob in Azurite."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import partial

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.clients import journal
from handlers.core.errors import SafeError
from tests.support import fragments
from tests.support.jobs import row, run_one
from tests.support.transcribe import AV, SCHEMA, WAV, job_for

NS = {"t": SCHEMA}
WORDS = ("Recorded 1952", "Mr Jones", "talk.wav")   # the double's phrases (the conftest's) and the file's name

fragment_xml = partial(fragments.fragment_xml, schema=SCHEMA)
withheld = partial(fragments.withheld, schema=SCHEMA)


def blobs(conn: str, ref: str) -> dict[str, tuple[str, dict]]:
    service = BlobServiceClient.from_connection_string(conn)
    found = {}
    for suffix in (".txt", ".vtt"):
        client = service.get_blob_client("transcripts", f"{ref}{suffix}")
        found[suffix] = (client.download_blob().readall().decode(), client.get_blob_properties().metadata)
    return found



def test_an_open_asset_gets_language_and_duration_without_a_closed_recordings_words(env, app_env, pres, speech):
    co, _ = pres.source_of(AV, "Access", 0)
    pres.set_security_tag(co, "closed")
    raw = job_for(AV)
    assert run_one("transcribe", raw).state == journal.DONE
    xml = fragment_xml(pres, AV)
    assert withheld(xml) and not [w for w in WORDS if w in xml]
    doc = ET.fromstring(xml)
    assert doc.findtext("t:language", namespaces=NS) and doc.findtext("t:durationMilliseconds", namespaces=NS)
    kept = blobs(app_env.connection_string, AV)
    assert "Recorded 1952" in kept[".txt"][0] and "Recorded 1952" in kept[".vtt"][0]
    assert kept[".txt"][1]["source_closed"] == "true" and row(raw)["transcribe_withheld"] is True


def test_a_closed_asset_keeps_its_words_in_the_fragment(env, pres, speech):
    pres.set_security_tag(AV, "closed")
    raw = job_for(AV)
    assert run_one("transcribe", raw).state == journal.DONE
    xml = fragment_xml(pres, AV)
    assert not withheld(xml) and "Recorded 1952" in xml and "transcribe_withheld" not in row(raw)


def test_an_open_recording_under_an_open_asset_is_written_as_before(env, pres, speech):
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    xml = fragment_xml(pres, AV)
    assert not withheld(xml) and all(w in xml for w in WORDS)


def test_a_closed_master_read_as_the_fallback_is_withheld(env, pres, speech):
    """An access image and a WAV master closed under the open asset: the master is transcribed, for staff."""
    master = fragments.with_closed_master(pres, "0d9d4a4e-0000-4000-8000-00000000a030", "Interview",
                                          [("still.png", 300, "Access"), ("master.wav", WAV)])
    raw = job_for(master)
    assert run_one("transcribe", raw).state == journal.DONE and row(raw)["transcribe_representation"] == "Preservation"
    xml = fragment_xml(pres, master)
    assert withheld(xml) and "master.wav" not in xml and "Recorded 1952" not in xml


def test_a_retry_that_reuses_the_transcript_withholds_it_too(env, pres, speech):
    """The fragment write failed once: the retry reuses the kept transcript (Speech paid once) and writes the
    fragment by the same rule."""
    co, _ = pres.source_of(AV, "Access", 0)
    pres.set_security_tag(co, "closed")
    raw = job_for(AV)
    pres.fail_next(1, 500, path_prefix=f"/api/entity/information-objects/{AV}/metadata")
    with pytest.raises(SafeError, match="HTTP 500"):   # the failed write: the queue retries
        run_one("transcribe", raw)
    assert run_one("transcribe", raw, attempt=2).state == journal.DONE
    assert len(speech.calls) == 1 and row(raw)["transcribe_reused"] is True and withheld(fragment_xml(pres, AV))


# ---- a change of access later: nothing is transcribed again ----------------------------------------------

SECURITY = "CHANGED_SECURITY_DESCRIPTOR"


def test_an_asset_opened_later_with_its_recording_left_closed_loses_the_words_without_speech(env, app_env, pres,
                                                                                            speech):
    pres.set_security_tag(AV, "closed")
    assert run_one("transcribe", job_for(AV)).state == journal.DONE and not withheld(fragment_xml(pres, AV))
    pres.set_security_tag(AV, "open")
    co, _ = pres.source_of(AV, "Access", 0)
    pres.set_security_tag(co, "closed")   # includeDescendants=false: the recording's own tag stays closed
    raw = job_for(AV, trigger=SECURITY)
    outcome = run_one("transcribe", raw)
    assert outcome.state == journal.DONE and row(raw)["transcribe_fragment"] == "withheld"
    xml = fragment_xml(pres, AV)
    assert withheld(xml) and not [w for w in WORDS if w in xml] and len(speech.calls) == 1
    assert "Recorded 1952" in blobs(app_env.connection_string, AV)[".vtt"][0]


def test_an_asset_opened_with_its_recording_keeps_the_words(env, pres, speech):
    pres.set_security_tag(AV, "closed")
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    pres.set_security_tag(AV, "open")
    outcome = run_one("transcribe", job_for(AV, trigger=SECURITY))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "the files its text was read from are public")
    assert "Recorded 1952" in fragment_xml(pres, AV) and len(speech.calls) == 1


def test_a_recording_closed_later_under_the_open_asset_takes_its_words_out(env, pres, speech):
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    co, _ = pres.source_of(AV, "Access", 0)
    pres.set_security_tag(co, "closed")
    outcome = run_one("transcribe", job_for(co, "CO", trigger=SECURITY))
    assert outcome.state == journal.DONE and outcome.reason.startswith(f"its asset {AV}: text withheld")
    assert withheld(fragment_xml(pres, AV)) and len(speech.calls) == 1
