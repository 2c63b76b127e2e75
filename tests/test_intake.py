"""The HTTP function called as the host calls it, against real Azurite."""
import base64
import json

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from handlers import intake
from handlers.core import envelope, messages, settings, signature
from hookops.doubles.deliveries import delivery, encode
from tests.support.intake import request, signed
from tests.support.paths import SECRET


def queued(conn: str) -> list[dict]:
    q = QueueClient.from_connection_string(conn, settings.DELIVERY_QUEUE)
    try:
        return [json.loads(base64.b64decode(m.content)) for m in q.peek_messages(max_messages=32)]
    except Exception:
        return []


def test_challenge_answers_hmac_of_code(app_env):
    resp = intake.handle(request(params={"challengeCode": "code-123"}))
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert json.loads(resp.get_body()) == {"challengeCode": "code-123",
                                          "challengeResponse": signature.challenge_response(SECRET, "code-123")}


def test_every_answer_is_json_never_sniffed_nor_cached(app_env):
    for resp in (intake.handle(request(params={"challengeCode": "code-123"})),
                 intake.handle(request(encode(delivery()), {})),                     # 401
                 intake.handle(signed(b'{"no": "events"}')),                          # 400
                 intake.handle(signed(encode(delivery(refs=["a"]))))):                # 200
        assert resp.mimetype == "application/json"
        assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Cache-Control"] == "no-store"


def test_oversized_challenge_code_is_400(app_env):
    assert intake.handle(request(params={"challengeCode": "x" * 600})).status_code == 400


def test_signed_delivery_is_queued_base64_then_200(app_env):
    body = encode(delivery(refs=["a", "b"]))
    resp = intake.handle(signed(body, header="preservica-signature"))
    assert resp.status_code == 200, resp.get_body()
    [msg] = queued(app_env.connection_string)
    assert msg["delivery"] == json.loads(body) and msg["id"] == envelope.delivery_id(body)
    assert json.loads(resp.get_body())["events"] == 2


@pytest.mark.parametrize("headers", [{}, {"Preservica-Signature": "0" * 64}, {"Preservica-Signature": "nothex"}])
def test_bad_or_missing_signature_is_401_and_nothing_queued(app_env, headers):
    resp = intake.handle(request(encode(delivery()), headers))
    assert resp.status_code == 401
    assert b"0" * 10 not in resp.get_body() and SECRET.encode() not in resp.get_body()
    assert queued(app_env.connection_string) == []


def test_signed_but_invalid_body_is_400_and_kept(app_env):
    body = b'{"no": "events"}'
    resp = intake.handle(signed(body))
    assert resp.status_code == 400 and b"events" in resp.get_body()
    blobs = BlobServiceClient.from_connection_string(app_env.connection_string)
    kept = blobs.get_blob_client(settings.REJECTED_CONTAINER, envelope.delivery_id(body) + ".bin")
    assert kept.download_blob().readall() == body
    assert queued(app_env.connection_string) == []


def test_oversized_body_is_413_before_signature(app_env, monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "100")
    resp = intake.handle(request(b"x" * 101))  # unsigned: 413 comes first
    assert resp.status_code == 413


def test_large_delivery_uses_claim_check(app_env):
    body = encode(delivery(refs=[f"ref-{i:05d}" for i in range(1000)]))
    assert len(body) > messages.MAX_QUEUE_PAYLOAD
    assert intake.handle(signed(body)).status_code == 200
    [msg] = queued(app_env.connection_string)
    blobs = BlobServiceClient.from_connection_string(app_env.connection_string)
    stored = blobs.get_blob_client(settings.DELIVERY_CONTAINER, msg["blob"]).download_blob().readall()
    assert json.loads(stored) == json.loads(body)


def test_previous_secret_accepted_during_rotation(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_WEBHOOK_SECRET_PREVIOUS", "old-secret")
    body = encode(delivery())
    assert intake.handle(signed(body, secret="old-secret")).status_code == 200
    assert intake.handle(signed(body, secret="never-configured")).status_code == 401


def test_missing_secret_is_503_not_401(app_env, monkeypatch):
    monkeypatch.delenv("PRESERVICA_WEBHOOK_SECRET")
    resp = intake.handle(signed(encode(delivery())))
    assert resp.status_code == 503 and resp.headers.get("Retry-After")


def test_unresolved_key_vault_reference_counts_as_missing(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_WEBHOOK_SECRET", "@Microsoft.KeyVault(SecretUri=https://v/secrets/x)")
    assert intake.handle(signed(encode(delivery()), secret="@Microsoft.KeyVault(SecretUri=https://v/secrets/x)")).status_code == 503


def test_storage_down_is_503_never_200(app_env, monkeypatch):
    from handlers.clients.storage import azurite_connection_string
    from hookops.azurite import free_port
    dead = azurite_connection_string(free_port(), free_port(), free_port())
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    resp = intake.handle(signed(encode(delivery())))
    assert resp.status_code == 503 and resp.headers.get("Retry-After")


def test_a_netrc_entry_for_the_storage_host_does_not_replace_its_authorization(app_env, monkeypatch, tmp_path):
    """requests with trust_env on reads ~/.netrc on every request and, for a matching host, sends Basic auth in
    place of the storage client's Authorization header (Session.prepare_request): the write is refused and
    intake answers 503. The storage clients read the environment once, without .netrc (the CA bundle, the runner's
    and Preservica's clients: tests/test_http_environment.py)."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    resp = intake.handle(signed(encode(delivery(refs=["a"]))))
    assert resp.status_code == 200, resp.get_body()
    monkeypatch.delenv("NETRC")   # the test's own client reads it (trust_env on) and would be refused
    assert len(queued(app_env.connection_string)) == 1


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_proxy_variables_still_reach_the_storage_clients(app_env, monkeypatch, variable):
    """Read once per client now, not on every request: a proxy in the environment is still used (nothing
    listens on this one, so the put fails and intake answers 503), and NO_PROXY still exempts a host."""
    from hookops.azurite import free_port
    for v in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv(variable, f"http://127.0.0.1:{free_port()}")
    assert intake.handle(signed(encode(delivery(refs=["a"])))).status_code == 503
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert intake.handle(signed(encode(delivery(refs=["b"])))).status_code == 200
