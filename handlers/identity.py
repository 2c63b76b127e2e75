"""One Azure credential per process, created on first use (azure-identity is slow to import)."""
from __future__ import annotations

import threading

from . import settings

_lock = threading.Lock()
_credentials: dict[str | None, object] = {}


def credential(client_id: str | None = None):
    """DefaultAzureCredential for the user-assigned identity (AZURE_CLIENT_ID unless given)."""
    client_id = client_id or settings.get("AZURE_CLIENT_ID")
    with _lock:
        if client_id not in _credentials:
            from azure.identity import DefaultAzureCredential
            _credentials[client_id] = DefaultAzureCredential(managed_identity_client_id=client_id)
        return _credentials[client_id]
