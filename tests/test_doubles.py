"""The HTTP doubles, proved with the real clients: pyPreservica, httpx, standardwebhooks, svix.

If these pass, a failure elsewhere that involves a double is the app's bug, not the double's.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from http.server import HTTPServer
from urllib.parse import quote

import httpx
import pytest
import standardwebhooks
from pyPreservica import EntityAPI, WebHooksAPI
from pyPreservica.common import EntityType, HTTPException, ReferenceNotFoundException, Thumbnail
from pyPreservica.webHooksAPI import TriggerType, WebHookHandler

from hookops.doubles.preservica import PreservicaDouble, bitstream_bytes, make_png
from hookops.doubles.receivers import (
    CatalogueDouble,
    RelayReceiver,
    TeamsDouble,
    adaptive_card_problem,
    verify_standard_webhook,
)

USER, PASSWORD, TENANT = "hook-user", "correct horse battery", "ARCHIVE"
DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
ASSET, FOLDER = "7fdea7e0-1e72-4fb1-aadb-d7f9ee6ed8c2", "0b7e0b6c-9a38-4b43-9f47-0c1b5a0a4a11"
PNG = make_png(rgb=(10, 120, 200))


def dc(title: str) -> str:
    return (f'<oai_dc:dc xmlns:oai_dc="{DC}" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:title>{title}</dc:title></oai_dc:dc>")


@pytest.fixture(autouse=True)
def decoy_credentials(tmp_path, monkeypatch):
    """pyPreservica falls back to PRESERVICA_* and ./credentials.properties: plant wrong ones in a
    private cwd, so any test that works proves the explicit arguments were used."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "credentials.properties").write_text(
        "[credentials]\nusername=decoy\npassword=decoy\ntenant=DECOY\nserver=127.0.0.1:9\ntwoFactorToken=JBSWY3DPEHPK3PXP\n")
    for name, value in {"PRESERVICA_USERNAME": "decoy", "PRESERVICA_PASSWORD": "decoy", "PRESERVICA_TENANT": "DECOY",
                        "PRESERVICA_SERVER": "127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PRESERVICA_2FA_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")   # requests/httpx must not send 127.0.0.1 to a proxy


@pytest.fixture
def pres():
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double:
        double.add_folder(FOLDER, "Accession 2024/17")
        double.add_asset(ASSET, "Letter from the harbour master", "Handwritten, 2 pages", security_tag="open",
                         parent=FOLDER, thumbnail=PNG,
                         bitstreams=[("letter-p1.tif", 1_048_576), ("letter-p2.tif", 2_000), ("letter.pdf", 734, "Access")],
                         identifiers={"code": "HM/1887/12", "isbn": "978-3-16-148410-0"})
        yield double


def client_args(double: PreservicaDouble, tmp_path, password: str = PASSWORD) -> dict:
    # credentials_path -> a file that does not exist: no twoFactorToken fallback from any file.
    return dict(username=USER, password=password, tenant=TENANT, server=double.server, protocol="http",
                credentials_path=str(tmp_path / "absent.properties"))


@pytest.fixture
def entity(pres, tmp_path):
    return EntityAPI(**client_args(pres, tmp_path))


# -- Preservica: EntityAPI -------------------------------------------------------------------------

def test_login_uses_explicit_arguments_not_env_or_credentials_file(pres, tmp_path):
    # Default credentials_path: the decoy file in cwd is read, but explicit arguments win.
    client = EntityAPI(username=USER, password=PASSWORD, tenant=TENANT, server=pres.server, protocol="http")
    assert client.major_version == 7 and client.minor_version == 7
    assert client.xip_ns == pres.xip_ns
    login = pres.received[0]
    assert (login.method, login.path) == ("POST", "/api/accesstoken/login")
    assert b"username=hook-user" in login.body and b"tenant=ARCHIVE" in login.body
    assert "ROLE_SDB_MANAGER_USER" in client.roles


def test_wrong_password_raises_runtime_error(pres, tmp_path):
    with pytest.raises(RuntimeError) as raised:
        EntityAPI(**client_args(pres, tmp_path, password="wrong"))
    assert raised.value.args[0] == 401


def test_asset_fields(entity, pres):
    asset = entity.asset(ASSET)
    assert (asset.reference, asset.title, asset.description, asset.security_tag, asset.parent) == (
        ASSET, "Letter from the harbour master", "Handwritten, 2 pages", "open", FOLDER)
    assert asset.metadata == {}
    folder = entity.folder(FOLDER)
    assert (folder.title, folder.parent, folder.description) == ("Accession 2024/17", None, None)
    # entity() is what a webhook handler calls with the event's entityType.
    assert entity.entity(EntityType.FOLDER, FOLDER).title == "Accession 2024/17"


def test_missing_asset_raises_reference_not_found(entity, pres):
    with pytest.raises(ReferenceNotFoundException) as raised:
        entity.asset("no-such-ref")
    assert raised.value.http_status_code == 404
    pres.remove_asset(ASSET)
    with pytest.raises(ReferenceNotFoundException):
        entity.asset(ASSET)


def test_identifiers_for_entity(entity):
    assert entity.identifiers_for_entity(entity.asset(ASSET)) == {
        ("code", "HM/1887/12"), ("isbn", "978-3-16-148410-0")}


def test_thumbnail_saved_to_file(entity, pres, tmp_path):
    asset = entity.asset(ASSET)
    target = tmp_path / "thumb.png"
    assert entity.thumbnail(asset, str(target), size=Thumbnail.MEDIUM) == str(target)
    assert target.read_bytes() == PNG
    assert ("GET", f"/api/content/thumbnail?id=sdb:IO|{ASSET}&size=medium") in pres.requests
    pres.add_asset("no-thumb", "No thumbnail")
    missing = tmp_path / "none.png"
    assert entity.thumbnail(entity.asset("no-thumb"), str(missing)) is None   # 404 -> None, no file
    assert not missing.exists()


def test_thumbnail_content_type(pres):
    with httpx.Client() as http:
        token = http.post(f"{pres.base_url}/api/accesstoken/login",
                          data={"username": USER, "password": PASSWORD, "tenant": TENANT}).json()["token"]
        r = http.get(f"{pres.base_url}/api/content/thumbnail", params={"id": f"sdb:IO|{ASSET}", "size": "large"},
                     headers={"Preservica-Access-Token": token})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == PNG


def test_bitstreams_for_asset(entity):
    bitstreams = list(entity.bitstreams_for_asset(entity.asset(ASSET)))
    # representations() returns a set: the order across Preservation/Access is not stable.
    assert sorted((b.filename, b.length) for b in bitstreams) == [
        ("letter-p1.tif", 1_048_576), ("letter-p2.tif", 2_000), ("letter.pdf", 734)]
    small = next(b for b in bitstreams if b.filename == "letter.pdf")
    assert small.representation.rep_type.value == "Access"
    assert small.fixity["SHA1"] == hashlib.sha1(bitstream_bytes("letter.pdf", 734)).hexdigest()
    assert entity.bitstream_bytes(small).getvalue() == bitstream_bytes("letter.pdf", 734)


def test_real_content_and_security_tag(entity, pres):
    wav = b"RIFF" + bytes(range(256)) * 3
    pres.add_asset("b7d1c1a4-7d3e-4f0e-9d38-5b1d2c3e4f50", "Interview", bitstreams=[("talk.wav", wav, "Access")])
    asset = entity.asset("b7d1c1a4-7d3e-4f0e-9d38-5b1d2c3e4f50")
    (bitstream,) = entity.bitstreams_for_asset(asset)
    assert bitstream.length == len(wav) and bitstream.fixity["SHA1"] == hashlib.sha1(wav).hexdigest()
    assert entity.bitstream_bytes(bitstream).getvalue() == wav
    assert asset.security_tag == "open"
    pres.set_security_tag(asset.reference, "closed")
    assert entity.asset(asset.reference).security_tag == "closed"


def test_add_metadata_then_replace_via_update(entity, pres):
    asset = entity.add_metadata(entity.asset(ASSET), DC, dc("First title"))   # returns the re-read entity
    assert list(asset.metadata.values()) == [DC]
    assert "First title" in entity.metadata_for_entity(asset, DC)

    # The replace path: the schema is already on the entity -> update_metadata PUTs that fragment.
    asset = entity.asset(ASSET)
    assert DC in asset.metadata_namespaces()
    asset = entity.update_metadata(asset, DC, dc("Second title"))
    fragments = pres.metadata(ASSET)
    assert len(fragments) == 1 and fragments[0][0] == DC and "Second title" in fragments[0][1]
    # Answered re-serialised, as a server may (indented, its own prefixes): the same document all the same.
    same = [(s, ET.canonicalize(x, strip_text=True)) for s, x in fragments]
    assert [(s, ET.canonicalize(x, strip_text=True)) for s, x in entity.all_metadata(asset)] == same
    assert [x for _, x in entity.all_metadata(asset)] != [x for _, x in fragments]
    puts = [p for m, p in pres.requests if m == "PUT"]
    posts = [p for m, p in pres.requests if m == "POST" and p.endswith("/metadata")]
    assert len(puts) == 1 and len(posts) == 1

    with pytest.raises(RuntimeError, match="Only existing schema"):   # update never adds
        entity.update_metadata(asset, "urn:other", "<x xmlns='urn:other'/>")
    assert entity.delete_metadata(asset, DC).metadata == {}
    assert pres.metadata(ASSET) == []


def test_seeded_fragment_is_visible_to_the_sdk(entity, pres):
    pres.add_metadata(ASSET, "urn:catalogue", "<record xmlns='urn:catalogue'><id>1</id></record>")
    asset = entity.asset(ASSET)
    assert asset.metadata_namespaces() == ["urn:catalogue"]
    assert entity.metadata_tag_for_entity(asset, "urn:catalogue", "id") == "1"


def test_fail_next_and_token_expiry(entity, pres):
    pres.fail_next(1, status=500)
    with pytest.raises(HTTPException) as raised:
        entity.asset(ASSET)
    assert raised.value.http_status_code == 500
    assert entity.asset(ASSET).reference == ASSET   # only the next one failed

    logins = pres.login_count
    pres.expire_tokens()
    assert entity.asset(ASSET).reference == ASSET   # SDK logs in again on 401 and retries
    assert pres.login_count == logins + 1


def test_latency_is_added_to_every_response(entity, pres):
    pres.latency = 0.1
    started = time.monotonic()
    entity.asset(ASSET)
    assert time.monotonic() - started >= 0.1


# -- Preservica: WebHooksAPI ------------------------------------------------------------------------

def test_webhooks_subscribe_list_unsubscribe(pres, tmp_path):
    hooks = WebHooksAPI(**client_args(pres, tmp_path))
    created = json.loads(hooks.subscribe("https://func.example/api/preservica?code=k", TriggerType.INDEXED,
                                         "s3cret-hex"))   # returns the raw JSON text
    sub_id = created["id"]
    assert pres.subscriptions[sub_id]["secret"] == "s3cret-hex"
    assert pres.subscriptions[sub_id]["triggerType"] == "FULL_TEXT_INDEXED"
    listed = hooks.subscriptions()
    assert [s["id"] for s in listed] == [sub_id] and "secret" not in listed[0]
    hooks.unsubscribe(sub_id)
    assert hooks.subscriptions() == [] and pres.subscriptions == {}
    with pytest.raises(HTTPException) as raised:
        hooks.unsubscribe(sub_id)
    assert raised.value.http_status_code == 404


class _ReferenceSubscriber(WebHookHandler):
    """pyPreservica's own sample receiver: an independent check of handshake and event format."""
    def do_WORK(self, document):
        self.server.documents.append(document)

    def log_message(self, *args):
        pass


@pytest.fixture
def reference_subscriber():
    server = HTTPServer(("127.0.0.1", 0), _ReferenceSubscriber)
    server.secret_key, server.documents = "ref-secret", []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_handshake_and_signed_event_accepted_by_the_sdk_reference_receiver(tmp_path, reference_subscriber):
    url = f"http://127.0.0.1:{reference_subscriber.server_address[1]}/hook"
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT, handshake=True) as double:
        double.add_asset(ASSET, "A", identifiers={"code": "HM/1887/12"})
        hooks = WebHooksAPI(**client_args(double, tmp_path))
        with pytest.raises(HTTPException) as raised:   # wrong secret -> challenge answer does not match
            hooks.subscribe(url, TriggerType.INDEXED, "not-the-secret")
        assert raised.value.http_status_code == 400 and double.subscriptions == {}

        sub_id = json.loads(hooks.subscribe(url, TriggerType.INDEXED, "ref-secret"))["id"]
        status, _ = double.notify(sub_id, [ASSET])
    assert status == 200
    [document] = reference_subscriber.documents
    assert document["subscriptionId"] == sub_id and document["trigger"] == "FULL_TEXT_INDEXED"
    assert document["events"] == [{"event": "FullTextIndexed", "entityType": "IO", "entityRef": ASSET,
                                   "identifiers": [{"code": "HM/1887/12"}]}]


# -- Teams -------------------------------------------------------------------------------------------

CARD = {"type": "message", "attachments": [{
    "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
    "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": [{"type": "TextBlock", "text": "Indexed"}]}}]}


def test_teams_accepts_adaptive_card_with_202():
    with TeamsDouble() as teams, httpx.Client() as http:
        assert "sig=" in teams.url
        r = http.post(teams.url, json=CARD)
        assert (r.status_code, r.content) == (202, b"")
        assert teams.wait_for(1)[0].json() == CARD
        assert teams.cards == [CARD["attachments"][0]["content"]]
        assert http.post(teams.url.replace(teams.sig, "forged"), json=CARD).status_code == 401
        bad = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.thumbnail"}]}
        r = http.post(teams.url, json=bad)
        assert r.status_code == 400 and "contentType" in r.json()["error"]["message"]
        assert len(teams.cards) == 1
        big = {**CARD, "attachments": [{**CARD["attachments"][0], "content": {
            **CARD["attachments"][0]["content"], "body": [{"type": "TextBlock", "text": "x" * 29 * 1024}]}}]}
        assert http.post(teams.url, json=big).status_code == 202   # over 28 KB: a 202, and no card
        assert len(teams.cards) == 1 and teams.dropped == 1


def test_teams_scripted_429_then_accepts():
    with TeamsDouble() as teams, httpx.Client() as http:
        teams.respond_with(429, {"Retry-After": "3"}, times=2)
        first, second, third = (http.post(teams.url, json=CARD) for _ in range(3))
        assert (first.status_code, first.headers["retry-after"]) == (429, "3")
        assert second.status_code == 429 and third.status_code == 202
        assert len(teams.wait_for(3)) == 3 and len(teams.cards) == 1


def test_adaptive_card_problem():
    assert adaptive_card_problem(json.dumps(CARD).encode()) is None
    assert adaptive_card_problem(b"{").startswith("body is not JSON")
    assert "AdaptiveCard" in adaptive_card_problem(json.dumps(
        {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                             "content": {"type": "MessageCard"}}]}).encode())


# -- Catalogue ---------------------------------------------------------------------------------------

def test_catalogue_200_and_404():
    xml = "<records><record><id>HM/1887/12</id><title>Harbour</title></record></records>"
    with CatalogueDouble() as cat, httpx.Client() as http:
        cat.add_record("HM/1887/12", xml)
        assert cat.url_template.endswith("/records/{identifier}")
        r = http.get(cat.url_template.format(identifier=quote("HM/1887/12", safe="")))
        assert r.status_code == 200 and r.text == xml and r.headers["content-type"].startswith("application/xml")
        assert http.get(cat.url_template.format(identifier="unknown")).status_code == 404
        assert [x.method for x in cat.received] == ["GET", "GET"]


# -- Relay (Standard Webhooks) -----------------------------------------------------------------------

def _signed(secret: str, body: str, msg_id: str = "msg_1") -> dict:
    now = datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, now, body),
            "content-type": "application/json"}


def test_relay_accepts_standardwebhooks_signature_and_rejects_tampering():
    body = json.dumps({"type": "preservica.full_text_indexed", "data": {"entityRef": ASSET}})
    with RelayReceiver() as relay, httpx.Client() as http:
        assert http.post(relay.url, content=body, headers=_signed(relay.secret, body)).status_code == 204
        tampered = body.replace(ASSET, "someone-else")
        assert http.post(relay.url, content=tampered, headers=_signed(relay.secret, body)).status_code == 401
        other = "whsec_" + "A" * 43 + "="
        assert http.post(relay.url, content=body, headers=_signed(other, body)).status_code == 401
        assert [d.json()["data"]["entityRef"] for d in relay.wait_for_deliveries(1)] == [ASSET]
        assert len(relay.received) == 3 and relay.disagreements == []

        relay.respond_with(503)
        assert http.post(relay.url, content=body, headers=_signed(relay.secret, body)).status_code == 503
        relay.gone()
        assert http.post(relay.url, content=body, headers=_signed(relay.secret, body)).status_code == 410
        assert len(relay.deliveries) == 1


def test_own_verifier_matches_published_test_vector():
    # The example signature in the Standard Webhooks spec (also in svix's own tests), checked without either library.
    secret, body = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b'{"test": 2432232314}'
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    assert verify_standard_webhook(secret, body, headers, now=1614265330)
    assert not verify_standard_webhook(secret, body + b" ", headers, now=1614265330)
    assert not verify_standard_webhook(secret, body, headers, now=1614265330 + 301)   # too old


# -- lifecycle ---------------------------------------------------------------------------------------

def test_stop_closes_idle_keep_alive_connections_and_the_port():
    teams = TeamsDouble().start()
    port = teams.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", teams.url.removeprefix(teams.base_url), body=json.dumps(CARD),
                 headers={"Content-Type": "application/json"})
    assert conn.getresponse().read() == b""   # connection left open (HTTP/1.1 keep-alive)
    started = time.monotonic()
    teams.stop()
    assert time.monotonic() - started < 30   # a hang guard: stop must not wait for the idle connection
    conn.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
