"""A deleted content object's files leave the public container with its deletion, not a day later with the sweep.
Once deleted, Preservica names only the content object (updated-since: `<Entity ref deleted="true">`, no type or
parent; a GET is 404), so `publish` keeps a row of the asset each published content object's files are under
(clients/published_files.py) and converges that asset. Real pyPreservica against the Preservica double, real Blob
and Table clients on Azurite, the real dispatcher, reconciler, sweep and action runner. Uses test_publish's fixtures."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from handlers import reconcile, sweep
from handlers.actions import publish
from handlers.clients import journal, published_files
from handlers.clients.storage import default
from handlers.core import settings
from tests.support.jobs import run_one
from tests.support.publish import ASSET, AV, blobs, dispatched, make_wav, write_transcript
from tests.support.reconcile import dispatch_all

SECURITY = "CHANGED_SECURITY_DESCRIPTOR"
MANIFEST = f"{ASSET}/manifest.json"


def of(co: str, names) -> list[str]:
    return [n for n in names if f"/files/{co}-" in n]


def published_then_deleted(env, pres) -> tuple[str, str, dict]:
    """ASSET published with its access files; then its first access file's content object deleted in Preservica.
    (deleted ref, a kept one, what the container held before the deletion)."""
    gone, _ = pres.source_of(ASSET, "Access", 0)
    kept, _ = pres.source_of(ASSET, "Access", 1)
    run_one("publish", dispatched(ASSET))
    was = blobs(env)
    assert of(gone, was) and of(kept, was) and MANIFEST in was
    pres.delete_entity(gone)
    return gone, kept, was


def only_the_deleted_files_went(env, gone: str, kept: str) -> None:
    got = blobs(env, f"{ASSET}/")
    assert of(gone, got) == [] and not any(gone in n for n in blobs(env))
    assert of(kept, got) and MANIFEST in got and gone.encode() not in got[MANIFEST]   # the rest stays, re-announced


@pytest.mark.parametrize("case", [str.lower, str.upper])   # a webhook may spell the ref in capitals
def test_a_deleted_content_objects_own_event_withdraws_its_files_and_keeps_the_rest(env, pres, case):
    gone, kept, _ = published_then_deleted(env, pres)
    outcome = run_one("publish", dispatched(case(gone), SECURITY, entity_type="CO"))
    assert outcome.state == journal.DONE and outcome.reason.startswith(f"deleted; its asset {ASSET}:"), outcome.reason
    only_the_deleted_files_went(env, gone, kept)


def test_the_reconciler_lists_the_deletion_and_its_files_go_within_its_run(env, pres, monkeypatch):
    """No webhook reports a deletion: updated-since lists it, typeless, and the reconciler queues it to publish
    as an asset (eventlog.py). publish finds no such asset and nothing under its ref, and looks up the row."""
    monkeypatch.setenv("RECONCILE_FIRST_HOURS", "4")
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")
    gone, _ = pres.source_of(ASSET, "Access", 0)
    kept, _ = pres.source_of(ASSET, "Access", 1)
    run_one("publish", dispatched(ASSET))
    now = dt.datetime.now(dt.UTC)
    pres.delete_entity(gone, now - dt.timedelta(hours=2))
    report = reconcile.run(now=now)
    assert report["deleted"] == 1 and report["complete"], report
    dispatch_all(env.connection_string)
    q = default().queue(settings.action_queue("publish"))
    [m] = q.receive_messages(max_messages=32)
    q.delete_message(m)
    outcome = run_one("publish", m.content)
    assert outcome.state == journal.DONE and f"its asset {ASSET}" in outcome.reason, outcome.reason
    only_the_deleted_files_went(env, gone, kept)


def test_captions_made_from_a_deleted_recording_go_with_it(env, pres):
    """transcribe's captions are copied only beside the file they were made from: that file deleted, they go."""
    pres.add_asset(AV, "Two recordings", bitstreams=[("a.wav", make_wav(1.0), "Access"),
                                                     ("b.wav", make_wav(1.5), "Access")])
    write_transcript(env, pres, AV, b"WEBVTT\n\n00:00.000 --> 00:01.000\nWhat a.wav says\n", "Access", 0)
    gone, _ = pres.source_of(AV, "Access", 0)
    run_one("publish", dispatched(AV))
    assert f"{AV}/captions.vtt" in blobs(env, f"{AV}/")
    pres.delete_entity(gone)
    run_one("publish", dispatched(gone, SECURITY, entity_type="CO"))
    got = blobs(env, f"{AV}/")
    assert f"{AV}/manifest.json" in got and f"{AV}/captions.vtt" not in got and of(gone, got) == []
    assert b"captions" not in got[f"{AV}/manifest.json"]


def test_a_deleted_entity_never_published_costs_one_table_read_and_changes_nothing(env, pres):
    run_one("publish", dispatched(ASSET))
    was, before = blobs(env), len(pres.requests)
    never = str(uuid.uuid4())
    outcome = run_one("publish", dispatched(never, SECURITY))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "not published (not found)")
    assert [p for _, p in pres.requests[before:]] == [f"/api/entity/information-objects/{never}"]
    assert blobs(env) == was


@pytest.mark.parametrize("value", ["../../accesstoken/login", f"{ASSET}/../x", f"https://elsewhere.example/{ASSET}",
                                   "<b>x</b>", ""])
def test_a_hand_edited_row_builds_no_name_and_no_request(env, pres, value):
    gone, _, was = published_then_deleted(env, pres)
    table = published_files.table(default())
    table.upsert_entity({"PartitionKey": published_files.PARTITION, "RowKey": gone, "asset": value})
    before = len(pres.requests)
    outcome = run_one("publish", dispatched(gone, SECURITY, entity_type="CO"))
    assert outcome.state == journal.SKIPPED and "names no asset reference" in outcome.reason
    assert [p for _, p in pres.requests[before:]] == [f"/api/entity/content-objects/{gone}"]   # nothing asked with it
    assert blobs(env) == was and (not value or value not in outcome.reason)


def test_the_row_is_written_before_any_file_goes_out(env, pres, monkeypatch):
    """A publish that dies after its first file still leaves the pointer: a deletion later finds the file."""
    cos = [pres.source_of(ASSET, "Access", i)[0] for i in range(3)]
    table = published_files.table(default())
    seen = []
    real = publish._copy

    def copy(api, store, ref, name, bitstream):
        seen.append(sorted(co for co in cos if published_files.holder(table, co) == ASSET))
        return real(api, store, ref, name, bitstream)
    monkeypatch.setattr(publish, "_copy", copy)
    run_one("publish", dispatched(ASSET))
    assert seen and seen[0] == sorted(cos)


@pytest.mark.parametrize("bound", ["PUBLISH_MAX_FILES", "PUBLISH_MAX_BYTES"])
def test_an_asset_refused_for_its_size_is_withdrawn_when_a_published_content_object_is_deleted(env, pres,
                                                                                              monkeypatch, bound):
    """publish refused (too many or too large files) reads the tags of the content objects it has files of: a
    deleted one (404) counts as closed. The earlier manifest (its canvas, its name) cannot be rebuilt without it
    while the asset is over the bound, so the asset is withdrawn rather than kept showing a deleted file."""
    gone, kept, _ = published_then_deleted(env, pres)
    monkeypatch.setenv(bound, "1" if bound == "PUBLISH_MAX_FILES" else "100")
    outcome = run_one("publish", dispatched(gone, SECURITY, entity_type="CO"))
    assert outcome.state == journal.DONE and bound in outcome.reason and "withdrawn" in outcome.reason, outcome.reason
    assert blobs(env, f"{ASSET}/") == {}


def test_without_a_row_the_sweep_still_withdraws_a_deleted_content_objects_files(env, pres, monkeypatch):
    """Files published before the rows were kept: the deletion's event finds no row (skipped, as before), and the
    public sweep converges every published asset, writing the rows it lacked."""
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")
    gone, kept, was = published_then_deleted(env, pres)
    table = published_files.table(default())
    for co in (gone, kept):
        table.delete_entity(published_files.PARTITION, co)
    outcome = run_one("publish", dispatched(gone, SECURITY, entity_type="CO"))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "not found") and blobs(env) == was
    assert sweep.run()["complete"]
    only_the_deleted_files_went(env, gone, kept)
    assert (published_files.holder(table, kept), published_files.holder(table, gone)) == (ASSET, None)


def test_more_rows_than_one_transaction_holds_are_all_kept(env):
    """PUBLISH_MAX_FILES allows 500 files: their rows go in transactions of at most 100 (the Table service's limit).
    On this test's fresh storage the first transaction meets no table: it is created (journal.table_call), as
    before only for single-entity calls."""
    table = published_files.table(default())
    cos = [str(uuid.uuid4()) for _ in range(250)]
    published_files.remember(table, ASSET, cos + cos[:3])   # a content object with several files: one row
    assert [published_files.holder(table, co) for co in cos] == [ASSET] * 250
