"""Fixtures of the CLI tests: the Preservica double with the webhook handshake, and the settings `hookops`
reads for it (no developer local.settings.json, no credentials.properties)."""
from __future__ import annotations

import logging

import pytest

from hookops import localsettings
from hookops.doubles.preservica import PreservicaDouble
from tests.support.cli import PASSWORD, SECRET, TENANT, USER


@pytest.fixture
def pres():
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT, handshake=True) as double:
        yield double


@pytest.fixture
def env(pres, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                                   # no credentials.properties
    monkeypatch.setattr(localsettings, "load", lambda *a, **k: None)  # no developer local.settings.json
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("KEY_VAULT_URI", "PRESERVICA_WEBHOOK_SECRET_PREVIOUS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"PRESERVICA_WEBHOOK_SECRET": SECRET, "PRESERVICA_SERVER": pres.server,
                        "PRESERVICA_USERNAME": USER, "PRESERVICA_PASSWORD": PASSWORD, "PRESERVICA_TENANT": TENANT,
                        "PRESERVICA_PROTOCOL": "http"}.items():
        monkeypatch.setenv(name, value)
    from handlers.clients import secrets
    secrets._default.reset()
    return pres


@pytest.fixture(autouse=True)
def cli_loggers():
    """The subscription commands quieten these loggers for the process (hookops/subscriptions.py _webhooks);
    put them back so later tests' caplog sees their errors."""
    names = ("pyPreservica", "handlers.clients.preservica")
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)
