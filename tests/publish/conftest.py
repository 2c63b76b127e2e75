"""Fixtures of the publish tests: the Preservica double holding an image asset and a recording, and the
app's settings for publish against it and the session Azurite."""
from __future__ import annotations

import pytest

from hookops.doubles.preservica import PreservicaDouble, make_png
from tests.support.preservica import fresh_client, point_at
from tests.support.publish import ASSET, AV, PASSWORD, PRESERVICA_THUMBNAIL, RIGHTS, SHEET_1, SHEET_2, TENANT, USER, make_wav

# Settings a test of this folder sets itself when it needs them.
UNSET = ("PUBLISH_BLOB_SERVICE_URI", "PUBLISH_BASE_URL", "PUBLISH_MAX_FILES", "PUBLIC_SECURITY_TAGS",
         "PUBLISH_IDENTIFIER_TYPES", "PUBLISH_MAX_BYTES", "PUBLISH_SWEEP_SCHEDULE")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    with fresh_client(tmp_path, monkeypatch, unset=UNSET):
        yield


@pytest.fixture
def pres():
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double:
        double.add_asset(ASSET, "Harbour survey, 1887", "Two sheets and a report",
                         thumbnail=make_png(40, 30, rgb=PRESERVICA_THUMBNAIL), identifiers={"catalogue": "HM/1887/12"},
                         bitstreams=[("sheet-1.png", make_png(301, 207, rgb=SHEET_1), "Access"),
                                     ("sheet-2.png", make_png(120, 480, rgb=SHEET_2), "Access"),
                                     ("report.pdf", b"%PDF-1.4\n% a report\n", "Access"),
                                     ("master.tif", 4096, "Preservation")])
        double.add_asset(AV, "Oral history interview", bitstreams=[("talk.wav", make_wav(2.5), "Access")])
        yield double


@pytest.fixture
def env(app_env, pres, monkeypatch):
    point_at(monkeypatch, pres, USER, PASSWORD, TENANT, PUBLISH_RIGHTS=RIGHTS,
             PUBLISH_REQUIRED_STATEMENT="Courtesy of the Harbour Archive", PRESERVICA_ROUTES="*=publish",
             ACTION_BATCH_SIZE="1", PUBLISH_IDENTIFIER_TYPES="catalogue")
    return app_env
