"""`transcribe`: the real azure-ai-transcription client against a local HTTPS Speech double, the real
pyPreservica calls against the Preservica double (a WAV the test makes), Blob in Azurite."""
from __future__ import annotations

import logging
import re

import pytest
from azure.storage.blob import BlobServiceClient

from handlers import dispatch
from handlers.actions import transcribe as action
from handlers.clients import journal, preservica
from handlers.core import envelope, messages, settings
from handlers.core.errors import SafeError
from handlers.pipeline import registry
from handlers.pipeline.contract import Context
from hookops.doubles.deliveries import delivery, encode
from hookops.doubles.speech import SpeechDouble
from tests.support.jobs import read_job, row, run_one
from tests.support.transcribe import AV, FOLDER, IMAGE, KEY, PASSWORD, SCHEMA, TENANT, USER, WAV, job_for


def blob(conn: str, name: str) -> tuple[bytes, str]:
    client = BlobServiceClient.from_connection_string(conn).get_blob_client("transcripts", name)
    return client.download_blob().readall(), client.get_blob_properties().content_settings.content_type


def cues(vtt: str) -> list[tuple[str, list[str]]]:
    """(timing line, payload lines) per cue, parsed as a WebVTT player would: blocks split at blank lines."""
    blocks = vtt.split("\n\n")
    assert blocks[0] == "WEBVTT"
    out = []
    for block in filter(None, blocks[1:]):
        lines = block.strip("\n").split("\n")
        timing = next(i for i, line in enumerate(lines) if "-->" in line)
        out.append((lines[timing], lines[timing + 1:]))
    return out


# ---- success ---------------------------------------------------------------------------------

def test_success_writes_captions_text_fragment_and_journal(env, app_env, pres, speech):
    raw = job_for(AV)
    outcome = run_one("transcribe", raw)
    assert (outcome.state, outcome.reason) == (journal.DONE, "")

    # What the real client sent: the WAV from Preservica as the audio part, the locales in the definition.
    [call] = speech.calls
    assert call.path == "/speechtotext/transcriptions:transcribe" and call.query["api-version"]
    assert call.parts == ["audio", "definition"]
    assert call.audio == WAV and call.audio_content_type == "audio/wav" and call.audio_filename == "audio.wav"
    assert call.definition == {"locales": ["en-US", "cy-GB"], "profanityFilterMode": "Masked"}
    assert call.headers["ocp-apim-subscription-key"] == "<redacted>" and "authorization" not in call.headers
    assert int(call.headers["content-length"]) > len(WAV)  # sent with a length, not chunked

    vtt, vtt_type = blob(app_env.connection_string, f"{AV}.vtt")
    assert vtt_type.startswith("text/vtt")
    parsed = cues(vtt.decode())
    assert [t for t, _ in parsed] == ["00:00:00.000 --> 00:00:01.500", "00:00:01.600 --> 00:00:02.500",
                                      "00:00:02.600 --> 00:00:03.000"]
    assert [p for _, p in parsed] == [["Recorded 1952 --&gt; the harbour"],
                                      ["&lt;b&gt;Mr Jones&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;"],
                                      ["line one line two"]]
    text, _ = blob(app_env.connection_string, f"{AV}.txt")
    assert text.decode() == "Recorded 1952 --> the harbour\n<b>Mr Jones</b> & <script>x</script>\nline one line two\n"

    [(schema, xml)] = pres.metadata(AV)
    assert schema == SCHEMA
    import xml.etree.ElementTree as ET
    doc = ET.fromstring(xml)
    ns = {"t": SCHEMA}
    assert doc.findtext("t:language", namespaces=ns) == "en-US"
    assert doc.findtext("t:source", namespaces=ns) == "talk.wav"
    assert doc.findtext("t:durationMilliseconds", namespaces=ns) == "750"   # the WAV's own length
    assert "<script>x</script>" in doc.findtext("t:text", namespaces=ns)  # text, escaped in the XML

    r = row(raw)
    assert (r["transcribe_state"], r["transcribe_language"], r["transcribe_durationMs"]) == ("done", "en-US", 750)
    assert r["transcribe_characters"] == len(text.decode().strip())
    assert (r["transcribe_representation"], r["transcribe_fragment"]) == ("Access", "added")


def test_a_second_run_replaces_the_fragment_never_adds_one(env, pres, speech):
    raw = job_for(AV)
    action.perform(read_job(raw), Context())   # an attempt whose journal write was lost
    assert run_one("transcribe", raw, attempt=2).state == journal.DONE
    assert len(pres.metadata(AV)) == 1 and row(raw)["transcribe_fragment"] == "unchanged"
    assert run_one("transcribe", raw, attempt=3) is None   # finished: the claim keeps it from running again
    assert len(speech.calls) == 1 and row(raw)["transcribe_reused"]   # the kept transcript, not a second charge


# ---- which file --------------------------------------------------------------------------------

def test_access_first_then_preservation_and_format_ids(env, pres, speech):
    both, master_only = "0d9d4a4e-0000-4000-8000-00000000b001", "0d9d4a4e-0000-4000-8000-00000000b002"
    pres.add_asset(both, "Both", bitstreams=[("master.wav", WAV), ("proxy.mp3", b"ID3fake-mp3", "Access")])
    assert run_one("transcribe", job_for(both)).state == journal.DONE
    assert speech.calls[-1].audio == b"ID3fake-mp3" and speech.calls[-1].audio_content_type == "audio/mpeg"

    pres.add_asset(master_only, "Master only", bitstreams=[("scan.tif", 100, "Access"), ("master.wav", WAV)])
    assert run_one("transcribe", job_for(master_only)).state == journal.DONE
    assert speech.calls[-1].audio == WAV

    named = "0d9d4a4e-0000-4000-8000-00000000b003"  # no useful extension, but characterised as WAV
    pres.add_asset(named, "Characterised", bitstreams=[("recording.bin", WAV, "Access")])
    pres.set_format(named, "recording.bin", "Audio", "fmt/141", "Waveform Audio (PCMWAVEFORMAT)")
    assert run_one("transcribe", job_for(named)).state == journal.DONE
    assert speech.calls[-1].audio_content_type == "audio/wav"


def test_skips_what_it_cannot_transcribe(env, pres, speech):
    film = "0d9d4a4e-0000-4000-8000-00000000c001"
    pres.add_asset(film, "Film", bitstreams=[("reel.mov", 5000, "Access"), ("reel.mkv", 9000)])
    image = run_one("transcribe", job_for(IMAGE))
    assert (image.state, image.reason) == (journal.SKIPPED, "no audio or video")
    unsupported = run_one("transcribe", job_for(film))
    assert (unsupported.state, unsupported.reason) == (journal.SKIPPED, "unsupported format (mkv, mov)")
    folder = run_one("transcribe", job_for(FOLDER, "SO"))
    assert (folder.state, folder.reason) == (journal.SKIPPED, "not an asset or a content object")
    assert speech.calls == []

    speech.fail_next(415, body={"error": {"code": "UnsupportedAudioFormat", "message": "cannot decode <talk.wav>"}})
    refused = run_one("transcribe", job_for(AV))
    assert (refused.state, refused.reason) == (journal.SKIPPED,
                                               "Speech cannot transcribe this file (HTTP 415 UnsupportedAudioFormat)")
    assert pres.metadata(AV) == []


def test_too_large_is_skipped_before_any_byte_is_fetched(env, pres, speech, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_MAX_BYTES", "1000")
    outcome = run_one("transcribe", job_for(AV))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, f"too large ({len(WAV)} bytes > 1000)")
    assert not [p for _, p in pres.requests if p.endswith("/content")] and speech.calls == []


# ---- errors ----------------------------------------------------------------------------------

def test_throttled_then_success_waits_what_retry_after_says(env, pres, speech):
    speech.fail_next(429, {"Retry-After": "2"})
    assert run_one("transcribe", job_for(AV)).state == journal.DONE
    assert env == [2.0] and len(speech.calls) == 2 and speech.calls[1].audio == WAV  # the whole file, again


@pytest.mark.parametrize("status,headers", [(429, {"Retry-After": "120"}), (503, {}), (500, {"Retry-After": "1"})])
def test_throttling_beyond_the_budget_is_left_to_the_queue(env, pres, speech, status, headers):
    speech.fail_next(status, headers, times=2)
    raw = job_for(AV)
    with pytest.raises(SafeError, match=f"Speech answered HTTP {status}"):
        run_one("transcribe", raw)
    r = row(raw)
    assert r["transcribe_state"] == "failed" and f"HTTP {status}" in r["transcribe_reason"]
    assert len(speech.calls) == (2 if headers.get("Retry-After") == "1" else 1)
    assert pres.metadata(AV) == []


def test_refused_names_the_setting_and_role_and_never_the_key(env, pres, speech, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-value-fedcba9876543210"
    monkeypatch.setenv("SPEECH_KEY", wrong)
    raw = job_for(AV)
    with pytest.raises(SafeError):
        run_one("transcribe", raw)
    reason = row(raw)["transcribe_reason"]
    assert "HTTP 401" in reason and "SPEECH_ENDPOINT" in reason and "Cognitive Services Speech User" in reason
    monkeypatch.setenv("SPEECH_KEY", KEY)
    assert run_one("transcribe", job_for(AV)).state == journal.DONE   # fixed: a new delivery goes through
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    recorded = repr(journal.default().recent(100))
    for secret in (KEY, wrong, PASSWORD):
        assert secret not in logged and secret not in recorded


def test_with_the_app_identity_a_bearer_token_and_no_key(keyvault, pres, speech, monkeypatch, tmp_path, caplog):
    """In Azure: secrets from Key Vault (no speech-key there), DefaultAzureCredential for Speech."""
    caplog.set_level(logging.DEBUG)
    audience = "https://cognitiveservices.azure.com"
    with SpeechDouble(ca=keyvault.ca, accept_token=keyvault.accepts(audience)) as entra:
        monkeypatch.chdir(tmp_path)
        keyvault.set_secret(settings.KV_PRESERVICA_PASSWORD, PASSWORD)
        for name, value in {"PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_TENANT": TENANT,
                            "PRESERVICA_PROTOCOL": "http", "SPEECH_ENDPOINT": entra.endpoint,
                            "TRANSCRIPT_SCHEMA": SCHEMA, "SPEECH_KEY": "app-setting-ignored-with-key-vault"}.items():
            monkeypatch.setenv(name, value)
        preservica.forget_client()
        raw = job_for(AV)
        assert run_one("transcribe", raw).state == journal.DONE
        [call] = entra.calls
        assert call.headers["authorization"] == "<redacted>" and "ocp-apim-subscription-key" not in call.headers
        assert call.definition == {"profanityFilterMode": "Masked"}   # no locales set: the service identifies it
        assert keyvault.secret_reads["speech-key"] >= 1
        assert {"client_id": "11111111-2222-3333-4444-555555555555", "resource": audience} in keyvault.token_requests
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    recorded = repr(journal.default().recent(100))
    for token in keyvault.issued():
        assert token not in logged and token not in recorded
    preservica.forget_client()


def test_not_configured_without_an_endpoint(app_env, monkeypatch):
    monkeypatch.delenv("SPEECH_ENDPOINT", raising=False)
    from handlers.clients.secrets import default
    assert registry.missing("transcribe", default()).startswith("PRESERVICA_SERVER")
    monkeypatch.setenv("PRESERVICA_SERVER", "127.0.0.1:1")
    monkeypatch.setenv("PRESERVICA_USERNAME", "u")
    monkeypatch.setenv("PRESERVICA_PASSWORD", "p")
    assert registry.missing("transcribe", default()) == "SPEECH_ENDPOINT"


def test_bad_locales_and_endpoint_are_named(env, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_LOCALES", "en-US,../../etc")
    with pytest.raises(SafeError, match="TRANSCRIBE_LOCALES"):
        action.perform(read_job(job_for(AV)), Context())
    monkeypatch.setenv("TRANSCRIBE_LOCALES", "en-US")
    monkeypatch.setenv("SPEECH_ENDPOINT", "https://user:pw@127.0.0.1:1/path")
    with pytest.raises(SafeError, match="SPEECH_ENDPOINT must be") as caught:
        action.perform(read_job(job_for(AV)), Context())
    assert "pw" not in str(caught.value) and re.search(r"https://<name>", str(caught.value))


def test_one_recording_per_message_whatever_the_batch_size(env, pres, monkeypatch):
    """A transcription takes minutes: a message of 50 would outlive functionTimeout and be retried whole."""
    from handlers.clients.storage import default
    others = [f"0d9d4a4e-0000-4000-8000-00000000d00{i}" for i in range(3)]
    for r in others:
        pres.add_asset(r, "Tape", bitstreams=[("tape.wav", WAV, "Access")])
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,transcribe")
    monkeypatch.setenv("ACTION_BATCH_SIZE", "50")
    body = encode(delivery(trigger="FULL_TEXT_INDEXED", refs=others))
    dispatch.dispatch(messages.intake_message(envelope.delivery_id(body), "2026-11-30T06:00:00Z", body.decode()).encode())
    sizes = {name: [len(messages.read_batch(m.content)) for m in default().queue(name).receive_messages(max_messages=32)]
             for name in (settings.action_queue("transcribe"), settings.action_queue("journal"))}
    assert sizes == {settings.action_queue("transcribe"): [1, 1, 1], settings.action_queue("journal"): [3]}


def test_characters_xml_cannot_hold_never_reach_the_fragment(env, app_env, pres, speech):
    """Speech's JSON can carry a lone surrogate (`"\\ud800"` is valid JSON) and U+FFFE/U+FFFF: none is a character
    XML 1.0 allows, so pyPreservica could not even build the request (UnicodeEncodeError), nor Preservica parse
    it. They are dropped like control characters; everything else, an emoji too, is kept."""
    speech.set_phrases([(0, 1000, "Before\ud800 after \U0001F600 \ufffe\uffff end")])
    raw = job_for(AV)
    assert run_one("transcribe", raw).state == journal.DONE
    [(_, xml)] = pres.metadata(AV)
    import xml.etree.ElementTree as ET
    assert ET.fromstring(xml).findtext(f"{{{SCHEMA}}}text") == "Before after \U0001F600 end\n"
    text, _ = blob(app_env.connection_string, f"{AV}.txt")
    assert text.decode() == "Before after \U0001F600 end\n"
