"""Secrets from Key Vault through the real SecretClient and DefaultAzureCredential (managed identity)."""
import json

import azure.functions as func

from handlers import intake
from handlers.clients import secrets
from handlers.core import signature
from hookops.doubles.deliveries import delivery, encode


def post(body: bytes, secret: str) -> func.HttpResponse:
    req = func.HttpRequest("POST", "http://h/api/preservica/webhook", body=body,
                           headers={"Preservica-Signature": signature.sign(secret, body)})
    return intake.handle(req)


def test_webhook_secret_comes_from_key_vault_not_app_settings(keyvault):
    body = encode(delivery())
    assert post(body, "vault-secret").status_code == 200
    assert post(body, "app-setting-value-must-be-ignored").status_code == 401
    assert keyvault.token_requests[-1]["client_id"] == "11111111-2222-3333-4444-555555555555"


def test_challenge_uses_vault_secret(keyvault):
    req = func.HttpRequest("POST", "http://h/api/preservica/webhook", body=b"", params={"challengeCode": "c1"})
    assert json.loads(intake.handle(req).get_body())["challengeResponse"] == signature.challenge_response("vault-secret", "c1")


def test_reads_are_cached_between_requests(keyvault):
    body = encode(delivery())
    for _ in range(3):
        assert post(body, "vault-secret").status_code == 200
    assert keyvault.secret_reads["preservica-webhook-secret"] == 1
    assert keyvault.secret_reads["preservica-webhook-secret-previous"] == 1  # absent, and that is cached too


def test_rotation_seen_after_cache_expiry_and_previous_accepted(keyvault):
    now = [0.0]
    source = secrets.SecretSource(clock=lambda: now[0])
    assert source.webhook_secrets() == ["vault-secret"]
    keyvault.set_secret("preservica-webhook-secret", "new-secret")
    keyvault.set_secret("preservica-webhook-secret-previous", "vault-secret")
    assert source.webhook_secrets() == ["vault-secret"]          # within the TTL: cached
    now[0] += source.ttl + 1
    assert source.webhook_secrets() == ["new-secret", "vault-secret"]


def test_vault_down_with_nothing_cached_is_503(keyvault):
    keyvault.set_available(False, refuse_connections=True)
    resp = post(encode(delivery()), "vault-secret")
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert b"vault-secret" not in resp.get_body()


def test_vault_down_after_a_read_uses_the_cached_value(keyvault):
    now = [0.0]
    source = secrets.SecretSource(clock=lambda: now[0])
    assert source.webhook_secrets() == ["vault-secret"]
    keyvault.set_available(False)
    now[0] += source.ttl + 1
    assert source.webhook_secrets() == ["vault-secret"]


def test_missing_vault_secret_is_503_and_names_it(keyvault, caplog):
    keyvault.delete_secret("preservica-webhook-secret")
    assert post(encode(delivery()), "vault-secret").status_code == 503
    assert "preservica-webhook-secret" in caplog.text and "vault-secret'" not in caplog.text
