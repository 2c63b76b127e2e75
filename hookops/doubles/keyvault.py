"""Local Key Vault (secrets subset) + App Service managed-identity endpoint for tests.

The real ``SecretClient`` and ``DefaultAzureCredential`` talk to it unchanged: put ``identity_env``
into the environment (or call ``patch_env(monkeypatch)``) and use ``vault_url``.
The double never logs or prints token or secret values.

Sources of its shapes: the token endpoint follows azure-identity's App Service managed identity client
(azure-sdk-for-python, sdk/identity/azure-identity/azure/identity/_credentials/app_service.py: GET
IDENTITY_ENDPOINT?resource=..&api-version=2019-08-01 with X-IDENTITY-HEADER); the vault follows the
Key Vault REST reference "Get Secret" (learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret)
and "Set Secret", and the bearer challenge azure-keyvault-secrets answers (its
_shared/challenge_auth_policy.py). Error codes and message texts are inferred: the app reads only statuses.
"""
from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

from .tls import HttpsDouble, JsonHandler, Server

# Env vars that would make DefaultAzureCredential pick something other than App Service managed identity.
CONFLICTING_ENV = (
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS", "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
)


def _error(code: str, message: str) -> dict:
    # {"error": {"code", "message"}}: Key Vault's error response (Get Secret reference, "KeyVaultError").
    return {"error": {"code": code, "message": message}}


class _Handler(JsonHandler):
    timeout = 10  # a stalled client must not pin a worker thread forever
    # protocol_version stays HTTP/1.0: one request per connection, so "stop listening" really refuses.


class _IdentityHandler(_Handler):
    def do_GET(self) -> None:
        d: KeyVaultDouble = self.server.double
        url = urlsplit(self.path)
        if url.path != "/msi/token":
            return self._send(404, {"statusCode": 404, "message": "not found"})
        if not hmac.compare_digest(self.headers.get("X-IDENTITY-HEADER", ""), d._identity_header):
            return self._send(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER missing or wrong"})
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        resource, client_id = query.get("resource", ""), query.get("client_id")
        token = secrets.token_urlsafe(24)
        with d._lock:
            d.token_requests.append({"client_id": client_id, "resource": resource})
            d._tokens[token] = resource
        # App Service returns expires_on as a string of epoch seconds (app_service.py parses it so); the
        # other fields as in learn.microsoft.com/azure/app-service/overview-managed-identity (REST endpoint).
        self._send(200, {"access_token": token, "expires_on": str(int(time.time()) + 3600),
                         "resource": resource, "token_type": "Bearer", "client_id": client_id or "system"})


class _VaultHandler(_Handler):
    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        d: KeyVaultDouble = self.server.double
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        with d._lock:
            d.requests.append((method, self.path, headers))
            available, authorized = d._available, self._authorized(d)
        if not available:  # inferred: how an outage looks (the SDK retries 503, then raises HttpResponseError)
            return self._send(503, _error("ServiceUnavailable", "The double is set unavailable."))
        if not authorized:  # the challenge azure-keyvault-secrets' challenge_auth_policy.py answers with a token
            return self._send(401, _error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
                              {"WWW-Authenticate": d._challenge})
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        if parts[0] != "secrets" or len(parts) not in (2, 3) or (method == "PUT" and len(parts) == 3):
            return self._send(400, _error("BadParameter", "Unsupported path for this double."))
        name, version = parts[1], (parts[2] if len(parts) == 3 else "")
        if method == "PUT":
            version = d.set_secret(name, json.loads(body)["value"])
        else:
            with d._lock:
                d.secret_reads[name] += 1
        bundle = d._bundle(name, version)
        if bundle is None:  # 404 SecretNotFound (Get Secret reference); the message text is inferred
            return self._send(404, _error("SecretNotFound",
                                          f"A secret with (name/id) {name} was not found in this key vault."))
        self._send(200, bundle)

    def _authorized(self, d: KeyVaultDouble) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and d._tokens.get(token) == d.resource


class KeyVaultDouble(HttpsDouble):
    """HTTPS Key Vault on 127.0.0.1 plus an HTTP App Service token endpoint, each on a free port.

    ``ca``: share one ``trustme.CA`` between doubles when a test needs a single REQUESTS_CA_BUNDLE.
    """
    HANDLER = _VaultHandler
    PREFIX = "kv-double-"

    def __init__(self, ca: trustme.CA | None = None) -> None:
        self._ca = ca or trustme.CA()
        self._identity_header = secrets.token_urlsafe(16)
        self._lock = threading.Lock()
        self._secrets: dict[str, list[tuple[str, str, int]]] = {}  # name -> [(version, value, created)], newest last
        self._tokens: dict[str, str] = {}  # issued token -> resource it was issued for
        self._available = True
        self._identity: Server | None = None
        self._port = 0   # the vault's, kept while it refuses connections (set_available)
        self.secret_reads: Counter[str] = Counter()  # authorized GETs per secret name (hits and misses)
        self.token_requests: list[dict] = []  # one {"client_id", "resource"} per token issued
        self.requests: list[tuple[str, str, dict]] = []  # vault (method, path, headers); Authorization redacted

    # lifecycle
    def start(self) -> KeyVaultDouble:
        super().start()
        self._port = self._server.server_address[1]
        self._identity = Server(0, _IdentityHandler, self)
        return self

    def stop(self) -> None:
        if self._identity:
            self._identity.close()
            self._identity = None
        super().stop()

    # connection facts
    @property
    def vault_url(self) -> str:
        # An IP host, not "localhost": the SDK needs the host to end with ".<challenge resource host>".
        return f"https://127.0.0.1:{self._port}/"

    @property
    def resource(self) -> str:
        """The challenge resource (token audience). "127.0.0.1:PORT" ends with ".0.0.1:PORT", which is
        what the SDK's challenge-resource check requires; no "localhost" vault host can pass it."""
        return f"https://0.0.1:{self._port}"

    @property
    def _challenge(self) -> str:
        return ('Bearer authorization="https://login.localhost/00000000-0000-0000-0000-000000000000", '
                f'resource="{self.resource}"')

    @property
    def identity_env(self) -> dict[str, str]:
        return {
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{self._identity.server_address[1]}/msi/token",
            "IDENTITY_HEADER": self._identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,  # azure-core's RequestsTransport (requests) reads this, not SSL_CERT_FILE
            "NO_PROXY": "127.0.0.1,localhost",  # a developer's HTTPS_PROXY must not capture local calls
        }

    def patch_env(self, monkeypatch) -> None:
        """Point DefaultAzureCredential at this double; drop env that would select another credential."""
        for name in CONFLICTING_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in self.identity_env.items():
            monkeypatch.setenv(name, value)

    def accepts(self, audience: str):
        """A check for another double's `accept_token`: the token was issued here for `audience`."""
        def check(token: str) -> bool:
            with self._lock:
                return self._tokens.get(token) == audience
        return check

    def issued(self) -> list[str]:
        """Every token issued so far (for a test to look for in logs; never printed)."""
        with self._lock:
            return list(self._tokens)

    # state
    def set_secret(self, name: str, value: str) -> str:
        """Add a new version (becomes current); returns the version id."""
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets.setdefault(name, []).append((version, value, int(time.time())))
        return version

    def delete_secret(self, name: str) -> None:
        with self._lock:
            self._secrets.pop(name, None)

    def set_available(self, available: bool, *, refuse_connections: bool = False) -> None:
        """Unavailable: every vault request gets 503, or with refuse_connections the port stops listening."""
        with self._lock:
            self._available = available
        if not available and refuse_connections and self._server:
            self._server.close()
            self._server = None
        elif available and self._server is None and self._identity and self._certs:
            self._server = Server(self._port, self.HANDLER, self, self._certs.context)  # same port, same vault_url

    def _bundle(self, name: str, version: str) -> dict | None:
        with self._lock:
            versions = self._secrets.get(name, [])
            found = [v for v in versions if v[0] == version] if version else versions[-1:]
        if not found:
            return None
        version, value, created = found[0]
        # The "Get Secret" reference's sample response: value, id (vault/secrets/name/version), attributes.
        return {"value": value, "id": f"{self.vault_url}secrets/{name}/{version}", "tags": {},
                "attributes": {"enabled": True, "created": created, "updated": created,
                               "recoveryLevel": "Recoverable+Purgeable"}}
