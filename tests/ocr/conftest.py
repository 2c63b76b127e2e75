"""Fixtures of the ocr tests: the Document Intelligence double (HTTPS, one per module), the Preservica double
holding a scanned page, a two-page PDF and things the read model cannot take, and the app's settings."""
from __future__ import annotations

import pytest

from handlers.actions import ocr as action
from handlers.clients import docintel
from hookops.doubles.docintel import DocIntelDouble
from hookops.doubles.preservica import make_png
from tests.support.doubles import served
from tests.support.ocr import FOLDER, KEY, PASSWORD, PDF, PDF_ASSET, SCAN, SCHEMA, TENANT, TIFF, USER
from tests.support.preservica import action_env, archive

di = served(DocIntelDouble, key=KEY)


@pytest.fixture
def pres():
    with archive((USER, PASSWORD, TENANT), FOLDER, "Letters") as double:
        double.add_asset(SCAN, "Letter, 1921", parent=FOLDER,
                         bitstreams=[("letter.tif", TIFF), ("letter.png", make_png(), "Access")])
        double.add_asset(PDF_ASSET, "Minutes, 1930", parent=FOLDER, bitstreams=[("minutes.pdf", PDF, "Access")])
        yield double


@pytest.fixture
def env(app_env, pres, di, monkeypatch, tmp_path):
    di.reset()
    di.set_pages([["Dear Sir,", "the harbour wall is <b>breached</b> & failing."]], confidence=0.9)
    monkeypatch.setattr(docintel, "POLL_SECONDS", 0.01)
    with action_env(monkeypatch, tmp_path, pres, (USER, PASSWORD, TENANT), action,
                    ("OCR_MAX_BYTES", "OCR_MAX_PAGES", "OCR_CONTAINER", "OCR_REPRESENTATION"),
                    DOCINTEL_ENDPOINT=di.endpoint, DOCINTEL_KEY=KEY, OCR_SCHEMA=SCHEMA,
                    REQUESTS_CA_BUNDLE=di.ca_bundle) as slept:
        yield slept
