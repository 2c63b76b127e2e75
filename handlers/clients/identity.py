"""One Azure credential per identity and process, created on first use (azure-identity is slow to import)."""
from __future__ import annotations

import threading

from ..core import settings
from .shared import Shared

_lock = threading.Lock()
_credentials: Shared[dict] = Shared(dict)


def credential(client_id: str | None = None):
    """DefaultAzureCredential for the user-assigned identity (AZURE_CLIENT_ID unless given)."""
    client_id = client_id or settings.get("AZURE_CLIENT_ID")
    known = _credentials.get()
    with _lock:
        if client_id not in known:
            from azure.identity import DefaultAzureCredential
            known[client_id] = DefaultAzureCredential(managed_identity_client_id=client_id)
        return known[client_id]


def service_client(cache: Shared[dict], endpoint: str, key: str | None, setting: str, example: str, build,
                   *extra) -> object:
    """The process's SDK client of an Azure AI service: `build(endpoint, credential)` once per endpoint,
    credential and `extra` (the cache keeps one: a rotated key replaces the client). The credential is an
    AzureKeyCredential when a key is configured (local runs), else the app identity's. `setting` names the
    endpoint in the error for one that is not an https:// origin (`example` shows the form)."""
    import hashlib
    import re

    from ..core.errors import ActionError
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?/?", endpoint or ""):
        raise ActionError(f"{setting} must be the resource's https:// endpoint, e.g. {example} (no path)")
    ident = (endpoint, hashlib.sha256(key.encode()).hexdigest() if key else None, *extra)
    known = cache.get()
    if ident not in known:
        if key:
            from azure.core.credentials import AzureKeyCredential
            made = AzureKeyCredential(key)
        else:
            made = credential()
        known.clear()
        known[ident] = build(endpoint.rstrip("/"), made)
    return known[ident]
