"""`transcribe` end to end through the local runner over real HTTP and queues (Azurite), with the
Preservica and Speech doubles; and the operator's demo flow: `hookops doubles` + runner +
`send-test-event` + `events`."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from handlers.clients import preservica
from handlers.core import signature
from handlers.pipeline import waits
from hookops.runner import Runner
from tests.support.e2e import hookops, rows_done, wait_until
from tests.support.paths import ROOT, SECRET

pytestmark = pytest.mark.slow
AV = "0d9d4a4e-0000-4000-8000-00000000e001"
SCHEMA = "urn:example:transcript"


def test_an_indexed_av_asset_is_transcribed_once_however_often_the_delivery_comes(app_env, fast_host_json, monkeypatch,
                                                                                    tmp_path):
    from hookops.doubles.preservica import PreservicaDouble
    from hookops.doubles.speech import SpeechDouble, make_wav

    monkeypatch.chdir(tmp_path)  # no stray credentials.properties for pyPreservica
    preservica.forget_client()
    wav = make_wav(1.25)
    with PreservicaDouble(username="u", password="p", tenant="T") as pres, SpeechDouble(key="k-e2e") as speech, \
            Runner(ROOT, port=0, host_json=fast_host_json) as runner:
        pres.add_asset(AV, "Lecture", bitstreams=[("lecture.tif", 512), ("lecture.wav", wav, "Access")])
        speech.set_phrases([(0, 600, "Good morning."), (700, 500, "Today: tides.")])
        for name, value in {"PRESERVICA_ROUTES": "FULL_TEXT_INDEXED=journal,transcribe;*=journal",
                            "PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p",
                            "PRESERVICA_TENANT": "T", "PRESERVICA_PROTOCOL": "http", "SPEECH_ENDPOINT": speech.endpoint,
                            "SPEECH_KEY": "k-e2e", "TRANSCRIPT_SCHEMA": SCHEMA, "REQUESTS_CA_BUNDLE": speech.ca_bundle,
                            "NO_PROXY": "127.0.0.1,localhost"}.items():
            monkeypatch.setenv(name, value)

        body = json.dumps({"subscriptionId": "sub-e2e", "timestamp": "2026-11-30T06:10:00.000", "tenant": "T",
                           "version": "7.7", "trigger": "FULL_TEXT_INDEXED",
                           "events": [{"event": "FULL_TEXT_INDEXED", "entityType": "IO", "entityRef": AV}]}).encode()
        headers = {"Preservica-Signature": signature.sign(SECRET, body), "Content-Type": "application/json"}
        url = f"{runner.url}/api/preservica/webhook"
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        wait_until(lambda: AV in rows_done("transcribe"), timeout=60)

        vtt = BlobServiceClient.from_connection_string(app_env.connection_string).get_blob_client(
            "transcripts", f"{AV}.vtt").download_blob().readall().decode()
        assert vtt.startswith("WEBVTT") and "00:00:00.700 --> 00:00:01.200\nToday: tides." in vtt
        [(schema, xml)] = pres.metadata(AV)
        assert schema == SCHEMA and "Good morning." in xml and "lecture.wav" in xml
        [call] = speech.calls
        assert call.audio == wav

        # Preservica re-sends the same delivery (it saw no 200 in time): accepted, journaled, not transcribed again.
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        assert runner.wait_idle(timeout=30)
        assert len(speech.calls) == 1 and len(pres.metadata(AV)) == 1
        assert rows_done("transcribe")[AV]["transcribe_characters"] == len("Good morning.\nToday: tides.")
    preservica.forget_client()


def _state(ref: str, action: str) -> str | None:
    from handlers.clients import journal
    return next((r.get(f"{action}_state") for r in journal.default().recent(100) if r.get("entityRef") == ref), None)


def _lines(proc) -> tuple[queue.Queue[str], threading.Thread]:
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    return lines, reader


def _until(lines: queue.Queue[str], text: str, timeout: float = 60) -> str:
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {text!r} in the output: {''.join(seen)}") from None
        seen.append(line)
        if text in line:
            return "".join(seen)


def test_demo_doubles_with_the_runner_show_transcribe_ocr_and_describe_done_in_events(app_env, fast_host_json, tmp_path,
                                                                                     monkeypatch):
    """The issue's done-when: `hookops send-test-event --trigger FULL_TEXT_INDEXED --ref <av asset>` against the
    app with the doubles configured shows `transcribe:done` in `hookops events`; and (issue 24) the image asset
    is OCR'd by the Document Intelligence double, then drafted by the chat double once describe
    has waited for ocr on the same event, and (issue 23) copied by custody and restored as the README shows, with nothing but
    what `hookops doubles --write` put in local.settings.json."""
    from hookops.demo import AV_ASSET, DEMO_DRAFT, DEMO_PAGE, IMAGE_ASSET

    settings_file = tmp_path / "local.settings.json"
    proc = subprocess.Popen([sys.executable, "-m", "hookops.cli", "doubles", "--write", "--settings-file",
                             str(settings_file), "--ca-dir", str(tmp_path / "ca")], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines, reader = _lines(proc)
        printed = _until(lines, "Doubles running")
        assert AV_ASSET in printed and "SPEECH_KEY" in printed
        values = json.loads(settings_file.read_text())["Values"]
        assert values["REQUESTS_CA_BUNDLE"] == values["SSL_CERT_FILE"] == str(tmp_path / "ca" / "ca-bundle.pem")
        # What `make run` would take from local.settings.json (the storage and webhook secret stay the test's).
        doubles = {k: values[k] for k in ("PRESERVICA_SERVER", "PRESERVICA_USERNAME", "PRESERVICA_PASSWORD",
                                          "PRESERVICA_TENANT", "PRESERVICA_PROTOCOL", "SPEECH_ENDPOINT", "SPEECH_KEY",
                                          "DOCINTEL_ENDPOINT", "DOCINTEL_KEY", "OPENAI_ENDPOINT", "OPENAI_KEY",
                                          "DESCRIBE_DEPLOYMENT", "PRESERVICA_ROUTES", "REQUESTS_CA_BUNDLE",
                                          "SSL_CERT_FILE", "NO_PROXY")}
        monkeypatch.chdir(tmp_path)
        # describe's first look finds ocr not done and puts the event back: for 1 s here (then 2 s, 4 s ...) rather
        # than waits.FIRST_DELAY's 30 s, as in tests/test_order_e2e.py; the runner runs in this process.
        monkeypatch.setattr(waits, "FIRST_DELAY", 1)
        preservica.forget_client()
        with Runner(ROOT, port=0, host_json=fast_host_json, env=doubles) as runner:
            webhook = f"{runner.url}/api/preservica/webhook"
            out = hookops("send-test-event", "--url", webhook, "--trigger", "FULL_TEXT_INDEXED", "--ref", AV_ASSET,
                          "--ref", IMAGE_ASSET)
            assert ": 200 " in out
            wait_until(lambda: AV_ASSET in rows_done("transcribe") and IMAGE_ASSET in rows_done("thumbnail")
                       and IMAGE_ASSET in rows_done("ocr") and _state(IMAGE_ASSET, "transcribe") == "skipped",
                       timeout=90)
            wait_until(lambda: IMAGE_ASSET in rows_done("describe"), timeout=600)
            wait_until(lambda: IMAGE_ASSET in rows_done("custody"), timeout=300)
            events = hookops("events")
            # The README's custody walkthrough: verify, then restore v1 (each exits 0 or the test fails).
            assert ": ok, head v1" in hookops("custody", "verify", IMAGE_ASSET)
            hookops("custody", "restore", IMAGE_ASSET, "--to", str(tmp_path / "map"), "--version", "v1")
            assert [p.name for p in (tmp_path / "map").glob("preservation/*/g1/b1/*")] == ["map.tif"]
        [av_line] = [line for line in events.splitlines() if AV_ASSET in line and "transcribe" in line]
        assert "transcribe:done" in av_line and "journal:done" in av_line
        [image_line] = [line for line in events.splitlines() if IMAGE_ASSET in line and "thumbnail" in line]
        assert "thumbnail:done" in image_line and "transcribe:skipped(no audio or video)" in image_line
        assert "ocr:done" in image_line and "custody:done(v1 written)" in image_line
        assert any("describe:done" in line for line in events.splitlines() if IMAGE_ASSET in line)
        store = BlobServiceClient.from_connection_string(app_env.connection_string)
        assert store.get_blob_client("ocr", f"{IMAGE_ASSET}.txt").download_blob().readall().decode() == "\n".join(DEMO_PAGE)
        draft = json.loads(store.get_blob_client("drafts", f"{IMAGE_ASSET}.json").download_blob().readall())
        assert draft["status"] == "pending" and draft["draft"] == DEMO_DRAFT
        assert draft["provenance"]["deployment"] == "demo-describer"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        preservica.forget_client()
    reader.join(timeout=60)
    rest = "".join(lines.queue)
    assert proc.returncode == 0 and "Doubles stopped." in rest
