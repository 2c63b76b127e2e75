"""`describe` after `ocr` end to end: the whole app under the local runner over real HTTP and queues (Azurite),
the Preservica, Document Intelligence and chat doubles. Routes start both actions at once; describe must
wait for ocr's text, however slow ocr is, draft once, and run with what exists when ocr fails for good."""
from __future__ import annotations

import json

import httpx
import pytest
import trustme

from handlers.clients import docintel, journal, preservica
from handlers.core import signature
from handlers.pipeline import waits
from hookops.doubles.chat import ChatDouble
from hookops.doubles.docintel import DocIntelDouble
from hookops.doubles.preservica import PreservicaDouble, make_png
from hookops.runner import Runner
from tests.support.e2e import FAST_HOST, wait_until
from tests.support.paths import ROOT, SECRET

pytestmark = pytest.mark.slow
LETTER = "0d9d4a4e-0000-4000-8000-00000000f001"
PAGE = ["Harbour Office, 3 May 1921.", "Dear Sir, the harbour wall is breached and failing."]
ANSWER = "A letter of 3 May 1921 from the Harbour Office reporting that the harbour wall was breached."


@pytest.fixture
def world(app_env, monkeypatch, tmp_path):
    """The doubles, the app's settings routing ocr and describe for the same trigger, and a host.json whose
    maxDequeueCount is the one the app counts as "for good" (the repository's)."""
    monkeypatch.chdir(tmp_path)  # no stray credentials.properties for pyPreservica
    host = json.loads(json.dumps(FAST_HOST))
    host["extensions"]["queues"]["maxDequeueCount"] = waits.MAX_ATTEMPTS
    (tmp_path / "host.json").write_text(json.dumps(host))
    ca = trustme.CA()
    with PreservicaDouble(username="u", password="p", tenant="T") as pres, DocIntelDouble(key="di-key", ca=ca) as di, \
            ChatDouble(key="chat-key", ca=ca) as chat:
        pres.add_asset(LETTER, "Letter, 1921", bitstreams=[("letter.png", make_png(), "Access")])
        di.set_pages([PAGE])
        chat.answer = ANSWER
        for name, value in {"PRESERVICA_ROUTES": "FULL_TEXT_INDEXED=journal,ocr,describe;*=journal",
                            "PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p",
                            "PRESERVICA_TENANT": "T", "PRESERVICA_PROTOCOL": "http", "NO_PROXY": "127.0.0.1,localhost",
                            "DOCINTEL_ENDPOINT": di.endpoint, "DOCINTEL_KEY": "di-key", "OPENAI_ENDPOINT": chat.endpoint,
                            "OPENAI_KEY": "chat-key", "DESCRIBE_DEPLOYMENT": "describer",
                            "REQUESTS_CA_BUNDLE": di.ca_bundle, "SSL_CERT_FILE": chat.ca_bundle}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(waits, "FIRST_DELAY", 1)         # put back for 1 s, 2 s, 4 s ... rather than 30 s ...
        monkeypatch.setattr(docintel, "POLL_SECONDS", 0.05)
        preservica.forget_client()
        with Runner(ROOT, port=0, host_json=tmp_path / "host.json") as runner:
            try:
                yield runner, di, chat
            finally:
                di.release()   # before the runner stops: it waits for a held analysis otherwise
    preservica.forget_client()


def ingest(runner) -> None:
    body = json.dumps({"subscriptionId": "sub-order", "timestamp": "2026-12-07T06:10:00.000", "tenant": "T",
                       "version": "7.7", "trigger": "FULL_TEXT_INDEXED",
                       "events": [{"event": "FULL_TEXT_INDEXED", "entityType": "IO", "entityRef": LETTER}]}).encode()
    headers = {"Preservica-Signature": signature.sign(SECRET, body), "Content-Type": "application/json"}
    assert httpx.post(f"{runner.url}/api/preservica/webhook", content=body, headers=headers).status_code == 200


def letter_row() -> dict | None:
    return next((r for r in journal.default().recent(100) if r.get("entityRef") == LETTER), None)


def state(action: str) -> tuple[str, str] | None:
    r = letter_row() or {}
    return (r[f"{action}_state"], r.get(f"{action}_reason") or "") if r.get(f"{action}_state") else None


def test_a_slow_ocr_is_waited_for_and_describe_drafts_from_its_text_once(world):
    runner, di, chat = world
    di.hold()                                                # ocr's analysis runs until the test lets it finish
    ingest(runner)
    wait_until(lambda: state("ocr") == ("running", "") and state("describe") == ("queued", "waiting for ocr"), 60)
    wait_until(lambda: runner.stats["action_describe"]["succeeded"] >= 2, 60)   # waited twice
    assert chat.calls == [] and state("ocr")[0] == "running"
    di.release()
    wait_until(lambda: state("describe") == ("done", ""), 60)
    assert state("ocr") == ("done", "")
    [call] = chat.calls
    assert "the harbour wall is breached" in call.messages[1]["content"]
    assert runner.wait_idle(timeout=30)
    assert len(chat.calls) == 1 and runner.stats["action_describe"]["failed"] == 0
    assert (letter_row() or {})["describe_sources"] == "ocr"


def test_ocr_failing_for_good_lets_describe_run_with_what_exists(world, monkeypatch):
    runner, di, chat = world
    monkeypatch.setenv("DOCINTEL_KEY", "a-wrong-key")        # 401 on every try: ocr fails until poison
    ingest(runner)
    wait_until(lambda: (state("describe") or ("",))[0] == "skipped", 90)
    assert state("describe")[1] == ("no text to describe (no ocr or transcribe text for this asset); "
                                    "ocr failed: ran with what existed")
    r = letter_row()
    assert (r["ocr_state"], r["ocr_attempts"]) == ("failed", waits.MAX_ATTEMPTS) and chat.calls == []
    assert runner.wait_idle(timeout=30)
    assert runner.stats["action_ocr"]["poisoned"] == 1
    assert not runner.stats["action_describe"]["poisoned"]


def test_ocr_replayed_from_poison_makes_describe_draft_once_with_its_text(world, monkeypatch):
    """The operator mends ocr's cause and replays its poison message (as `hookops poison replay` does):
    describe, which ran without ocr's text, runs once more and drafts from it; the journal says why."""
    from handlers.clients import poison
    from handlers.clients.storage import default
    runner, di, chat = world
    monkeypatch.setenv("DOCINTEL_KEY", "a-wrong-key")
    ingest(runner)
    wait_until(lambda: (state("describe") or ("",))[0] == "skipped", 90)
    assert runner.wait_idle(timeout=30) and runner.stats["action_ocr"]["poisoned"] == 1 and chat.calls == []

    monkeypatch.setenv("DOCINTEL_KEY", "di-key")             # the cause mended
    assert poison.replay(default(), "action-ocr") == 1
    wait_until(lambda: (state("describe") or ("",))[0] == "done", 90)
    assert state("describe") == ("done", "ran again: ocr finished after it ran without it")
    assert state("ocr") == ("done", "")
    [call] = chat.calls
    assert "the harbour wall is breached" in call.messages[1]["content"]
    assert (letter_row() or {})["describe_sources"] == "ocr"
    # Replayed again (nothing is left in poison) or re-sent: ocr is done, nothing runs a second time.
    assert poison.replay(default(), "action-ocr") == 0
    ingest(runner)
    assert runner.wait_idle(timeout=60)
    assert len(chat.calls) == 1 and state("describe")[0] == "done"
