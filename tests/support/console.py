"""Requests to the operator console as App Service authentication and a local run present them."""
import base64
import json
import os
import re

import azure.functions as func

from handlers.console import auth, routes
from handlers.core import hosting

AZURE = {"WEBSITE_INSTANCE_ID": "abc123", "WEBSITE_AUTH_ENABLED": "True"}
LOCAL_URL = "http://127.0.0.1:7071/api/console/"


def local_env() -> dict:
    """What `hookops run` gives the app: local console mode on, development storage (Azurite)."""
    return {hosting.LOCAL_CONSOLE: "1", "AzureWebJobsStorage": os.environ["AzureWebJobsStorage"]}


def principal(*roles: str, oid: str = "oid-1") -> str:
    claims = [{"typ": "roles", "val": r} for r in roles] + [
        {"typ": "name", "val": "archivist@example.org"},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid}]
    doc = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def request(path: str = "overview", method: str = "GET", url: str | None = None, headers: dict | None = None,
            body: bytes = b"", params: dict | None = None) -> func.HttpRequest:
    url = url or f"https://app.example.org/api/console/{path}"
    if url.startswith(LOCAL_URL) and "cookie" not in {k.lower() for k in (headers or {})}:
        headers = {**(headers or {}), "Cookie": f"{auth.LOCAL_COOKIE}={routes.local_token()}"}  # the link's token
    return func.HttpRequest(method, url, headers=headers or {}, params=params or {}, body=body,
                            route_params={"path": path})


def azure_get(path: str, *roles: str, **kw) -> func.HttpResponse:
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(*roles), "Host": "app.example.org"} if roles else {}
    return routes.handle(request(path, headers=headers, **kw), AZURE)


def form_for(role: str) -> tuple[str, str]:
    """A session cookie and the CSRF token the poison page gives `role`."""
    resp = azure_get("poison", role)
    sid = re.search(r"console_sid=([^;]+)", resp.headers["Set-Cookie"])[1]
    return sid, auth.csrf_token(routes.csrf_key(), auth.parse_principal(principal(role)), sid)


def operator_get(path: str, role: str = auth.OPERATOR) -> func.HttpResponse:
    return azure_get(path, role)


def operator_post(path: str, fields: dict, role: str = auth.OPERATOR, csrf: bool = True) -> func.HttpResponse:
    """A form posted as the console's pages post it: session cookie, CSRF token (unless `csrf` is off), Origin."""
    from urllib.parse import urlencode
    sid, token = form_for(role)
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(role), "Host": "app.example.org", "Origin": "https://app.example.org",
               "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"console_sid={sid}"}
    body = urlencode({**fields, **({"csrf": token} if csrf else {})}).encode()
    return routes.handle(request(path, "POST", headers=headers, body=body), AZURE)


def seen_digest(page: bytes) -> str:
    """The digest of the asset's description a draft's page was shown with (its form's `seen` field)."""
    return re.search(rb'name="seen" value="([0-9a-f]{64})"', page)[1].decode()


def review_form(page: bytes) -> dict:
    """The hidden fields of a draft page's accept form as the browser posts them: `seen` (the description's
    digest) and `version` (which draft the page showed)."""
    return {"seen": seen_digest(page), "version": draft_version(page)}


def draft_version(page: bytes) -> str:
    """Which draft a page showed (its forms' `version` field)."""
    return re.search(rb'name="version" value="([0-9a-f]{64})"', page)[1].decode()
