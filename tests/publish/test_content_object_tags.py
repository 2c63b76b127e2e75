"""A content object's own security tag: an access file tagged closed under an open asset is never public, its
captions and the asset's thumbnail go with it, and it comes back when it is opened again. Real pyPreservica
(which reads each content object's <xip:SecurityTag>) against the Preservica double, real Blob clients on Azurite.
Uses test_publish's fixtures."""
from __future__ import annotations

import pytest

from handlers import sweep
from handlers.clients import journal
from tests.support.jobs import run_one
from tests.support.publish import ASSET, AV, SHEET_1, SHEET_2, blobs, dispatched, make_wav, shows, write_transcript

VTT = b"WEBVTT\n\n00:00.000 --> 00:02.000\nWhat the closed recording says\n"


def public(env, ref: str) -> dict[str, bytes]:
    return blobs(env, f"{ref}/")


def of(co: str, names) -> list[str]:
    return [n for n in names if f"/files/{co}-" in n]


def test_a_closed_content_object_under_an_open_asset_is_never_published(env, pres):
    closed, _ = pres.source_of(ASSET, "Access", 0)   # sheet-1.png
    kept, _ = pres.source_of(ASSET, "Access", 1)     # sheet-2.png
    pres.set_security_tag(closed, "closed")
    outcome = run_one("publish", dispatched(ASSET))
    assert outcome.state == journal.DONE
    got = public(env, ASSET)
    assert f"{ASSET}/manifest.json" in got and of(kept, got)
    assert of(closed, got) == []
    assert shows(got[f"{ASSET}/thumbnail"], SHEET_2)   # made from the open file, never Preservica's (it may show
    assert pres._entities[ASSET].thumbnail not in got.values()   # the closed one)
    assert closed.encode() not in got[f"{ASSET}/manifest.json"]


def test_closing_a_published_content_object_withdraws_it_and_opening_it_publishes_it(env, pres):
    co, _ = pres.source_of(ASSET, "Access", 0)
    run_one("publish", dispatched(ASSET))
    assert of(co, public(env, ASSET)) and shows(public(env, ASSET)[f"{ASSET}/thumbnail"], SHEET_1)
    pres.set_security_tag(co, "closed")
    run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR"))
    got = public(env, ASSET)
    assert of(co, got) == [] and co.encode() not in got[f"{ASSET}/manifest.json"]
    assert shows(got[f"{ASSET}/thumbnail"], SHEET_2)
    pres.set_security_tag(co, "open")
    run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR"))
    got = public(env, ASSET)
    assert of(co, got) and co.encode() in got[f"{ASSET}/manifest.json"] and shows(got[f"{ASSET}/thumbnail"], SHEET_1)


@pytest.mark.parametrize("tag", ["closed", "", "Open"])   # anything not in PUBLIC_SECURITY_TAGS ("open") exactly
def test_the_only_access_file_closed_withdraws_the_asset_and_its_captions(env, pres, tag):
    write_transcript(env, pres, AV, VTT, "Access")
    run_one("publish", dispatched(AV))
    assert f"{AV}/captions.vtt" in public(env, AV)
    co, _ = pres.source_of(AV, "Access", 0)
    pres.set_security_tag(co, tag)
    run_one("publish", dispatched(AV, "CHANGED_SECURITY_DESCRIPTOR"))
    assert public(env, AV) == {}


def test_captions_of_a_closed_recording_beside_an_open_one_are_not_published(env, pres):
    pres.add_asset(AV, "Two recordings", bitstreams=[("a.wav", make_wav(1.0), "Access"),
                                                     ("b.wav", make_wav(1.5), "Access")])
    write_transcript(env, pres, AV, VTT, "Access", 0)   # made from a.wav
    pres.set_security_tag(pres.source_of(AV, "Access", 0)[0], "closed")
    run_one("publish", dispatched(AV))
    got = public(env, AV)
    assert f"{AV}/manifest.json" in got and f"{AV}/captions.vtt" not in got
    assert b"captions" not in got[f"{AV}/manifest.json"]


def test_the_sweep_withdraws_a_content_object_closed_without_a_webhook(env, pres, monkeypatch):
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")
    co, _ = pres.source_of(ASSET, "Access", 1)
    run_one("publish", dispatched(ASSET))
    pres.set_security_tag(co, "closed")   # Preservica's webhook names the content object, not the asset (inferred)
    report = sweep.run()
    assert report["complete"] and report["updated"] >= 1
    got = public(env, ASSET)
    assert of(co, got) == [] and f"{ASSET}/manifest.json" in got and shows(got[f"{ASSET}/thumbnail"], SHEET_1)


def test_the_tag_costs_no_request_each_content_object_is_read_once(env, pres):
    closed, _ = pres.source_of(ASSET, "Access", 0)
    pres.set_security_tag(closed, "closed")
    before = len(pres.requests)
    run_one("publish", dispatched(ASSET))
    gets = [p for m, p in pres.requests[before:] if m == "GET" and p.count("/") == 4
            and p.startswith("/api/entity/content-objects/")]   # the entity document itself
    access = [pres.source_of(ASSET, "Access", i)[0] for i in range(3)]
    assert sorted(gets) == sorted(f"/api/entity/content-objects/{co}" for co in access)   # once each, tag with it
    assert not any("/api/content/thumbnail" in p for _, p in pres.requests[before:])   # withheld: not even read


@pytest.mark.parametrize("bound", ["PUBLISH_MAX_FILES", "PUBLISH_MAX_BYTES"])
def test_an_asset_refused_for_its_size_keeps_its_earlier_copy_until_a_published_file_closes(env, pres, monkeypatch,
                                                                                           bound):
    """A skipped asset keeps what was published before (docs/actions.md) while none of it closed; once a published
    file closed (with too many files no content object was read, so those with public files are read for their
    tags), the kept manifest would still show it: the asset is withdrawn, as it cannot be published without it."""
    closed, _ = pres.source_of(ASSET, "Access", 0)
    run_one("publish", dispatched(ASSET))
    monkeypatch.setenv(bound, "2" if bound == "PUBLISH_MAX_FILES" else "100")
    outcome = run_one("publish", dispatched(ASSET, "MOVED"))
    assert outcome.state == journal.SKIPPED and bound in outcome.reason
    assert of(closed, public(env, ASSET)) and f"{ASSET}/manifest.json" in public(env, ASSET)   # as it was
    pres.set_security_tag(closed, "closed")
    outcome = run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR"))
    assert outcome.state == journal.DONE and bound in outcome.reason and "withdrawn" in outcome.reason
    assert public(env, ASSET) == {}

@pytest.mark.parametrize("bound", ["PUBLISH_MAX_FILES", "PUBLISH_MAX_BYTES"])
def test_an_asset_refused_for_its_size_keeps_nothing_of_a_recording_closed_since(env, pres, monkeypatch, bound):
    """The skipped run deleted the closed file but not the captions made from it, nor its canvas: the transcript
    of a closed recording, and its name, stayed public while the asset was over a bound."""
    pres.add_asset(AV, "Two recordings", bitstreams=[("a-closed-later.wav", make_wav(1.0), "Access"),
                                                     ("b.wav", make_wav(1.5), "Access")])
    write_transcript(env, pres, AV, VTT, "Access", 0)   # made from a-closed-later.wav
    closed, _ = pres.source_of(AV, "Access", 0)
    run_one("publish", dispatched(AV))
    assert f"{AV}/captions.vtt" in public(env, AV)
    pres.set_security_tag(closed, "closed")
    monkeypatch.setenv(bound, "1" if bound == "PUBLISH_MAX_FILES" else "100")
    outcome = run_one("publish", dispatched(AV, "CHANGED_SECURITY_DESCRIPTOR"))
    assert outcome.state in (journal.SKIPPED, journal.DONE)
    got = public(env, AV)
    assert not any(VTT in data for data in got.values())
    assert of(closed, got) == []
    assert not any(closed.encode() in data or b"a-closed-later" in data for data in got.values())
