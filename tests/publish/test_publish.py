"""The `publish` action against the real pyPreservica (talking to the Preservica double), the real
Blob clients and Azurite: manifests loaded back with iiif-prezi3 and checked against the Presentation 3
rules that matter, withdrawal that a stale event cannot undo, the activity stream, and attacks."""
from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from handlers.actions import publish
from handlers.clients import journal
from handlers.core.messages import Job
from handlers.pipeline.contract import Context
from hookops.doubles.preservica import make_png
from tests.support.jobs import read_job, run_one
from tests.support.publish import (
    ASSET,
    AV,
    RIGHTS,
    activities,
    base,
    blobs,
    container,
    dispatched,
    load_manifest,
    write_transcript,
)


def check_presentation_rules(manifest, env, ref: str) -> None:
    """ids under the base, canvases with a size or a duration, painting annotations that target their
    canvas and whose bodies are blobs that exist."""
    root = f"{base(env)}/{ref}/"
    published = blobs(env, f"{ref}/")
    assert str(manifest.id) == root + "manifest.json" and manifest.items
    for canvas in manifest.items:
        assert str(canvas.id).startswith(root)
        assert (canvas.width and canvas.height) or canvas.duration, "a canvas needs a size or a duration"
        for page in canvas.items:
            assert str(page.id).startswith(root)
            for anno in page.items:
                assert anno.motivation == "painting" and str(anno.target) == str(canvas.id)
                assert str(anno.body.id).removeprefix(root) and f"{ref}/{str(anno.body.id).removeprefix(root)}" in published
                if canvas.duration:
                    assert anno.body.duration == canvas.duration
                else:
                    assert (anno.body.width, anno.body.height) == (canvas.width, canvas.height)


# ---- publishing ------------------------------------------------------------------------------

def test_image_asset_is_published_as_a_iiif_manifest_with_sizes_read_from_the_files(env, pres):
    raw = dispatched(ASSET)
    outcome = run_one("publish", raw)
    assert outcome.state == journal.DONE and outcome.extra["publish_activity"] == "Create"
    body, manifest = load_manifest(env, ASSET)
    check_presentation_rules(manifest, env, ASSET)
    assert [(c.width, c.height) for c in manifest.items] == [(301, 207), (120, 480)]   # from the PNG headers
    assert manifest.label == {"none": ["Harbour survey, 1887"]} and manifest.summary == {"none": ["Two sheets and a report"]}
    meta = json.loads(body)["metadata"]
    assert {"label": {"none": ["catalogue"]}, "value": {"none": ["HM/1887/12"]}} in meta
    doc = json.loads(body)
    assert doc["rights"] == RIGHTS and doc["requiredStatement"]["value"] == {"none": ["Courtesy of the Harbour Archive"]}
    # Made from the first image, not Preservica's: the asset has a preservation representation too (test_thumbnail)
    assert doc["thumbnail"][0]["id"] == f"{base(env)}/{ASSET}/thumbnail" and doc["thumbnail"][0]["width"] == 301
    [pdf] = doc["rendering"]
    assert pdf["format"] == "application/pdf" and pdf["label"] == {"none": ["report.pdf"]}
    published = blobs(env, f"{ASSET}/")
    assert published[pdf["id"].removeprefix(base(env) + "/")] == b"%PDF-1.4\n% a report\n"
    assert not any("master" in n for n in published)                    # the preservation master stays private
    assert [(a["type"], a["object"]["id"]) for a in activities(env)] == [("Create", str(manifest.id))]
    # Anyone may read it, from a viewer on any origin (Azurite's anonymous access and CORS, as in Azure).
    resp = httpx.get(str(manifest.id), headers={"Origin": "http://127.0.0.1:9"})
    assert resp.status_code == 200 and resp.json()["id"] == str(manifest.id)
    assert resp.headers.get("access-control-allow-origin") in ("*", "http://127.0.0.1:9")
    assert resp.headers["content-type"].startswith("application/ld+json")


def test_av_asset_gets_a_canvas_with_the_duration_and_its_captions(env, pres):
    vtt = b"WEBVTT\n\n00:00.000 --> 00:02.000\nWe sailed at dawn.\n"
    write_transcript(env, pres, AV, vtt, "Access")
    assert run_one("publish", dispatched(AV)).state == journal.DONE
    _, manifest = load_manifest(env, AV)
    check_presentation_rules(manifest, env, AV)
    [canvas] = manifest.items
    assert canvas.duration == 2.5 and canvas.width is None
    assert canvas.items[0].items[0].body.type == "Sound"
    [page] = canvas.annotations
    [captions] = page.items
    assert captions.motivation == "supplementing" and str(captions.target) == str(canvas.id)
    assert captions.body.format == "text/vtt"
    assert blobs(env, f"{AV}/")[str(captions.body.id).removeprefix(base(env) + "/")] == vtt


def test_publishing_again_changes_nothing_and_downloads_nothing(env, pres):
    run_one("publish", dispatched(ASSET))
    before = blobs(env)
    contents = sum(1 for m, p in pres.requests if p.endswith("/content"))
    outcome = publish.perform(read_job(dispatched(ASSET, "MOVED")), Context())
    assert outcome.state == journal.DONE and outcome.reason == "unchanged"
    assert blobs(env) == before and len(activities(env)) == 1
    assert sum(1 for m, p in pres.requests if p.endswith("/content")) == contents   # same fixity: not fetched again


def test_a_large_file_is_streamed_in_blocks(env, pres):
    from handlers.clients.public_store import BLOCK_BYTES
    big = make_png(8, 8) + bytes(range(256)) * (9 * 1024 * 4)    # 9 MiB and a bit
    pres.add_asset(ASSET, "Big", bitstreams=[("big.png", big, "Access")])
    run_one("publish", dispatched(ASSET))
    [name] = [n.name for n in container(env).list_blobs(name_starts_with=f"{ASSET}/files/")]
    blob = container(env).get_blob_client(name)
    committed, _ = blob.get_block_list()
    assert len(committed) == -(-len(big) // BLOCK_BYTES) > 1        # staged block by block, not one put
    assert blob.download_blob().readall() == big


# ---- withdrawal ------------------------------------------------------------------------------

def test_closing_an_asset_withdraws_it_and_the_old_event_cannot_bring_it_back(env, pres):
    old = dispatched(ASSET)
    run_one("publish", old)
    assert f"{ASSET}/manifest.json" in blobs(env)
    pres.set_security_tag(ASSET, "closed")
    outcome = run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR"))
    assert outcome.state == journal.DONE and outcome.reason == "withdrawn (not public)"
    assert blobs(env, f"{ASSET}/") == {}
    assert [a["type"] for a in activities(env)] == ["Create", "Delete"]
    # The old FULL_TEXT_INDEXED again, carrying the snapshot of when the asset was open: Preservica decides.
    stale = dataclasses.replace(read_job(old), snapshot={"parts": ["summary"], "title": "x", "securityTag": "open",
                                                         "description": None, "parent": None, "metadata": {}})
    assert publish.perform(stale, Context()).reason == "not published (not public)"
    assert run_one("publish", dispatched(ASSET)).reason == "not published (not public)"
    assert blobs(env, f"{ASSET}/") == {} and len(activities(env)) == 2


def test_a_deleted_asset_is_withdrawn(env, pres):
    run_one("publish", dispatched(ASSET))
    pres.remove_asset(ASSET)
    assert run_one("publish", dispatched(ASSET, "MOVED")).reason == "withdrawn (not found)"
    assert blobs(env, f"{ASSET}/") == {} and activities(env)[-1]["type"] == "Delete"


def test_closed_while_the_files_were_copying_is_withdrawn_before_the_action_ends(env, pres, monkeypatch):
    real = publish._thumbnail

    def archivist_closes_it_meanwhile(*args):
        pres.set_security_tag(ASSET, "closed")
        return real(*args)
    monkeypatch.setattr(publish, "_thumbnail", archivist_closes_it_meanwhile)
    outcome = run_one("publish", dispatched(ASSET))
    assert outcome.reason == "withdrawn (no longer public)"
    assert blobs(env, f"{ASSET}/") == {} and activities(env) == []   # re-checked before the manifest: never announced


def test_public_tags_are_a_setting(env, pres, monkeypatch):
    pres.set_security_tag(ASSET, "public-web")
    assert run_one("publish", dispatched(ASSET)).reason == "not published (not public)"
    monkeypatch.setenv("PUBLIC_SECURITY_TAGS", "open, public-web")
    assert run_one("publish", dispatched(ASSET, "CHANGE_ASSET_VISIBILITY")).state == journal.DONE
    assert f"{ASSET}/manifest.json" in blobs(env)


# ---- attacks ---------------------------------------------------------------------------------

def test_hostile_metadata_and_filenames_stay_inert_text_in_json(env, pres):
    title = "</script><img src=x onerror=alert(1)>../../activity/collection.json"
    pres.add_asset(ASSET, title, "<b>bold</b>", identifiers={"../../x": "<script>alert(1)</script>"},
                   bitstreams=[("../../../evil.png", make_png(5, 6), "Access"),
                               ("../index.html", b"<html><script>alert(1)</script></html>", "Access")])
    run_one("publish", dispatched(ASSET))
    everything = blobs(env)
    assert all(n.startswith((f"{ASSET}/", "activity/")) for n in everything), sorted(everything)
    raw, manifest = load_manifest(env, ASSET)
    assert b"<" not in raw and b">" not in raw                      # inert even if inlined in a <script>
    assert manifest.label == {"none": [title]}                      # the same text to a JSON reader
    assert manifest.summary == {"none": ["<span>&lt;b&gt;bold&lt;/b&gt;</span>"]}   # shown as text, not bold
    kinds = {b.name: b.content_settings for b in container(env).list_blobs(name_starts_with=f"{ASSET}/files/")}
    assert not any("html" in (s.content_type or "") for s in kinds.values())
    html_file = [s for s in kinds.values() if s.content_type == "application/octet-stream"]
    assert len(html_file) == 1 and html_file[0].content_disposition == "attachment"


@pytest.mark.parametrize("bad", ["../../etc", "not-a-uuid", "3b1f8a52-5d0c-4c4e-9a49-0c1d2e3f4a5b/../x"])
def test_a_reference_that_is_not_a_uuid_touches_nothing(env, pres, bad):
    job = Job(action="publish", key="k", pk="p", rk="r", delivery_id="d", trigger="MOVED", tenant="T",
              subscription_id="s", timestamp="t", event={"entityType": "IO", "entityRef": bad})
    seen = len(pres.requests)
    assert publish.perform(job, Context()).reason == "reference is not a UUID"
    assert blobs(env) == {} and len(pres.requests) == seen


def test_a_huge_number_of_files_is_refused_before_they_are_read(env, pres, monkeypatch):
    monkeypatch.setenv("PUBLISH_MAX_FILES", "3")
    pres.add_asset(ASSET, "Many", bitstreams=[(f"p{i}.png", make_png(2, 2), "Access") for i in range(5)])
    outcome = run_one("publish", dispatched(ASSET))
    assert outcome.state == journal.SKIPPED and outcome.reason == "too many files (5 > PUBLISH_MAX_FILES 3)"
    assert not [p for m, p in pres.requests if "/content-objects/" in p] and blobs(env, f"{ASSET}/") == {}


def test_importing_function_app_loads_neither_iiif_nor_pillow():
    from tests.support.coldstart import cold_start_modules
    loaded = cold_start_modules()
    assert sorted(m for m in ('iiif_prezi3', 'PIL', 'pydantic', 'azure.storage.blob') if m in loaded) == []


def test_a_rights_value_that_is_no_uri_fails_naming_the_setting(env, pres, monkeypatch):
    monkeypatch.setenv("PUBLISH_RIGHTS", "All rights reserved")
    with pytest.raises(Exception, match="PUBLISH_RIGHTS must be"):
        run_one("publish", dispatched(ASSET))
    monkeypatch.setenv("PUBLISH_RIGHTS", "https://")                 # a URI prefix but no URI: pydantic refuses it
    with pytest.raises(Exception, match="did not validate") as failed:
        publish.perform(read_job(dispatched(ASSET, "MOVED")), Context())
    assert "Harbour" not in str(failed.value)                       # no untrusted text in the journaled reason


def test_in_azure_the_store_writes_with_the_identity_and_never_creates_the_container(app_env):
    from handlers.clients.public_store import PublicStore
    store = PublicStore("https://127.0.0.1:9/", "iiif", None)        # nothing listens there: a request would fail
    assert not store.local and store.base == "https://127.0.0.1:9/iiif"
    store.ensure()                                                    # Bicep made it public; the app may not
    assert PublicStore("https://127.0.0.1:9/", "iiif", "https://cdn.example/iiif/").base == "https://cdn.example/iiif"


def test_files_of_a_publish_that_never_reached_its_manifest_are_removed_without_an_activity(env, pres):
    from handlers.clients.public_store import store
    partial = store(None, "iiif", None)
    partial.ensure()
    partial.upload(f"{ASSET}/files/left-over", b"half a copy", "application/octet-stream")
    pres.set_security_tag(ASSET, "closed")
    outcome = run_one("publish", dispatched(ASSET))
    assert outcome.reason == "withdrawn (not public)" and "publish_activity" not in outcome.extra
    assert blobs(env, f"{ASSET}/") == {} and activities(env) == []
