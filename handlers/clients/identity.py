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
