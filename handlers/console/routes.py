"""`/api/console/...`: the requests of the console's HTTP function (function.py), signed in by the
platform (see auth.py), routed here. Loaded on the first console request, not with function_app."""
from __future__ import annotations

import logging
import os
import re
from urllib.parse import parse_qs

import azure.functions as func

from ..clients.shared import Shared
from ..core import settings
from . import auth
from .context import BASE, Ctx

log = logging.getLogger(__name__)
MAX_FORM = 16384   # a reviewed description (DESCRIBE_MAX_CHARS, percent-encoded) fits
KEY_BLOB = "csrf-key"


def handle(req: func.HttpRequest, env=None) -> func.HttpResponse:
    from azure.core.exceptions import AzureError

    from . import render
    env = os.environ if env is None else env
    headers = {k.lower(): v for k, v in req.headers.items()}
    path = str((req.route_params or {}).get("path") or "").strip("/")
    try:
        who = auth.principal(req.url, headers, env)
    except auth.Refused as exc:
        return _plain(exc.status, str(exc))
    try:
        if who.local and (refused := _local_link(req, headers, path)) is not None:
            return refused
        if path == "static/console.css" and req.method == "GET":
            return _respond(200, render.stylesheet(), "text/css", {"Cache-Control": "max-age=300"})
        sid = auth.cookies(headers.get("cookie")).get(auth.SESSION_COOKIE) or ""
        new_sid = not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", sid)
        ctx = Ctx(req.method.upper(), path, req.url, dict(req.params or {}), headers, who,
                  auth.new_session_id() if new_sid else sid)
        ctx.token = auth.csrf_token(csrf_key(), who, ctx.sid)
        if ctx.method == "POST":
            _check_write(req, ctx)
        from . import pages
        status, body, kind, extra = pages.dispatch(ctx)
    except auth.Refused as exc:
        return _plain(exc.status, str(exc))
    except AzureError as exc:  # storage unwell: say so, the details go to the log only
        log.warning("console: storage call failed (%s)", type(exc).__name__)
        return _plain(503, "Storage is unavailable; try again shortly.")
    if new_sid:
        flags = "; Secure" if ctx.secure else ""
        extra = {**extra, "Set-Cookie": f"{auth.SESSION_COOKIE}={ctx.sid}; Path={BASE}; HttpOnly; SameSite=Strict{flags}"}
    return _respond(status, body, kind, extra)


def _local_link(req: func.HttpRequest, headers: dict, path: str) -> func.HttpResponse | None:
    """Locally: None when the browser holds the token; a redirect that stores it when the link carried it;
    else 401 saying where the link is."""
    expected = local_token()
    if auth.token_ok(expected, auth.cookies(headers.get("cookie")).get(auth.LOCAL_COOKIE)):
        return None
    if auth.token_ok(expected, (req.params or {}).get("token")):
        cookie = f"{auth.LOCAL_COOKIE}={expected}; Path={BASE}; HttpOnly; SameSite=Strict"
        plain = re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*", path) and ".." not in path
        target = f"{BASE}/{path if plain else 'overview'}"   # never somewhere a crafted path could point
        return _respond(303, b"", "text/plain", {"Location": target, "Set-Cookie": cookie})
    return _plain(401, "Open the console with the link `hookops run` printed (or `hookops console-url`).")


def _check_write(req: func.HttpRequest, ctx: Ctx) -> None:
    auth.check_origin(ctx.url, ctx.headers)
    body = req.get_body() or b""
    if len(body) > MAX_FORM:
        raise auth.Refused(413, "The form is too large.")
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=20).items()}
    given = auth.cookies(ctx.headers.get("cookie")).get(auth.SESSION_COOKIE)
    auth.check_csrf(csrf_key(), ctx.who, given, form.get("csrf"))
    if not ctx.who.can_operate():
        raise auth.Refused(403, "Changes (replaying, reviewing drafts) need the Console.Operator role.")
    ctx.form = form


def _load_key() -> bytes:
    import secrets

    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    from ..clients.storage import default
    blob = default().blob_service().get_blob_client(settings.CONSOLE_CONTAINER, KEY_BLOB)
    try:
        return blob.download_blob().readall()
    except ResourceNotFoundError:
        pass
    try:
        default().blob_service().create_container(settings.CONSOLE_CONTAINER)
    except ResourceExistsError:
        pass
    try:
        blob.upload_blob(secrets.token_bytes(32), overwrite=False)
    except ResourceExistsError:
        pass  # another instance wrote it first: use theirs
    return blob.download_blob().readall()


_key = Shared(_load_key, key=lambda: os.environ.get("AzureWebJobsStorage"))


def csrf_key() -> bytes:
    """The console's key: random, kept in a private blob so every instance shares it. CSRF tokens are
    signed with it, and a local run's console token is derived from it (auth.local_token)."""
    return _key.get()


def local_token() -> str:
    """The token of a local run's console link (and of the local runner's admin call, hookops/host)."""
    return auth.local_token(csrf_key())


def _respond(status: int, body: bytes, kind: str, extra: dict | None = None) -> func.HttpResponse:
    from .render import SECURITY_HEADERS
    headers = {**SECURITY_HEADERS, **(extra or {})}
    return func.HttpResponse(body, status_code=status, headers=headers, mimetype=kind, charset="utf-8")


def _plain(status: int, message: str) -> func.HttpResponse:
    return _respond(status, message.encode("utf-8"), "text/plain")
