"""A folder closed, hidden or opened (CHANGED_SECURITY_DESCRIPTOR / CHANGE_ASSET_VISIBILITY naming an SO) re-checks
the published assets under it, without any event for each asset: real pyPreservica against the Preservica double
(its folder `children` pages), real Blob clients on Azurite, through the dispatcher and the publish runner."""
from __future__ import annotations

import uuid

import pytest

from handlers import dispatch
from handlers.clients import journal
from handlers.clients.storage import default
from handlers.core import envelope, messages, settings
from hookops.doubles.deliveries import delivery, encode
from hookops.doubles.preservica import make_png
from tests.support.jobs import row, run_one
from tests.support.publish import blobs, dispatched

TOP, SUB = "0f0f0f0f-0000-4000-8000-000000000001", "0f0f0f0f-0000-4000-8000-000000000002"


def ref(n: int) -> str:
    return str(uuid.UUID(int=0xA5 << 120 | n))


def add(pres, n: int, parent: str, tag: str = "open") -> str:
    pres.add_asset(ref(n), f"Sheet {n}", security_tag=tag, parent=parent,
                   bitstreams=[(f"sheet-{n}.png", make_png(20, 10 + n), "Access")])
    return ref(n)


def published(env, r: str) -> bool:
    return f"{r}/manifest.json" in blobs(env, f"{r}/")


def set_tree(pres, folder: str, tag: str) -> None:
    """An archivist's tag change applied to a folder and everything under it, as Preservica's "apply to
    children" does; the double sends no event: only the folder's, below, is delivered."""
    pres.set_security_tag(folder, tag)
    for e in list(pres._entities.values()):
        if e.parent == folder and e.kind in ("IO", "SO"):
            set_tree(pres, e.ref, tag)


def folder_event(trigger: str = "CHANGED_SECURITY_DESCRIPTOR", folder: str = TOP) -> list:
    """Dispatch one webhook event naming the folder; the publish messages it queued."""
    body = encode(delivery(trigger=trigger, refs=[folder], entity_type="SO", subscription=uuid.uuid4().hex))
    dispatch.dispatch(messages.intake_message(envelope.delivery_id(body), "2026-11-30T10:00:00Z",
                                              body.decode()).encode())
    return take(settings.action_queue("publish"))


def take(queue: str) -> list:
    from azure.core.exceptions import ResourceNotFoundError
    q = default().queue(queue)
    got: list = []
    try:
        batch = list(q.receive_messages(max_messages=32))
    except ResourceNotFoundError:   # nothing was ever queued there
        return got
    while batch:
        for m in batch:
            q.delete_message(m)
            got.append(m.content)
        batch = list(q.receive_messages(max_messages=32))
    return got


def run_all(first: list) -> list:
    """Run publish messages, dispatching the continuations each run queues, until none is left; the outcomes."""
    outcomes, todo = [], list(first)
    while todo:
        outcomes += [run_one("publish", raw) for raw in todo]
        for raw in take(settings.DELIVERY_QUEUE):
            dispatch.dispatch(raw)
        todo = take(settings.action_queue("publish"))
    return outcomes


@pytest.fixture
def tree(env, pres):
    """TOP holds two assets and SUB; SUB holds one: all three published."""
    pres.add_folder(TOP, "Harbour papers")
    pres.add_folder(SUB, "Letters", parent=TOP)
    refs = [add(pres, 1, TOP), add(pres, 2, TOP), add(pres, 3, SUB)]
    for r in refs:
        assert run_one("publish", dispatched(r)).state == journal.DONE
    assert all(published(env, r) for r in refs)
    return refs


@pytest.mark.parametrize("trigger", ["CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY"])
def test_closing_a_folder_withdraws_its_published_assets_without_any_asset_event(env, pres, tree, trigger):
    set_tree(pres, TOP, "closed")
    [raw] = folder_event(trigger)
    outcome = run_one("publish", raw)
    assert outcome.state == journal.DONE and outcome.extra["publish_folder_withdrawn"] == 3
    assert not any(published(env, r) for r in tree)          # the nested folder's asset too
    assert not any(blobs(env, f"{r}/") for r in tree)


def test_a_closed_folder_reads_only_its_published_assets(env, pres, tree):
    never = add(pres, 9, SUB, tag="closed")        # never published: nothing to withdraw, nothing to ask
    set_tree(pres, TOP, "closed")
    before = len(pres.requests)
    run_all(folder_event())
    asked = [path for _, path in pres.requests[before:]]
    assert not any(never in path for path in asked)
    assert not any(published(env, r) for r in tree)


def test_a_folder_with_more_children_than_one_run_takes_is_walked_in_bounded_runs(env, pres, tree, monkeypatch):
    from handlers.actions.publish import folder as folder_recheck
    from handlers.clients import folder_walk
    more = [add(pres, n, SUB) for n in range(10, 17)]
    for r in more:
        run_one("publish", dispatched(r))
    monkeypatch.setattr(folder_walk, "PAGE", 3)           # 3 + 8 children: several pages of each folder,
    pres.page_limit = 2                                   # each shorter than asked for (Preservica caps `max`)
    monkeypatch.setattr(folder_recheck, "PAGES", 1)      # one page per run
    set_tree(pres, TOP, "closed")
    before = len(pres.requests)
    outcomes = run_all(folder_event())
    pages = [p for _, p in pres.requests[before:] if p.split("?")[0].endswith("/children")]
    assert len(outcomes) == len(pages) > 3                  # one children page per run, each run its own message
    assert all(o.extra["publish_folder_checked"] <= 2 for o in outcomes)
    assert [o.extra["publish_folder_round"] for o in outcomes] == list(range(1, len(outcomes) + 1))
    assert not any(published(env, r) for r in tree + more)


def test_a_folder_opened_again_before_the_recheck_runs_stays_published(env, pres, tree):
    set_tree(pres, TOP, "closed")
    [raw] = folder_event()
    set_tree(pres, TOP, "open")                              # re-opened before the re-check ran
    run_one("publish", raw)
    assert all(published(env, r) for r in tree)


def test_a_folder_opened_again_after_its_assets_were_withdrawn_publishes_them_again(env, pres, tree):
    set_tree(pres, TOP, "closed")
    run_all(folder_event())
    assert not any(published(env, r) for r in tree)
    set_tree(pres, TOP, "open")
    [outcome] = run_all(folder_event())
    assert outcome.extra["publish_folder_published"] == 3 and all(published(env, r) for r in tree)


def test_an_asset_closed_under_a_folder_opened_again_is_withdrawn(env, pres, tree):
    """Closed with its children, then the folder alone opened again: its assets' own tags stay closed."""
    set_tree(pres, TOP, "closed")
    pres.set_security_tag(TOP, "open")
    [outcome] = run_all(folder_event())
    assert outcome.extra["publish_folder_withdrawn"] == 3 and not any(published(env, r) for r in tree)


def test_an_open_folder_runs_publish_only_where_the_container_differs(env, pres, tree):
    """A repeated event naming an open folder whose assets are all published: one read each, no publish run."""
    before = len(pres.requests)
    [outcome] = run_all(folder_event())
    asked = [p.split("?")[0] for _, p in pres.requests[before:]]
    assert outcome.extra["publish_folder_checked"] == 3 and outcome.extra["publish_folder_published"] == 0
    assert not any("/representations" in p or "thumbnail" in p for p in asked)
    assert all(sum(p.endswith(f"/information-objects/{r}") for p in asked) == 1 for r in tree)


def test_a_folder_event_publishes_nothing_preservica_says_is_closed(env, pres, tree):
    """A repeated (or careless) event naming an open folder: each asset's own tag decides."""
    shut = add(pres, 20, SUB, tag="closed")
    run_all(folder_event())
    assert not blobs(env, f"{shut}/") and all(published(env, r) for r in tree)


def test_a_folder_moved_or_ingested_rechecks_nothing(env, pres, tree):
    set_tree(pres, TOP, "closed")
    [raw] = folder_event("MOVED")
    assert run_one("publish", raw).state == journal.SKIPPED
    assert all(published(env, r) for r in tree)    # left to the security event (and the sweep)


@pytest.mark.parametrize("cursor", [
    "https://attacker.example/steal", [["https://attacker.example/x", 0]], [[TOP, -1]], [[TOP, "0"]], [[TOP, 0, 1]],
    [[TOP, 10**12]], "too many", [], None])
def test_a_cursor_that_is_not_a_walk_of_uuids_is_not_followed(cursor):
    """A continuation's cursor comes back through a queue: only [UUID, start] entries, never a URL
    (pyPreservica sends its access token to the URL it follows), bounded in number."""
    from handlers.clients import folder_walk
    if cursor == "too many":
        cursor = [[TOP, 0]] * (folder_walk.MAX_STACK + 1)
    assert folder_walk.cursor_from(cursor) is None


def test_the_fullest_continuation_is_still_a_delivery_the_dispatcher_takes():
    """A cursor at its bound, its round at its bound: the continuation's one event stays within
    envelope.MAX_EVENT_BYTES, so the dispatcher does not refuse (and poison) the rest of a walk."""
    from handlers.actions.publish import folder as folder_recheck
    from handlers.clients import folder_walk
    cursor = [[str(uuid.UUID(int=n)), folder_walk.MAX_START] for n in range(folder_walk.MAX_STACK)]
    assert folder_walk.cursor_from(cursor) == cursor
    event = {"event": "FolderRecheck 999999999", "entityType": "SO", "entityRef": TOP, "identifiers": [],
             folder_recheck.CURSOR: cursor, folder_recheck.ROUND: 10**9 - 1}
    doc = delivery(trigger="CHANGED_SECURITY_DESCRIPTOR", refs=[TOP], entity_type="SO")
    [parsed] = envelope.delivery_from_doc({**doc, "events": [event]}).events
    assert parsed[folder_recheck.CURSOR] == cursor


def test_sub_folders_past_the_cursor_bound_are_reported_not_silently_skipped(env, pres, tree, monkeypatch):
    from handlers.clients import folder_walk
    pres.add_folder("0f0f0f0f-0000-4000-8000-000000000003", "More letters", parent=TOP)
    monkeypatch.setattr(folder_walk, "MAX_STACK", 1)      # TOP's page names two sub-folders: room for one
    set_tree(pres, TOP, "closed")
    outcomes = run_all(folder_event())
    assert any("sub-folder(s) not walked" in o.reason for o in outcomes)


def test_an_asset_another_run_holds_does_not_hold_up_the_closure_of_the_others(env, pres, tree, monkeypatch):
    """Its lease held (a publish of it in flight, which re-checks Preservica before it ends), the walk passes it over
    and withdraws the assets after it now; the round is put back to wait for it (pipeline/waits.busy). Before, the
    walk stopped there: the assets after it stayed public until the round's retry."""
    from handlers.clients import publish_lock
    from handlers.core import iiif
    from handlers.pipeline import runner, waits
    from tests.support.e2e import wait_until
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)
    first, *others = tree
    set_tree(pres, TOP, "closed")
    [raw] = folder_event()
    with publish_lock.held(default().blob_service(), iiif.blob_ref(first)):
        assert runner.run("publish", raw) == [None]                 # put back: it waits for `first`
        assert published(env, first) and not any(blobs(env, f"{r}/") for r in others)
    assert row(raw)["publish_reason"] == ("waiting: another run is publishing or withdrawing 1 asset(s) under this "
                                          "folder (folder: re-checked 3, withdrew 2, published 0)")
    queue = default().queue(settings.action_queue("publish"))
    [again] = wait_until(lambda: list(queue.receive_messages(max_messages=1)), timeout=30)
    outcome = run_one("publish", again.content)
    assert outcome.state == journal.DONE and outcome.extra["publish_folder_withdrawn"] == 1
    assert not any(blobs(env, f"{r}/") for r in tree)
