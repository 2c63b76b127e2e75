"""A transcript says exactly which file it was made from, and is never paid for twice (issue 19, finding 1
and point 6).

`transcribe.choose()` falls back to the Preservation representation (a WAV master behind an Access PNG,
or behind an Access MP4 Speech cannot read). Its captions must say so, with the content object and fixity,
so `publish` (core.transcript.same_source) never pairs them with a published access file. And a retry
after only the metadata fragment failed must not send the recording to Speech again."""
from __future__ import annotations

import hashlib
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.clients import journal
from handlers.core import transcript
from handlers.core.errors import SafeError
from hookops.doubles.preservica import make_png
from tests.support.jobs import row, run_one
from tests.support.transcribe import AV, WAV, job_for

MASTER = "0d9d4a4e-0000-4000-8000-00000000f101"


def co_ref(asset: str, n: int) -> str:
    """The double's content object ref for an asset's n-th bitstream (hookops/doubles/preservica/double.py)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{asset}/co/{n}"))


def metadata(conn: str, name: str) -> dict:
    return BlobServiceClient.from_connection_string(conn).get_blob_client("transcripts", name) \
        .get_blob_properties().metadata


@pytest.mark.parametrize("access", [("poster.png", make_png(), "Access"), ("film.mp4", b"\0\0\0\x18ftypmp42", "Access")])
def test_captions_of_a_preservation_master_never_pass_for_the_access_file(env, app_env, pres, speech, access):
    pres.add_asset(MASTER, "Interview", bitstreams=[access, ("master.wav", WAV)])
    assert run_one("transcribe", job_for(MASTER)).state == journal.DONE
    access_fixity = {"SHA1": hashlib.sha1(access[1]).hexdigest()}
    master = {"source_representation": "Preservation", "source_content_object": co_ref(MASTER, 2),
              "source_fixity": f"SHA1:{hashlib.sha1(WAV).hexdigest()}"}
    for name in (f"{MASTER}.vtt", f"{MASTER}.txt"):
        md = metadata(app_env.connection_string, name)
        assert {k: md.get(k) for k in master} == master
        assert not transcript.same_source(md, co_ref(MASTER, 1), access_fixity)   # what publish would publish
    assert row_for(MASTER)["transcribe_representation"] == "Preservation"


def test_an_access_recording_is_recorded_as_access_with_its_content_object_and_fixity(env, app_env, pres, speech):
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    md = metadata(app_env.connection_string, f"{AV}.vtt")
    assert md["source_representation"] == "Access"
    assert transcript.same_source(md, co_ref(AV, 2), {"SHA1": hashlib.sha1(WAV).hexdigest()})


def test_retries_after_a_failed_fragment_write_pay_speech_once(env, pres, speech):
    """4 attempts, the first 3 failing only at the metadata write: 1 transcription, not 4."""
    raw = job_for(AV)
    pres.fail_next(3, 500, path_prefix=f"/api/entity/information-objects/{AV}/metadata")
    for attempt in (1, 2, 3):
        with pytest.raises(SafeError, match="HTTP 500"):
            run_one("transcribe", raw, attempt=attempt)
    assert run_one("transcribe", raw, attempt=4).state == journal.DONE
    assert len(speech.calls) == 1
    assert len(pres.metadata(AV)) == 1 and row(raw)["transcribe_reused"] is True


def test_a_replaced_file_is_transcribed_again(env, pres, speech):
    """Reuse only for the same content object and fixity: a new file with the same name is new speech."""
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    pres.add_asset(AV, "Interview, 1952", bitstreams=[("talk.wav", WAV + b"\0\0", "Access")])
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    assert len(speech.calls) == 2 and speech.calls[1].audio == WAV + b"\0\0"


def row_for(ref: str) -> dict:
    return next(r for r in journal.default().recent(100) if r.get("entityRef") == ref)


def test_a_closed_access_recordings_transcript_says_so_for_describes_reviewer(env, app_env, pres, speech):
    """A recording closed on its own (its content object's tag) under an open asset is transcribed for staff; its
    text may reach the public summary only through describe's draft, whose reviewer must be told."""
    co, _ = pres.source_of(AV, "Access", 0)
    pres.set_security_tag(co, "closed")
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    for name in (f"{AV}.vtt", f"{AV}.txt"):
        assert metadata(app_env.connection_string, name)["source_closed"] == "true"
    pres.set_security_tag(co, "open")
    pres.add_asset(AV, "Interview, 1952", bitstreams=[("talk.wav", WAV + b"\0\0", "Access")])   # a new file
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    assert metadata(app_env.connection_string, f"{AV}.txt")["source_closed"] == "false"
