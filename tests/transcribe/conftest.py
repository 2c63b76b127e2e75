"""Fixtures of the transcribe tests: the Speech double (HTTPS, one per module), the Preservica double holding
a recording and an image, and the app's settings for transcribe against both and the session Azurite."""
from __future__ import annotations

import pytest

from handlers.actions import transcribe as action
from hookops.doubles.preservica import make_png
from hookops.doubles.speech import SpeechDouble
from tests.support.doubles import served
from tests.support.preservica import action_env, archive
from tests.support.transcribe import AV, FOLDER, IMAGE, KEY, PASSWORD, SCHEMA, TENANT, TRICKY, USER, WAV

speech = served(SpeechDouble, key=KEY)


@pytest.fixture
def pres():
    with archive((USER, PASSWORD, TENANT), FOLDER, "Oral histories") as double:
        double.add_asset(AV, "Interview, 1952", parent=FOLDER,
                         bitstreams=[("interview.tif", 2048), ("talk.wav", WAV, "Access")])
        double.add_asset(IMAGE, "Harbour map", thumbnail=make_png(), bitstreams=[("map.tif", 4096), ("map.png", make_png(), "Access")])
        yield double


@pytest.fixture
def env(app_env, pres, speech, monkeypatch, tmp_path):
    speech.reset()
    speech.set_phrases(TRICKY)
    with action_env(monkeypatch, tmp_path, pres, (USER, PASSWORD, TENANT), action,
                    ("TRANSCRIBE_MAX_BYTES", "TRANSCRIBE_CONTAINER"),
                    SPEECH_ENDPOINT=speech.endpoint, SPEECH_KEY=KEY, TRANSCRIBE_LOCALES="en-US,cy-GB",
                    TRANSCRIPT_SCHEMA=SCHEMA, REQUESTS_CA_BUNDLE=speech.ca_bundle) as slept:
        yield slept
