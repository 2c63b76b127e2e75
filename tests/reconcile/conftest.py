"""Fixtures of the reconcile tests: the Preservica double (three pages of few entities), and the app's settings
against it and the session Azurite."""
from __future__ import annotations

import pytest

from handlers.clients import preservica
from hookops.doubles.preservica import PreservicaDouble
from tests.support.reconcile import FOLDER, PASSWORD, TENANT, USER, A, B, C


@pytest.fixture
def pres(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # no credentials.properties
    preservica.forget_client()
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double:
        double.page_limit = 3   # several pages with few entities
        double.add_folder(FOLDER, "Accession")
        for r in (A, B, C):
            double.add_asset(r, f"Asset {r[:4]}", parent=FOLDER)
        yield double
    preservica.forget_client()


@pytest.fixture
def env(app_env, pres, monkeypatch):
    for name, value in {"PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_PASSWORD": PASSWORD,
                        "PRESERVICA_TENANT": TENANT, "PRESERVICA_PROTOCOL": "http", "NO_PROXY": "127.0.0.1",
                        "PRESERVICA_ROUTES": "*=journal", "RECONCILE_FIRST_HOURS": "6"}.items():
        monkeypatch.setenv(name, value)
    return app_env
