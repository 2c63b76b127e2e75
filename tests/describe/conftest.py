"""Fixtures of the describe tests: the chat-completions double (HTTPS, one per module), the Preservica double
holding a letter with a human description, the OCR text in Azurite, and the app's settings."""
from __future__ import annotations

import pytest

from handlers.actions import describe as action
from handlers.clients.storage import default
from hookops.doubles.chat import ChatDouble
from tests.support.describe import DEPLOYMENT, FOLDER, KEY, LETTER, OCR_TEXT, PASSWORD, TENANT, USER
from tests.support.doubles import served
from tests.support.preservica import action_env, archive

chat = served(ChatDouble, key=KEY)


@pytest.fixture
def pres():
    with archive((USER, PASSWORD, TENANT), FOLDER, "Letters") as double:
        double.add_asset(LETTER, "Letter, 1921", description="Written by the archivist.", parent=FOLDER,
                         bitstreams=[("letter.png", 100, "Access")])
        yield double


@pytest.fixture
def env(app_env, pres, chat, monkeypatch, tmp_path):
    chat.reset()
    with action_env(monkeypatch, tmp_path, pres, (USER, PASSWORD, TENANT), action,
                    ("DESCRIBE_PROMPT", "DESCRIBE_LANGUAGE", "DESCRIBE_MAX_CHARS", "DESCRIBE_MAX_TOKENS",
                     "OCR_CONTAINER", "TRANSCRIBE_CONTAINER", "DESCRIBE_CONTAINER"),
                    OPENAI_ENDPOINT=chat.endpoint, OPENAI_KEY=KEY, DESCRIBE_DEPLOYMENT=DEPLOYMENT,
                    SSL_CERT_FILE=chat.ca_bundle) as slept:
        default().put_blob("ocr", f"{LETTER}.txt", OCR_TEXT.encode(), "text/plain; charset=utf-8")
        yield slept
    svc = default().blob_service()
    for container, name in (("ocr", f"{LETTER}.txt"), ("transcripts", f"{LETTER}.txt"), ("drafts", f"{LETTER}.json")):
        try:
            svc.get_blob_client(container, name).delete_blob()
        except Exception:  # not there: nothing to clear
            pass
