"""Shared fixtures. Servers started here are stopped at the end of the session."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hookops import azurite as _azurite  # noqa: E402


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A real Azurite on free ports for the whole session."""
    with _azurite.on_free_ports(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def storage_env(azurite, monkeypatch):
    """Point the app's settings at the session Azurite."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite.connection_string
