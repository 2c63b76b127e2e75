"""What a cut or padded download does to transcribe's temporary disk and its Speech bill (issue 19, point 6).

pyPreservica's bitstream_content "resumes" a broken download by fetching from byte 0 again and appending
(its Range header is built but never sent), so a file cut at 90% five times grew to 5.5 times its size
on disk, past TRANSCRIBE_MAX_BYTES. The Preservica double here cuts the stream (or pads it) for real
pyPreservica and the app's download; the Speech double is reached by the real azure-ai-transcription client."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from handlers.actions import transcribe as action
from handlers.clients import journal
from handlers.core.errors import SafeError
from handlers.pipeline.contract import Context
from hookops.doubles.speech import make_wav
from tests.support.jobs import read_job, run_one
from tests.support.transcribe import job_for

TAPE = "0d9d4a4e-0000-4000-8000-00000000f001"
SOUND = make_wav(2.0)   # 64 kB


@pytest.fixture
def disk(pres, tmp_path, monkeypatch):
    """The largest amount of temporary disk transcribe held when each download started."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    peaks: list[int] = []
    pres.content_hook = lambda: peaks.append(sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file()))
    pres.add_asset(TAPE, "Tape", bitstreams=[("tape.wav", SOUND, "Access")])
    yield peaks
    pres.content_hook = None


def test_a_download_cut_again_and_again_never_grows_past_the_limit(env, pres, speech, disk, monkeypatch):
    limit = len(SOUND)
    monkeypatch.setenv("TRANSCRIBE_MAX_BYTES", str(limit))
    pres.cut_content(TAPE, "tape.wav", at=limit * 9 // 10, times=5)
    with pytest.raises(Exception) as caught:
        action.perform(read_job(job_for(TAPE)), Context())
    assert max(disk) <= limit, f"{max(disk)} bytes on disk for a {limit}-byte limit"
    assert isinstance(caught.value, SafeError) and "broke off" in str(caught.value)
    assert speech.calls == []


def test_a_cut_download_is_fetched_whole_again_and_transcribed_once(env, pres, speech, disk):
    pres.cut_content(TAPE, "tape.wav", at=1000, times=2)
    raw = job_for(TAPE)
    for attempt in (1, 2):
        with pytest.raises(SafeError, match="download from Preservica broke off"):
            run_one("transcribe", raw, attempt=attempt)
    assert run_one("transcribe", raw, attempt=3).state == journal.DONE
    [call] = speech.calls
    assert call.audio == SOUND


def test_more_bytes_than_preservica_lists_stop_at_the_limit(env, pres, speech, disk, monkeypatch):
    limit = len(SOUND) + 10_000
    monkeypatch.setenv("TRANSCRIBE_MAX_BYTES", str(limit))
    pres.oversize_content(TAPE, "tape.wav", extra=1_000_000)
    outcome = run_one("transcribe", job_for(TAPE))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, f"too large (more than {limit} bytes arrived)")
    assert speech.calls == []


def test_fewer_or_more_bytes_than_listed_are_not_transcribed(env, pres, speech, disk):
    pres.oversize_content(TAPE, "tape.wav", extra=10)   # within the limit, but not the file Preservica lists
    with pytest.raises(SafeError, match=f"sent {len(SOUND) + 10} bytes where it lists {len(SOUND)}"):
        action.perform(read_job(job_for(TAPE)), Context())
    assert speech.calls == []


def test_the_temporary_file_is_gone_after_a_broken_download(env, pres, speech, disk):
    pres.cut_content(TAPE, "tape.wav", at=5000)
    with pytest.raises(SafeError):
        action.perform(read_job(job_for(TAPE)), Context())
    assert not any(os.scandir(tempfile.gettempdir()))
