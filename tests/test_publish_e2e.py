"""`publish` end to end: signed deliveries over HTTP into the local runner, the real pyPreservica against
the Preservica double, blobs read back from Azurite with the real Blob client and anonymously over HTTP."""
from __future__ import annotations

import json

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from handlers.clients import preservica
from hookops.doubles.preservica import PreservicaDouble, make_png
from tests.support.e2e import hookops, wait_until, webhook

pytestmark = pytest.mark.slow
REF = "5e0d2c7a-8b1f-4c3d-9e2a-6f7b8c9d0e1f"


def test_publish_then_close_withdraws_end_to_end(runner, app_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)   # no stray credentials.properties for pyPreservica
    preservica.forget_client()
    with PreservicaDouble(username="u", password="p", tenant="T") as pres:
        pres.add_asset(REF, "Harbour map", thumbnail=make_png(20, 10),
                       bitstreams=[("map.png", make_png(640, 480), "Access")])
        for name, value in {
            "PRESERVICA_ROUTES": "FULL_TEXT_INDEXED=journal,publish;CHANGED_SECURITY_DESCRIPTOR=journal,publish;*=journal",
            "PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p",
            "PRESERVICA_TENANT": "T", "PRESERVICA_PROTOCOL": "http", "NO_PROXY": "127.0.0.1,localhost",
        }.items():
            monkeypatch.setenv(name, value)
        iiif = BlobServiceClient.from_connection_string(app_env.connection_string).get_container_client("iiif")

        def names(prefix: str = "") -> set[str]:
            return {b.name for b in iiif.list_blobs(name_starts_with=prefix)} if iiif.exists() else set()

        assert ": 200 " in hookops("send-test-event", "--url", webhook(runner), "--ref", REF)
        wait_until(lambda: f"{REF}/manifest.json" in names(), timeout=60)
        manifest = json.loads(iiif.download_blob(f"{REF}/manifest.json").readall())
        canvas = manifest["items"][0]
        assert (canvas["width"], canvas["height"]) == (640, 480)
        image = canvas["items"][0]["items"][0]["body"]["id"]
        assert httpx.get(image).content == make_png(640, 480)           # anonymous read, as a viewer does

        pres.set_security_tag(REF, "closed")
        assert ": 200 " in hookops("send-test-event", "--url", webhook(runner), "--trigger",
                                   "CHANGED_SECURITY_DESCRIPTOR", "--ref", REF)
        wait_until(lambda: not names(f"{REF}/"), timeout=60)
        assert httpx.get(image).status_code == 404
        last = json.loads(iiif.download_blob("activity/page-0.json").readall())["orderedItems"]
        assert [a["type"] for a in last] == ["Create", "Delete"]
    preservica.forget_client()
