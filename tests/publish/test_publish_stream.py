"""The IIIF Change Discovery stream under concurrent writers, and what the relay says about publishing."""
from __future__ import annotations

import json
import threading

import pytest

from handlers.clients import activity, public_store
from handlers.core import iiif
from hookops.doubles.preservica import make_png
from tests.support.jobs import run_one
from tests.support.publish import ASSET, dispatched


def walk(store) -> tuple[list[dict], list[dict]]:
    """(pages, activities) from the collection's `first` page forward by `next`, checking the links both ways."""
    coll = json.loads(store.read(iiif.COLLECTION)[0])
    assert coll["type"] == "OrderedCollection" and coll["@context"] == iiif.DISCOVERY_CONTEXT
    pages, url = [], coll["first"]["id"]
    while url:
        page = json.loads(store.read(url.removeprefix(store.base + "/"))[0])
        assert page["partOf"]["id"] == coll["id"]
        if pages:
            assert page["prev"]["id"] == pages[-1]["id"]
        pages.append(page)
        url = page.get("next", {}).get("id")
    assert coll["last"]["id"] == pages[-1]["id"]
    return pages, [item for p in pages for item in p["orderedItems"]]


def test_concurrent_appends_lose_nothing_keep_pages_bounded_and_times_in_order(app_env):
    store = public_store.PublicStore(None, "iiif-stream", None)
    store.ensure()
    writers, each, size = 8, 6, 5
    errors = []

    def write(w):
        try:
            for i in range(each):
                activity.append(store, "Update", f"{store.base}/w{w}/{i}/manifest.json", page_size=size)
        except Exception as exc:   # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pages, items = walk(store)
    ids = [a["object"]["id"] for a in items]
    assert sorted(ids) == sorted(f"{store.base}/w{w}/{i}/manifest.json" for w in range(writers) for i in range(each))
    assert all(len(p["orderedItems"]) == size for p in pages[:-1]) and 0 < len(pages[-1]["orderedItems"]) <= size
    assert [a["endTime"] for a in items] == sorted(a["endTime"] for a in items)
    for w in range(writers):   # one writer's activities stay in the order it made them
        mine = [i for i in ids if f"/w{w}/" in i]
        assert mine == sorted(mine, key=lambda u: int(u.split("/")[-2]))


def test_a_collection_that_lags_behind_its_pages_is_caught_up(app_env):
    store = public_store.PublicStore(None, "iiif-lag", None)
    store.ensure()
    for i in range(3):
        activity.append(store, "Create", f"{store.base}/{i}/manifest.json", page_size=2)
    # A writer that died between adding page 1 and moving `last`: the collection still names page 0.
    store.upload(iiif.COLLECTION, iiif.inert_json(iiif.collection_doc(store.base, 0)), "application/ld+json")
    activity.append(store, "Delete", f"{store.base}/0/manifest.json", page_size=2)
    pages, items = walk(store)
    assert [len(p["orderedItems"]) for p in pages] == [2, 2] and items[-1]["type"] == "Delete"


# ---- the relay ---------------------------------------------------------------------------------

def test_relay_carries_the_manifest_url_or_the_withdrawal_when_publish_is_routed(relay, pres, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=publish,relay")
    run_one("relay", dispatched(ASSET, action="relay"))
    pres.set_security_tag(ASSET, "closed")
    run_one("relay", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR", action="relay"))
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=relay")        # publish not routed: nothing said about IIIF
    run_one("relay", dispatched(ASSET, "MOVED", action="relay"))
    docs = [d.json() for d in relay.wait_for_deliveries(3)]
    by_trigger = {d["trigger"]: d for d in docs}
    url = by_trigger["FULL_TEXT_INDEXED"]["iiif"]["manifest"]
    assert by_trigger["FULL_TEXT_INDEXED"]["iiif"]["state"] == "published"
    assert url.endswith(f"/iiif/{ASSET}/manifest.json") and url.startswith("http://127.0.0.1:")
    assert by_trigger["CHANGED_SECURITY_DESCRIPTOR"]["iiif"] == {"state": "withdrawn"}
    assert "iiif" not in by_trigger["MOVED"] and not relay.disagreements


def test_relay_uses_the_public_base_url(relay, pres, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=publish,relay")
    monkeypatch.setenv("PUBLISH_BASE_URL", "https://iiif.archive.example/")
    pres.add_asset(ASSET, "Sheet", bitstreams=[("s.png", make_png(), "Access")])
    run_one("relay", dispatched(ASSET, action="relay"))
    [got] = relay.wait_for_deliveries(1)
    assert got.json()["iiif"]["manifest"] == f"https://iiif.archive.example/{ASSET}/manifest.json"


def test_relay_says_withdrawn_for_a_hidden_asset(relay, pres, monkeypatch):
    """Issue 19: an open but hidden asset is not public (publish withdraws it), so the relay must not tell a
    receiver it is published: the same rule (public_store.is_public) decides both, from the same entity GET."""
    from handlers.clients import public_store
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=publish,relay")
    pres.set_hidden(ASSET, True)
    run_one("relay", dispatched(ASSET, "CHANGE_ASSET_VISIBILITY", action="relay"))
    [got] = relay.wait_for_deliveries(1)
    assert got.json()["iiif"] == {"state": "withdrawn"} and not relay.disagreements
    assert public_store.link(ASSET, "open", hidden=True) == {"state": "withdrawn"}
    assert public_store.link(ASSET, "open", hidden=False)["state"] == "published"


def test_the_public_store_still_goes_through_a_proxy_in_the_environment(app_env, monkeypatch):
    """Its clients share the storage transport, which reads the proxy variables once instead of requests
    reading them on every request: a proxy set in the environment is still used (nothing listens on this one,
    so creating the container fails), and NO_PROXY still exempts the host."""
    from handlers.core.errors import StorageUnavailable
    from hookops.azurite import free_port
    for v in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable):
        public_store.PublicStore(None, "iiif-proxied", None).ensure()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    public_store.PublicStore(None, "iiif-proxied", None).ensure()
