"""A person's correction of the transcript fragment (a name, a misheard word) is never overwritten by a later run.
Real pyPreservica against the Preservica double, Speech's double, Blob in Azurite."""
from __future__ import annotations

from handlers.clients import journal
from tests.support.jobs import row, run_one
from tests.support.transcribe import AV, SCHEMA, job_for


def test_a_corrected_transcript_stays_and_the_new_one_is_kept_privately(env, pres, speech):
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    [(_, xml)] = pres.metadata(AV)
    pres.edit_metadata(AV, SCHEMA, xml.replace("Mr Jones", "Mr Jonas"))
    raw = job_for(AV)   # a backfill of the same asset
    outcome = run_one("transcribe", raw)   # the kept transcript again: what the app last wrote, so nothing is sent
    assert outcome.state == journal.DONE
    [(_, xml)] = pres.metadata(AV)
    assert "Mr Jonas" in xml and "Mr Jones" not in xml
    assert row(raw)["transcribe_fragment"] == "unchanged" and row(raw)["transcribe_blob"] == f"transcripts/{AV}.vtt"
    assert not [p for m, p in pres.requests if m == "PUT" and "/metadata/" in p]


def test_its_own_unchanged_transcript_is_not_sent_again(env, pres, speech):
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    raw = job_for(AV)
    assert run_one("transcribe", raw).state == journal.DONE and row(raw)["transcribe_fragment"] == "unchanged"
