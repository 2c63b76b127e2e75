"""End to end over real HTTP: the local runner (or `func start` when installed) + real Azurite.

Preservica's deliveries are sent by the operator CLI, which signs and chunks them as Preservica does.
"""
import json
import os
import re
import shutil
import subprocess

import httpx
import pytest
from click.testing import CliRunner

from handlers.clients import journal
from handlers.core import settings, signature
from handlers.pipeline import registry
from hookops import azurite as az
from hookops.cli import main as cli
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.runner import Runner
from tests.support.e2e import FAST_HOST, hookops, queue_count, rows_done, wait_until, webhook
from tests.support.paths import ROOT, SECRET

pytestmark = pytest.mark.slow
def test_signed_chunked_delivery_shows_up_in_events(runner):
    r1, r2 = ref("asset-e2e-1"), ref("asset-e2e-2")
    out = hookops("send-test-event", "--url", webhook(runner), "--trigger", "FULL_TEXT_INDEXED",
                  "--ref", r1, "--ref", r2)
    assert ": 200 " in out
    wait_until(lambda: {r1, r2} <= set(rows_done()))
    listing = hookops("events", "--limit", "5")
    assert r1 in listing and "journal:done" in listing


def test_challenge_over_http_and_verify_endpoint(runner):
    assert "OK" in hookops("verify-endpoint", "--url", webhook(runner))


def test_bad_signature_is_401_and_nothing_queued(runner, app_env):
    result = CliRunner().invoke(cli, ["send-test-event", "--url", webhook(runner), "--secret", "wrong-secret"])
    assert result.exit_code != 0 and ": 401 " in result.output
    assert queue_count(app_env.connection_string, settings.DELIVERY_QUEUE) == 0
    assert runner.stats["dispatch_delivery"]["invoked"] == 0


def test_storage_outage_is_503_and_no_acknowledged_delivery_is_lost(tmp_path, fast_host_json, monkeypatch, app_env):
    store = az.start_on_free_ports(tmp_path / "azurite")
    monkeypatch.setenv("AzureWebJobsStorage", store.connection_string)
    acked, refused = [], []
    try:
        # A receive whose answer is lost in the outage leaves its message leased; the host's lease is
        # 10 minutes, shortened here so the test sees the message come back.
        with Runner(ROOT, port=0, host_json=fast_host_json, lease_seconds=3) as r, \
                httpx.Client(timeout=30) as client:
            def post(name: str) -> int:
                body = encode(delivery(refs=[name], subscription="outage"))
                resp = client.post(webhook(r), content=iter([body]),
                                   headers={"Preservica-Signature": signature.sign(SECRET, body)})
                (acked if resp.status_code == 200 else refused).append(ref(name))
                return resp.status_code
            assert [post(f"up-{i}") for i in range(3)] == [200] * 3
            store.stop()
            during = [post(f"down-{i}") for i in range(3)]
            assert during == [503] * 3
            store.start()
            for name in [n for n in ("down-0", "down-1", "down-2") if ref(n) in refused]:  # re-sent, as Preservica would
                refused.remove(ref(name))
                assert post(name) == 200
            wait_until(lambda: set(acked) <= set(rows_done()), timeout=60)
    finally:
        store.stop()
    assert len(acked) == 6


def test_failing_batch_ends_in_poison_names_its_events_and_replay_brings_it_back(runner, app_env, monkeypatch,
                                                                                 caplog):
    from hookops.doubles.receivers import TeamsDouble
    with TeamsDouble() as teams:
        monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,teams")
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url)
        attempts = FAST_HOST["extensions"]["queues"]["maxDequeueCount"]
        poisoned = [ref(f"poisoned-{i}") for i in range(3)]       # one Teams batch of three events
        teams.respond_with(500, times=attempts * len(poisoned))  # fails every post of every attempt
        hookops("send-test-event", "--url", webhook(runner), *[a for r in poisoned for a in ("--ref", r)])
        poison = settings.action_queue("teams") + "-poison"
        wait_until(lambda: queue_count(app_env.connection_string, poison) == 1)
        assert runner.stats["action_teams"]["failed"] == attempts
        rows = [r for r in journal.default().recent(10) if r["entityRef"] in poisoned]
        assert len(rows) == 3 and all(r["teams_state"] == "failed" and r["journal_state"] == "done" for r in rows)
        listing = hookops("poison", "list")
        assert "action-teams-poison: 1" in listing and "events=3" in listing
        # The poison alert (bicep/modules/alerts.bicep) finds the line the move wrote.
        alerts = (ROOT / "bicep" / "modules" / "alerts.bicep").read_text()
        poison_rule = alerts[alerts.index("resource poison "):alerts.index("resource webhookFailures ")]
        needles = re.findall(r'message has "([^"]+)"', poison_rule)
        assert needles and any(all(n in r.getMessage() for n in needles) for r in caplog.records)
        assert all(r in listing for r in poisoned)                  # the poison message names its events

        # The scripted failures are used up: the channel works again.
        assert "replayed 1 message" in hookops("poison", "replay", "--queue", settings.action_queue("teams"))
        wait_until(lambda: set(poisoned) <= set(rows_done("teams")))
        assert queue_count(app_env.connection_string, poison) == 0 and len(teams.cards) == 3


@pytest.mark.skipif(shutil.which("func") is None, reason="Azure Functions Core Tools (func) is not installed here")
def test_through_func_start(app_env, tmp_path):
    port = az.free_port()
    env = {**os.environ, "AzureWebJobsStorage": app_env.connection_string, "PRESERVICA_WEBHOOK_SECRET": SECRET}
    proc = subprocess.Popen(["func", "start", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/preservica/webhook"
        wait_until(lambda: _answers(url), timeout=120, step=0.5)
        assert "200" in hookops("send-test-event", "--url", url, "--ref", ref("via-func"))
        wait_until(lambda: ref("via-func") in rows_done(), timeout=60)
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.post(url, params={"challengeCode": "x"}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_one_send_test_event_runs_every_action(runner, app_env, monkeypatch, tmp_path):
    """Issue 3's done-when (and issue 11's transcribe): thumbnails in Blob, a Teams card per title, catalogue and
    transcript fragments, verified relay POSTs."""
    from azure.storage.blob import BlobServiceClient

    from handlers.clients import preservica
    from hookops.doubles.chat import ChatDouble
    from hookops.doubles.docintel import DocIntelDouble
    from hookops.doubles.preservica import PreservicaDouble, make_png
    from hookops.doubles.receivers import CatalogueDouble, RelayReceiver, TeamsDouble
    from hookops.doubles.speech import SpeechDouble, make_wav

    monkeypatch.chdir(tmp_path)  # no stray credentials.properties for pyPreservica
    preservica.forget_client()
    schema = "urn:example:catalogue"
    with PreservicaDouble(username="u", password="p", tenant="T") as pres, TeamsDouble() as teams, \
            CatalogueDouble() as cat, RelayReceiver() as relay, SpeechDouble(key="k") as speech, \
            DocIntelDouble(key="k", ca=speech.ca) as docintel, ChatDouble(key="k", ca=speech.ca) as chat:
        assets = {ref("io-aaaa"): ("Minute book 1887", "CAT/1"), ref("io-bbbb"): ("Harbour map", "CAT/2")}
        for r, (title, ident) in assets.items():
            pres.add_asset(r, title, thumbnail=make_png(), identifiers={"catalogue": ident},
                           bitstreams=[(f"{r}.tif", 2048), ("page.png", make_png(), "Access"),
                                                        (f"{r}.wav", make_wav(0.2), "Access")])
            cat.add_record(ident, f"<record xmlns='{schema}'><id>{ident}</id></record>")
        for name, value in {
            # describe reads what ocr wrote: it runs on a later event (MOVED here), as an archive would route it.
            "PRESERVICA_ROUTES": "FULL_TEXT_INDEXED=journal,thumbnail,teams,catalogue,relay,publish,transcribe,ocr,custody;"
                                 "MOVED=describe;*=journal",
            "PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p",
            "PRESERVICA_TENANT": "T", "PRESERVICA_PROTOCOL": "http", "TEAMS_WEBHOOK_URL": teams.url,
            "CATALOGUE_URL_TEMPLATE": cat.url_template, "CATALOGUE_SCHEMA": schema,
            "RELAY_URL": relay.url, "RELAY_SECRET": relay.secret, "NO_PROXY": "127.0.0.1,localhost",
            "SPEECH_ENDPOINT": speech.endpoint, "SPEECH_KEY": "k", "REQUESTS_CA_BUNDLE": speech.ca_bundle,
            "DOCINTEL_ENDPOINT": docintel.endpoint, "DOCINTEL_KEY": "k", "OPENAI_ENDPOINT": chat.endpoint,
            "OPENAI_KEY": "k", "DESCRIBE_DEPLOYMENT": "describer", "SSL_CERT_FILE": speech.ca_bundle,
        }.items():
            monkeypatch.setenv(name, value)

        out = hookops("send-test-event", "--url", webhook(runner), "--trigger", "FULL_TEXT_INDEXED",
                      *[a for r in assets for a in ("--ref", r)])
        assert ": 200 " in out
        first = [a for a in registry.names() if a != "describe"]
        wait_until(lambda: all(set(assets) <= set(rows_done(a)) for a in first), timeout=120, why=lambda: {
            a: {r.get("entityRef"): (r.get(f"{a}_state"), r.get(f"{a}_reason")) for r in journal.default().recent(10)}
            for a in first if not set(assets) <= set(rows_done(a))})   # ~8 s here; 60 s once ran out in CI, silently
        hookops("send-test-event", "--url", webhook(runner), "--trigger", "MOVED", *[a for r in assets for a in ("--ref", r)])
        wait_until(lambda: set(assets) <= set(rows_done("describe")), timeout=60)
        assert len(chat.calls) == 2 and all("Hello from the archive." in c.messages[1]["content"] for c in chat.calls)

        blobs = BlobServiceClient.from_connection_string(app_env.connection_string).get_container_client("thumbnails")
        assert sorted(b.name for b in blobs.list_blobs()) == sorted(f"{r}.png" for r in assets)
        card_text = json.dumps(teams.cards)
        assert all(title in card_text for title, _ in assets.values())
        assert all(sorted(s for s, _ in pres.metadata(r)) == sorted([schema, "urn:preservica-webhooks-azure:transcript:v1",
                                                                     "urn:preservica-webhooks-azure:ocr:v1"])
                   for r in assets)
        relay.wait_for_deliveries(2, timeout=120)
        assert {d.json()["event"]["entityRef"] for d in relay.deliveries} == set(assets) and not relay.disagreements
        assert all(d.json()["iiif"]["state"] == "published" for d in relay.deliveries)
        iiif = BlobServiceClient.from_connection_string(app_env.connection_string).get_container_client("iiif")
        assert all(iiif.get_blob_client(f"{r}/manifest.json").exists() for r in assets)
    preservica.forget_client()
