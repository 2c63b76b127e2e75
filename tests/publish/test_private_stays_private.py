"""What the other actions keep (ocr's and transcribe's texts, describe's drafts, thumbnails, the custody copy) is
never in the public container, by URL guessing or by listing: real Blob clients against Azurite, read the way
anyone on the internet reads it (no credential). Locally every container is in one account, as in Azure when
PUBLISH_BLOB_SERVICE_URI is unset: a private container named like the public one (OCR_CONTAINER=iiif) would put
every asset's text, a closed one's too, where anyone reads it, and a withdrawal (which deletes `<ref>/`) would
leave it there. Such a name is refused where the private data is written, and by `hookops settings --check`."""
from __future__ import annotations

import httpx
import pytest

from handlers.actions.publish import converge
from handlers.clients import custody_store, public_store
from handlers.clients.storage import default
from handlers.core.errors import SettingsError
from handlers.pipeline import registry
from handlers.pipeline.contract import Context
from tests.support.jobs import dispatched, run_one
from tests.support.publish import ASSET, base, blobs, container

PRIVATE = {"OCR_CONTAINER": "ocr", "TRANSCRIBE_CONTAINER": "transcripts", "DESCRIBE_CONTAINER": "drafts",
           "THUMBNAIL_CONTAINER": "thumbnails"}


def anonymous(url: str, **params) -> httpx.Response:
    return httpx.get(url, params=params)


def test_a_private_container_named_like_the_public_one_never_receives_an_assets_data(env, pres, monkeypatch):
    """The composition: publish makes `iiif` public; thumbnail (or ocr, transcribe, describe) told to write to
    `iiif` would put a blob there outside `<ref>/`, which neither the withdrawal nor the sweep looks at."""
    converge(Context(), ASSET)
    monkeypatch.setenv("THUMBNAIL_CONTAINER", "iiif")
    message = dispatched("thumbnail", ASSET)
    pres.set_security_tag(ASSET, "closed")
    try:
        run_one("thumbnail", message)
    except SettingsError as exc:   # the message fails, naming the settings; the queue retries, then poison
        assert "PUBLISH_CONTAINER" in str(exc)
    converge(Context(), ASSET)   # the closure's withdrawal
    assert anonymous(f"{base(env)}/{ASSET}.png").status_code == 404
    assert [n for n in blobs(env) if not n.startswith("activity/")] == []


@pytest.mark.parametrize("setting", [*PRIVATE, "CUSTODY_CONTAINER"])
def test_every_private_writer_refuses_the_public_container(env, monkeypatch, setting):
    monkeypatch.setenv(setting, "IIIF ")   # case and blanks do not make it another container
    monkeypatch.setenv("PUBLISH_CONTAINER", "iiif")
    with pytest.raises(SettingsError, match="PUBLISH_CONTAINER"):
        if setting == "CUSTODY_CONTAINER":
            custody_store.container(None, "IIIF ")
        else:
            default().put_blob("IIIF ", f"{ASSET}.txt", b"the text of a closed letter")
    assert any(p.startswith(f"{setting}: ") and "PUBLISH_CONTAINER" in p for p in registry.problems())
    assert not container(env).exists() or blobs(env) == {}


@pytest.mark.parametrize("private", ["ocr", "transcripts", "deliveries", "console", "publish-locks"])
def test_the_public_store_refuses_a_private_containers_name(env, monkeypatch, private):
    monkeypatch.setenv("PUBLISH_CONTAINER", private)
    with pytest.raises(SettingsError, match="PUBLISH_CONTAINER"):
        public_store.configured()
    assert registry.problems(), "hookops settings --check says nothing"


def test_what_the_actions_keep_is_not_readable_or_listable_by_anyone(env, pres):
    """Default names: the texts, drafts and custody objects of an asset, published or not, are in private
    containers of the account; its public container serves single blobs and never a listing."""
    converge(Context(), ASSET)
    store = default()
    for name in PRIVATE.values():
        store.put_blob(name, f"{ASSET}.txt", b"the text of a closed letter", "text/plain")
    custody = custody_store.container(None, "custody")
    custody_store.ensure(custody)
    custody_store.put(custody, f"preservica_io_{ASSET}/v1/content/master.tif", b"II*\x00")
    account = base(env).rsplit("/", 1)[0]
    for name in PRIVATE.values():
        assert anonymous(f"{account}/{name}/{ASSET}.txt").status_code in (403, 404), name
        assert anonymous(f"{account}/{name}", restype="container", comp="list").status_code in (403, 404), name
        assert anonymous(f"{base(env)}/{ASSET}.txt").status_code == 404   # nor under the public container
    assert anonymous(f"{account}/custody/preservica_io_{ASSET}/v1/content/master.tif").status_code in (403, 404)
    assert anonymous(f"{account}/custody", restype="container", comp="list").status_code in (403, 404)
    assert anonymous(f"{base(env)}/{ASSET}/manifest.json").status_code == 200          # single blobs: yes
    listing = anonymous(base(env), restype="container", comp="list")
    assert listing.status_code in (403, 404) and ASSET.encode() not in listing.content   # a listing: never
