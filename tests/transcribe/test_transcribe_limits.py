"""`transcribe` within bounds: at most TRANSCRIBE_CONCURRENCY transcriptions at once per instance, and a
certificate the client does not trust named as such (issue 20: "A local run that tells the truth"),
for Preservica (real pyPreservica) and Speech (the real azure-ai-transcription client)."""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler

import pytest
import trustme

from handlers.actions import transcribe as action
from handlers.clients import journal, preservica
from handlers.core.errors import SafeError
from handlers.pipeline.contract import Context
from hookops.doubles.tls import Certificates, Server
from tests.support.e2e import wait_until
from tests.support.jobs import read_job, row, run_one
from tests.support.transcribe import AV, WAV, job_for

TAPES = [f"0d9d4a4e-0000-4000-8000-00000000f2{i:02d}" for i in range(5)]
TLS_ADVICE = "(check REQUESTS_CA_BUNDLE / the CA you trust)"


def test_at_most_transcribe_concurrency_transcriptions_at_once(env, pres, speech, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CONCURRENCY", "2")
    for ref in TAPES:
        pres.add_asset(ref, "Tape", bitstreams=[("tape.wav", WAV, "Access")])
    jobs = [read_job(job_for(ref)) for ref in TAPES]
    outcomes: dict[str, object] = {}

    def run(job):
        try:
            outcomes[job.entity_ref] = action.perform(job, Context()).state
        except Exception as exc:   # noqa: BLE001 - shown by the assertion below
            outcomes[job.entity_ref] = exc
    speech.hold()
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    try:
        for t in threads:
            t.start()
        speech.wait_in_flight(2)
        wait_until(lambda: action._slots.get().waiting == 3, timeout=30)   # the other three wait their turn
        assert speech.in_flight == 2
    finally:
        speech.release()
        for t in threads:
            t.join(timeout=60)
    assert outcomes == {ref: journal.DONE for ref in TAPES}
    assert speech.max_in_flight == 2 and len(speech.calls) == 5


def test_a_slot_that_never_frees_is_left_to_the_queue(env, pres, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CONCURRENCY", "1")
    monkeypatch.setattr(action, "SLOT_WAIT", 0.01)
    action._slots.reset()
    with action._slots.get().held():   # another transcription holds the only slot
        with pytest.raises(SafeError, match=r"all 1 slots of this instance stayed busy .*TRANSCRIBE_CONCURRENCY"):
            action.perform(read_job(job_for(AV)), Context())
    action._slots.reset()


# ---- TLS ------------------------------------------------------------------------------------------

@pytest.fixture
def untrusted(tmp_path, monkeypatch):
    """The client trusts a CA of its own, which signed neither double's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


class _Quiet(BaseHTTPRequestHandler):
    def do_POST(self):   # never reached: the handshake fails first
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_preservica_behind_a_certificate_the_client_does_not_trust_is_named(env, untrusted, monkeypatch, caplog):
    certs = Certificates(trustme.CA(), "preservica-tls-")
    server = Server(0, _Quiet, None, certs.context)
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("PRESERVICA_SERVER", host)
        monkeypatch.setenv("PRESERVICA_PROTOCOL", "https")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(untrusted))
        preservica.forget_client()
        raw = job_for(AV)
        with pytest.raises(SafeError) as caught:
            run_one("transcribe", raw)
    finally:
        server.close()
        certs.cleanup()
    expected = f"TLS certificate verification failed for {host} {TLS_ADVICE}"
    assert expected in str(caught.value) and "could not be reached" not in str(caught.value)
    assert expected in row(raw)["transcribe_reason"]
    assert any(expected in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_speech_behind_a_certificate_the_client_does_not_trust_is_named(env, pres, speech, untrusted, monkeypatch,
                                                                       caplog):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(untrusted))
    raw = job_for(AV)
    with pytest.raises(SafeError) as caught:
        run_one("transcribe", raw)
    host = speech.endpoint.removeprefix("https://").rstrip("/")
    expected = f"TLS certificate verification failed for {host} {TLS_ADVICE}"
    assert expected in str(caught.value) and "could not be reached" not in str(caught.value)
    assert expected in row(raw)["transcribe_reason"]
    assert any(expected in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert speech.calls == []
