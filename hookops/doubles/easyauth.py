"""A front end that behaves as App Service built-in authentication ("Easy Auth") is documented to, put in
front of a local app (the runner) so `hookops verify-deployment` can be tried end to end.

What it follows, from Microsoft's documentation:
- Requests reach the app with the caller's claims in X-MS-CLIENT-PRINCIPAL (base64 JSON: auth_typ,
  claims [{typ, val}], name_typ, role_typ), -ID, -NAME and -IDP; "External requests aren't allowed to set
  these headers, so they're present only if set by App Service" (learn.microsoft.com/azure/app-service/
  configure-authentication-user-identities): a client's own are removed.
- globalValidation.requireAuthentication with unauthenticatedClientAction RedirectToLoginPage sends an
  unauthenticated request to the login page; excludedPaths are "the paths for which unauthenticated flow
  would not be redirected to the login page" (learn.microsoft.com/javascript/api/@azure-rest/arm-appservice/
  globalvalidation; GlobalValidation in azure-mgmt-web).
- The login endpoint is /.auth/login/<provider>, aad for Entra ID (learn.microsoft.com/azure/app-service/
  configure-authentication-customize-sign-in-out). Inferred: the exact answer is a 302 whose Location is
  /.auth/login/aad?post_login_redirect_uri=<path> and the session cookie is AppServiceAuthSession; a real
  deployment confirms both with `hookops verify-deployment` (console-anonymous, security-headers).
Sign-in itself is simulated: `sign_in(name, roles)` returns a session cookie value, and requests bearing
it get the principal injected. The misconfigurations a deployment can have are switches: `excluded`
(e.g. the webhook route left out), `require_auth=False` (anonymous passes), `strip_principal=False`
(client principal headers pass through).
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from urllib.parse import quote, urlsplit

from .base import HttpDouble, Received, Reply

PRINCIPAL_PREFIX = "x-ms-client-principal"   # X-MS-CLIENT-PRINCIPAL, -ID, -NAME, -IDP
TOKEN_PREFIX = "x-ms-token-"                 # provider tokens, set by the platform only as well
SESSION_COOKIE = "AppServiceAuthSession"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade",
              "proxy-connection"}
DEFAULT_EXCLUDED = ("/api/preservica/webhook", "/api/health")   # as bicep/modules/consoleauth.bicep


def principal_header(name: str, oid: str, roles: tuple[str, ...]) -> str:
    doc = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
           "claims": [{"typ": "name", "val": name}, {"typ": OID, "val": oid}] + [{"typ": "roles", "val": r} for r in roles]}
    return base64.b64encode(json.dumps(doc).encode()).decode()


class EasyAuthFront(HttpDouble):
    def __init__(self, upstream: str, *, excluded: tuple[str, ...] = DEFAULT_EXCLUDED, require_auth: bool = True,
                 strip_principal: bool = True, timeout: float = 60.0):
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.excluded, self.require_auth, self.strip_principal = tuple(excluded), require_auth, strip_principal
        self.timeout = timeout
        self.forwarded: list[Received] = []   # what the app behind was sent
        self._sessions: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._client = None

    def sign_in(self, name: str = "operator@example.org", roles: tuple[str, ...] = ("Console.Operator",)) -> str:
        """Simulate a completed sign-in; the session cookie's value."""
        oid = str(uuid.uuid4())
        headers = {"x-ms-client-principal": principal_header(name, oid, roles), "x-ms-client-principal-id": oid,
                   "x-ms-client-principal-name": name, "x-ms-client-principal-idp": "aad"}
        cookie = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[cookie] = headers
        return cookie

    def _session(self, headers: dict[str, str]) -> dict[str, str] | None:
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                with self._lock:
                    return self._sessions.get(value)
        return None

    def _excluded(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.excluded)

    def handle(self, request: Received) -> Reply:
        path = urlsplit(request.path).path
        if path.startswith("/.auth/"):
            return Reply(401, {"Content-Type": "text/plain"}, b"simulated sign-in: EasyAuthFront.sign_in()")
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        if self.strip_principal:
            headers = {k: v for k, v in headers.items() if not k.startswith((PRINCIPAL_PREFIX, TOKEN_PREFIX))}
        session = self._session(request.headers)
        if session:
            headers.update(session)
        elif self.require_auth and not self._excluded(path):
            return Reply(302, {"Location": f"/.auth/login/aad?post_login_redirect_uri={quote(request.path, safe='')}",
                               "Content-Type": "text/html"}, b"")
        return self._forward(request, headers)

    def _forward(self, request: Received, headers: dict[str, str]) -> Reply:
        import httpx
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
            self.forwarded.append(Received(request.method, request.path, headers, request.body))
        resp = self._client.request(request.method, self.upstream + request.path, headers=headers,
                                    content=request.body)
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return Reply(resp.status_code, out, resp.content)

    def stop(self) -> None:
        super().stop()
        if self._client is not None:
            self._client.close()
            self._client = None
