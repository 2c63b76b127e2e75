"""A security change made on one access file arrives as an event naming its content object (`entityType: "CO"`),
not its asset: publish reads the content object for its parent (one request) and converges that asset at once.
Real pyPreservica (content_object(), whose `parent` is the document's <xip:Parent>) against the Preservica double,
real Blob clients on Azurite, through the real dispatcher, reconciler and action runner. Uses test_publish's fixtures."""
from __future__ import annotations

import datetime as dt

import pytest

from handlers import reconcile
from handlers.clients import journal
from handlers.clients.storage import default
from handlers.core import settings
from tests.support.jobs import row, run_one
from tests.support.publish import ASSET, AV, SHEET_1, SHEET_2, blobs, dispatched, shows
from tests.support.reconcile import dispatch_all

SECURITY = "CHANGED_SECURITY_DESCRIPTOR"


def co_event(co: str, trigger: str = SECURITY, action: str = "publish") -> bytes:
    return dispatched(co, trigger, action, entity_type="CO")


def of(co: str, names) -> list[str]:
    return [n for n in names if f"/files/{co}-" in n]


def since(pres, before: int) -> list[str]:
    return [p for m, p in pres.requests[before:] if m == "GET"]


def test_a_content_objects_closure_event_withdraws_its_file_and_the_thumbnail(env, pres):
    co, _ = pres.source_of(ASSET, "Access", 0)
    run_one("publish", dispatched(ASSET))
    assert of(co, blobs(env, f"{ASSET}/")) and shows(blobs(env, f"{ASSET}/")[f"{ASSET}/thumbnail"], SHEET_1)
    pres.set_security_tag(co, "closed")
    before = len(pres.requests)
    raw = co_event(co)
    assert len(pres.requests) == before   # the dispatcher takes no snapshot of a content object
    outcome = run_one("publish", raw)
    assert outcome.state == journal.DONE
    got = blobs(env, f"{ASSET}/")
    assert of(co, got) == [] and not any(co in n for n in blobs(env))
    assert shows(got[f"{ASSET}/thumbnail"], SHEET_2)   # the thumbnail made from the closed file is replaced
    assert co.encode() not in got[f"{ASSET}/manifest.json"] and f"{ASSET}/manifest.json" in got   # the rest stays
    reason = row(raw)["publish_reason"]
    assert ASSET in reason and "1 closed content object(s) withheld" in reason, reason
    gets = since(pres, before)
    # One request finds the asset: the content object's own document, then the asset's (converge's first read).
    assert gets[:2] == [f"/api/entity/content-objects/{co}", f"/api/entity/information-objects/{ASSET}"], gets[:3]


def test_a_content_object_reopened_comes_back_with_its_event(env, pres):
    co, _ = pres.source_of(ASSET, "Access", 1)
    run_one("publish", dispatched(ASSET))
    pres.set_security_tag(co, "closed")
    run_one("publish", co_event(co))
    assert of(co, blobs(env, f"{ASSET}/")) == []
    pres.set_security_tag(co, "open")
    outcome = run_one("publish", co_event(co))
    got = blobs(env, f"{ASSET}/")
    assert outcome.state == journal.DONE and outcome.extra.get("publish_activity") == "Update"
    assert of(co, got) and f"{ASSET}/thumbnail" in got and co.encode() in got[f"{ASSET}/manifest.json"]


def test_an_asset_withdrawn_with_its_only_access_file_is_published_again_when_it_reopens(env, pres):
    """Not in the container, so the sweep cannot find it: the content object's event is what brings it back."""
    co, _ = pres.source_of(AV, "Access", 0)
    run_one("publish", dispatched(AV))
    pres.set_security_tag(co, "closed")
    outcome = run_one("publish", co_event(co))
    assert outcome.reason.startswith(f"its asset {AV}: withdrawn") and blobs(env, f"{AV}/") == {}
    pres.set_security_tag(co, "open")
    run_one("publish", co_event(co))
    assert of(co, blobs(env, f"{AV}/")) and f"{AV}/manifest.json" in blobs(env, f"{AV}/")


def test_a_content_object_that_is_gone_and_never_had_a_file_published_is_skipped_as_not_found(env, pres):
    """One whose files were published: test_deleted_content_object.py."""
    co, _ = pres.source_of(AV, "Access", 0)
    run_one("publish", dispatched(ASSET))   # another asset: signed in, and something public to keep
    was = blobs(env)
    pres.delete_entity(co)
    before = len(pres.requests)
    outcome = run_one("publish", co_event(co))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "not found")
    assert since(pres, before) == [f"/api/entity/content-objects/{co}"] and blobs(env) == was


@pytest.mark.parametrize("parent", ["../../accesstoken/login", "<b>x</b>", f"{ASSET}/../x", f"{ASSET}?x=1", "", None,
                                    f"https://elsewhere.example/{ASSET}"])
def test_a_parent_that_is_no_uuid_is_skipped_and_builds_nothing(env, pres, parent):
    co, _ = pres.source_of(ASSET, "Access", 0)
    run_one("publish", dispatched(ASSET))
    was = blobs(env)
    pres.set_security_tag(co, "closed")
    pres.set_parent(co, parent)
    before = len(pres.requests)
    outcome = run_one("publish", co_event(co))
    assert outcome.state == journal.SKIPPED and "not an asset reference" in outcome.reason
    assert since(pres, before) == [f"/api/entity/content-objects/{co}"]   # nothing asked with it
    assert blobs(env) == was                                              # nothing written or deleted with it
    assert not parent or parent not in outcome.reason


def test_a_content_objects_other_events_ask_preservica_nothing(env, pres):
    co, _ = pres.source_of(ASSET, "Access", 0)
    before = len(pres.requests)
    outcome = run_one("publish", co_event(co, "FULL_TEXT_INDEXED"))
    assert outcome.state == journal.SKIPPED and "changes no file's access" in outcome.reason
    assert len(pres.requests) == before


def test_actions_for_assets_only_still_skip_content_object_events(env, pres, monkeypatch):
    """thumbnail declares entities=("asset",) and reads the summary snapshot: for a content object the dispatcher
    takes none (dispatch._with_snapshots: assets and folders only) and the runner skips it unasked."""
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=publish,thumbnail")
    co, _ = pres.source_of(ASSET, "Access", 0)
    before = len(pres.requests)
    outcome = run_one("thumbnail", co_event(co, action="thumbnail"))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "not an asset")
    assert len(pres.requests) == before


def test_the_reconciler_delivers_a_content_objects_logged_closure_to_publish(env, pres, monkeypatch):
    """The webhook lost: the event log's entry names the content object (inferred), the reconciler queues it
    as a content object event, and publish withdraws the file. An Ingest naming a content object stays unusable."""
    monkeypatch.setenv("RECONCILE_EVENT_TYPES", f"Ingest=FULL_TEXT_INDEXED,Modified={SECURITY}")
    monkeypatch.setenv("RECONCILE_FIRST_HOURS", "4")
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")
    co, _ = pres.source_of(ASSET, "Access", 0)
    other, _ = pres.source_of(ASSET, "Access", 1)
    run_one("publish", dispatched(ASSET))
    pres.set_security_tag(co, "closed")
    now = dt.datetime.now(dt.UTC)
    pres.record_event("Modified", [co], now - dt.timedelta(hours=2))
    pres.record_event("Ingest", [other], now - dt.timedelta(hours=2))
    report = reconcile.run(now=now)
    assert (report["queued"], report["unusable"], report["complete"]) == (1, 1, True), report
    dispatch_all(env.connection_string)
    q = default().queue(settings.action_queue("publish"))
    [m] = q.receive_messages(max_messages=32)
    q.delete_message(m)
    outcome = run_one("publish", m.content)
    assert outcome.state == journal.DONE and row(m.content)["entityType"] == "CO"
    got = blobs(env, f"{ASSET}/")
    assert of(co, got) == [] and of(other, got) and shows(got[f"{ASSET}/thumbnail"], SHEET_2)
