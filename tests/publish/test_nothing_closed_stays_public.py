"""Issue 19, the publish side: each attack on "nothing closed stays public", reproduced against the real
pyPreservica (talking to the Preservica double) and real Blob clients on Azurite.

Uses test_publish's fixtures and helpers.
"""
from __future__ import annotations

import json

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.actions import publish
from handlers.clients import journal
from hookops.doubles.preservica import make_png
from tests.support.e2e import wait_until
from tests.support.jobs import run_one
from tests.support.publish import (
    ASSET,
    AV,
    activities,
    blobs,
    container,
    dispatched,
    load_manifest,
    make_wav,
    write_transcript,
)

VTT = b"WEBVTT\n\n00:00.000 --> 00:02.000\nThe names of the informants are...\n"


# ---- finding 1: captions of a preservation-only recording ------------------------------------------

def test_captions_of_a_preservation_only_recording_are_not_published(env, pres):
    pres.add_asset(ASSET, "Interview (image only in Access)",
                   bitstreams=[("cover.png", make_png(20, 20), "Access"),
                               ("interview.wav", make_wav(2.0), "Preservation")])
    write_transcript(env, pres, ASSET, VTT, "Preservation")        # transcribe fell back to the WAV
    assert run_one("publish", dispatched(ASSET)).state == journal.DONE
    published = blobs(env, f"{ASSET}/")
    assert f"{ASSET}/manifest.json" in published and f"{ASSET}/captions.vtt" not in published
    assert b"captions" not in published[f"{ASSET}/manifest.json"]


def test_a_transcript_without_its_source_recorded_is_never_published(env, pres):
    BlobServiceClient.from_connection_string(env.connection_string).get_container_client("transcripts") \
        .create_container()
    BlobServiceClient.from_connection_string(env.connection_string).get_blob_client(
        "transcripts", f"{AV}.vtt").upload_blob(VTT)                 # made before the source was recorded
    run_one("publish", dispatched(AV))
    assert f"{AV}/manifest.json" in blobs(env) and f"{AV}/captions.vtt" not in blobs(env)


def test_captions_of_a_replaced_access_file_are_withdrawn_with_the_old_file(env, pres):
    write_transcript(env, pres, AV, VTT, "Access")
    run_one("publish", dispatched(AV))
    assert blobs(env, f"{AV}/")[f"{AV}/captions.vtt"] == VTT
    pres.add_asset(AV, "Oral history interview", bitstreams=[("talk.wav", make_wav(3.0), "Access")])   # new fixity
    run_one("publish", dispatched(AV, "MOVED"))
    assert f"{AV}/captions.vtt" not in blobs(env, f"{AV}/")       # the transcript is of the file that went
    assert b"captions" not in blobs(env, f"{AV}/")[f"{AV}/manifest.json"]


# ---- finding 3: an in-flight publish undoes a withdrawal when its re-check fails ------------------------

@pytest.mark.parametrize("down", ["entity", "everything"])
def test_a_publish_whose_recheck_gets_503_after_the_tag_closed_leaves_nothing_public(env, pres, monkeypatch, down):
    """A (FULL_TEXT_INDEXED) sees "open"; the archivist closes the asset and B (CHANGED_SECURITY_DESCRIPTOR)
    runs while A copies; then Preservica answers 503 to A's re-check (`entity`), or to every request
    (`everything`: A's thumbnail fails first), for every retry."""
    try:
        from handlers.clients import publish_lock
        monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    except ImportError:   # the code before the fix had no lock
        pass
    a, b = dispatched(ASSET), dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR")
    real, seen = publish._thumbnail, {}

    def meanwhile(*args):
        pres.set_security_tag(ASSET, "closed")
        try:
            seen["b"] = run_one("publish", b)
        except Exception as exc:   # B waits for A (here: gives up at once, and is retried)
            seen["b"] = exc
        prefix = f"/api/entity/information-objects/{ASSET}" if down == "entity" else None
        pres.fail_next(40, 503, path_prefix=prefix)   # every retry of every such read, for the rest of A
        return real(*args)
    monkeypatch.setattr(publish, "_thumbnail", meanwhile)
    with pytest.raises(Exception):  # noqa: B017 (whatever the re-check raised: the point is what stays public)
        run_one("publish", a)
    assert blobs(env, f"{ASSET}/") == {}, "A failed and left the closed asset public"
    assert all(act["type"] != "Create" for act in activities(env))
    pres.clear_failures()
    assert run_one("publish", b).reason == "not published (not public)"   # B's retry: nothing to do


def test_a_withdrawal_waits_for_a_publish_in_flight(env, pres, monkeypatch):
    from handlers.clients import publish_lock
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    from handlers.clients.storage import default
    from handlers.pipeline.contract import Context
    with publish_lock.held(default().blob_service(), ASSET):
        with pytest.raises(publish_lock.Busy):
            publish.converge(Context(), ASSET)
    assert publish.converge(Context(), ASSET).state == journal.DONE     # released: it runs


def test_a_withdrawal_that_meets_a_run_in_flight_is_put_back_and_withdraws_after_it(env, pres, monkeypatch):
    """Put back to wait (pipeline/waits.busy) instead of failing towards the poison queue; the wait ends in the
    withdrawal, whatever the run in flight left public."""
    from handlers.clients import publish_lock
    from handlers.clients.storage import default
    from handlers.core import iiif, settings
    from handlers.pipeline import runner, waits
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)
    run_one("publish", dispatched(ASSET))
    assert blobs(env, f"{ASSET}/")
    pres.set_security_tag(ASSET, "closed")
    raw = dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR")
    with publish_lock.held(default().blob_service(), iiif.blob_ref(ASSET)):   # a run of the asset in flight
        assert runner.run("publish", raw, attempt=5) == [None]                 # the last try: not to poison
    queue = default().queue(settings.action_queue("publish"))
    [again] = wait_until(lambda: list(queue.receive_messages(max_messages=1)), timeout=30)
    assert json.loads(again.content)["deferrals"] == 1
    assert run_one("publish", again.content).reason == "withdrawn (not public)"
    assert blobs(env, f"{ASSET}/") == {}


# ---- point 7: a withdrawal is final -------------------------------------------------------------

def test_a_withdrawn_file_leaves_no_snapshot_or_version_behind(env, pres):
    run_one("publish", dispatched(ASSET))
    pres.add_asset(ASSET, "Harbour survey, 1887", bitstreams=[("sheet-1.png", make_png(50, 60), "Access")])
    run_one("publish", dispatched(ASSET, "MOVED"))                  # files overwritten: no snapshot of the old
    names = [b.name for b in container(env).list_blobs(name_starts_with=f"{ASSET}/", include=["snapshots"])]
    assert len(names) == len(set(names)), "a snapshot was created"
    # An operator's (or a backup tool's) snapshot goes with the blob.
    container(env).get_blob_client(f"{ASSET}/manifest.json").create_snapshot()
    pres.set_security_tag(ASSET, "closed")
    run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR"))
    assert list(container(env).list_blobs(name_starts_with=f"{ASSET}/", include=["snapshots"])) == []


# ---- point 7: bounds, identifiers, visibility ------------------------------------------------------

def test_a_file_over_publish_max_bytes_is_refused_before_it_is_downloaded(env, pres, monkeypatch):
    monkeypatch.setenv("PUBLISH_MAX_BYTES", "1000")
    pres.add_asset(ASSET, "Huge", bitstreams=[("small.png", make_png(2, 2), "Access"),
                                              ("huge.png", make_png(8, 8) + bytes(5000), "Access")])
    outcome = run_one("publish", dispatched(ASSET))
    assert outcome.state == journal.SKIPPED and "PUBLISH_MAX_BYTES 1000" in outcome.reason
    assert not [p for m, p in pres.requests if p.endswith("/content")] and blobs(env, f"{ASSET}/") == {}


def test_a_huge_thumbnail_is_not_read_past_the_bound(env, pres, monkeypatch):
    import urllib3
    big = make_png(4, 4) + bytes(20 * 1024 * 1024)
    pres.add_asset(ASSET, "Huge thumbnail", thumbnail=big, bitstreams=[("a.png", make_png(3, 3), "Access")])
    read = {"bytes": 0}
    real = urllib3.response.HTTPResponse.stream

    def counting(self, *args, **kwargs):
        for chunk in real(self, *args, **kwargs):
            read["bytes"] += len(chunk)
            yield chunk
    monkeypatch.setattr(urllib3.response.HTTPResponse, "stream", counting)
    assert run_one("publish", dispatched(ASSET)).state == journal.DONE
    assert f"{ASSET}/thumbnail" not in blobs(env)
    assert read["bytes"] < 6 * 1024 * 1024, f"{read['bytes']} bytes of a 20 MiB thumbnail were read"


def test_identifiers_are_public_only_when_their_type_is_listed(env, pres, monkeypatch):
    pres.add_asset(ASSET, "Ids", identifiers={"catalogue": "HM/1", "donor-id": "private-42"},
                   bitstreams=[("a.png", make_png(3, 3), "Access")])
    monkeypatch.delenv("PUBLISH_IDENTIFIER_TYPES")
    run_one("publish", dispatched(ASSET))
    raw, _ = load_manifest(env, ASSET)
    assert "metadata" not in json.loads(raw) and b"private-42" not in raw and b"HM/1" not in raw
    monkeypatch.setenv("PUBLISH_IDENTIFIER_TYPES", "catalogue")
    run_one("publish", dispatched(ASSET, "MOVED"))
    raw, _ = load_manifest(env, ASSET)
    assert b"HM/1" in raw and b"private-42" not in raw


def test_a_hidden_asset_is_withdrawn_and_not_published_again(env, pres):
    run_one("publish", dispatched(ASSET))
    pres.set_hidden(ASSET)
    assert run_one("publish", dispatched(ASSET, "CHANGE_ASSET_VISIBILITY")).reason == "withdrawn (hidden)"
    assert blobs(env, f"{ASSET}/") == {}
    assert run_one("publish", dispatched(ASSET)).reason == "not published (hidden)"
    pres.set_hidden(ASSET, False)
    assert run_one("publish", dispatched(ASSET, "CHANGE_ASSET_VISIBILITY")).state == journal.DONE
    assert f"{ASSET}/manifest.json" in blobs(env)
