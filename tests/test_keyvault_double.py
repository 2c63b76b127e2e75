"""The Key Vault double works with the real SecretClient + DefaultAzureCredential, built as the app builds them."""
from __future__ import annotations

import os
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from hookops.doubles.keyvault import KeyVaultDouble

CLIENT_ID = "some-id"


@pytest.fixture
def kv(monkeypatch):
    with KeyVaultDouble() as double:
        double.patch_env(monkeypatch)
        monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
        yield double


def make_client(kv: KeyVaultDouble, **kwargs) -> SecretClient:
    # Exactly what the app does; no exclude_* options, no verify_challenge_resource=False.
    credential = DefaultAzureCredential(managed_identity_client_id=os.environ.get("AZURE_CLIENT_ID"))
    return SecretClient(kv.vault_url, credential, **kwargs)


def test_reads_secret_through_managed_identity(kv):
    version = kv.set_secret("teams-url", "https://example.invalid/hook?sig=abc")
    client = make_client(kv)

    secret = client.get_secret("teams-url")

    assert secret.value == "https://example.invalid/hook?sig=abc"
    assert secret.properties.version == version
    assert kv.token_requests == [{"client_id": CLIENT_ID, "resource": kv.resource}]


def test_token_is_cached_but_secrets_are_read_each_time(kv):
    kv.set_secret("s", "v1")
    client = make_client(kv)
    client.get_secret("s")
    client.get_secret("s")
    assert kv.secret_reads["s"] == 2
    assert len(kv.token_requests) == 1


def test_absent_secret_is_not_found(kv):
    client = make_client(kv)
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("nope")
    kv.set_secret("gone", "x")
    kv.delete_secret("gone")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("gone")


def test_new_version_is_seen_and_old_version_still_readable(kv):
    first = kv.set_secret("s", "old")
    client = make_client(kv)
    assert client.get_secret("s").value == "old"
    kv.set_secret("s", "new")
    assert client.get_secret("s").value == "new"
    assert client.get_secret("s", version=first).value == "old"


def test_sdk_can_write_secrets(kv):
    client = make_client(kv)
    client.set_secret("written", "by-sdk")
    assert client.get_secret("written").value == "by-sdk"


def test_unauthenticated_and_foreign_tokens_get_401_with_challenge(kv):
    kv.set_secret("s", "v")
    url = kv.vault_url + "secrets/s?api-version=7.5"
    for headers in ({}, {"Authorization": "Bearer not-issued-here"}):
        response = requests.get(url, headers=headers, verify=kv.ca_bundle, timeout=10)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer authorization="')
        assert "resource=" in response.headers["WWW-Authenticate"]
        assert "value" not in response.json()
    assert kv.secret_reads["s"] == 0
    # The log keeps headers but never the Authorization value.
    assert kv.requests[-1][2]["Authorization"] == "<redacted>"


def test_identity_endpoint_requires_identity_header(kv):
    response = requests.get(kv.identity_env["IDENTITY_ENDPOINT"], params={"resource": "x"},
                            headers={"X-IDENTITY-HEADER": "wrong"}, timeout=10)
    assert response.status_code == 401
    assert kv.token_requests == []


def test_unavailable_vault_fails_fast_then_recovers(kv):
    kv.set_secret("s", "v")
    client = make_client(kv, retry_total=0)
    assert client.get_secret("s").value == "v"

    kv.set_available(False)
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("s")
    assert info.value.status_code == 503
    assert time.monotonic() - started < 60   # a hang guard: retry_total=0, so no backoff

    kv.set_available(False, refuse_connections=True)
    started = time.monotonic()
    with pytest.raises(ServiceRequestError):
        client.get_secret("s")
    assert time.monotonic() - started < 60   # a hang guard: retry_total=0, so no backoff

    kv.set_available(True)
    assert client.get_secret("s").value == "v"


def test_no_secret_or_token_in_request_log(kv):
    kv.set_secret("s", "very-secret-value")
    client = make_client(kv)
    client.get_secret("s")
    client.set_secret("t", "another-secret-value")
    logged = repr(kv.requests)
    assert "very-secret-value" not in logged and "another-secret-value" not in logged
    assert "Bearer " not in logged
