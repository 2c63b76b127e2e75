"""`describe` runs after `ocr` (Action.after, pipeline/waits.py): the real dispatcher and runner against Azurite,
the chat and Preservica doubles; `ocr`'s outcome is written to the journal as its runner would (the local
runner's end-to-end run with the Document Intelligence double is tests/test_order_e2e.py)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from handlers.clients import journal
from handlers.clients.storage import default
from handlers.console import views
from handlers.core import messages, settings
from handlers.core.errors import DeclarationError, InvalidMessage
from handlers.pipeline import registry, runner, waits
from tests.support.describe import LETTER, dispatched, draft, queued, take, visible
from tests.support.jobs import read_job, row, run_one
from tests.support.paths import ROOT


@pytest.fixture(autouse=True)
def ocr_ready(monkeypatch):
    """ocr configured, so the dispatcher queues it (its message is never run here)."""
    monkeypatch.setenv("DOCINTEL_ENDPOINT", "https://127.0.0.1:9/")
    monkeypatch.setenv("DOCINTEL_KEY", "unused")


@pytest.fixture
def fast(monkeypatch):
    """A put-back event is visible again after 1 s (storage counts whole seconds)."""
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)


def settle_ocr(raw: bytes, state: str, attempts: int = 1) -> None:
    job = read_job(raw)
    journal.default().set_state(job.pk, job.rk, "ocr", state, "", attempts)


@pytest.mark.parametrize("source", [None, "backfill", "reconcile"])
def test_describe_waits_for_ocr_then_drafts_from_its_text_once(env, pres, chat, fast, source):
    chat.answer = "A letter of 1921 from the Harbour Office about the breached harbour wall."
    raw = dispatched(source=source)
    assert runner.run("describe", raw, message_id="m1") == [None]
    assert chat.calls == []
    assert (row(raw)["describe_state"], row(raw)["describe_reason"]) == ("queued", "waiting for ocr")
    assert {"action": "describe", "state": "queued", "reason": "waiting for ocr"} in views.event_row(row(raw), None)["states"]  # the console
    # Put back on its own queue, invisible for now: not a retry, nothing counts towards poison.
    assert visible("describe") == 0 and queued("describe") == 1

    again = take("describe")
    doc = json.loads(again)
    assert doc["deferrals"] == 1 and doc["waitingSince"] and "snapshot" not in doc["events"][0]
    assert runner.run("describe", again, message_id="m2") == [None]     # ocr still not finished: waits again
    later = take("describe")
    assert json.loads(later)["deferrals"] == 2 and json.loads(later)["waitingSince"] == doc["waitingSince"]

    settle_ocr(raw, journal.DONE)
    [outcome] = runner.run("describe", later, message_id="m3")
    assert (outcome.state, outcome.reason) == (journal.DONE, "")
    assert len(chat.calls) == 1 and draft(LETTER)["sources"] == ["ocr"]
    # A copy still around (a re-sent delivery, say) finds describe finished: no second draft.
    assert runner.run("describe", again, message_id="m4") == [None]
    assert len(chat.calls) == 1 and visible("describe") == 0 and queued("describe") == 0
    assert row(raw)["describe_state"] == "done"


def test_describe_does_not_wait_when_ocr_is_not_routed(env, pres, chat):
    raw = dispatched("FULL_TEXT_INDEXED=journal,describe")
    assert run_one("describe", raw).state == journal.DONE
    assert len(chat.calls) == 1 and queued("describe") == 0


def test_ocr_finished_in_any_final_way_is_not_waited_for(env, pres, chat):
    raw = dispatched()
    settle_ocr(raw, journal.SKIPPED)
    assert run_one("describe", raw).state == journal.DONE and queued("describe") == 0


def test_ocr_failed_for_good_describe_runs_with_what_exists_and_says_why(env, pres, chat, fast):
    default().blob_service().get_blob_client("ocr", f"{LETTER}.txt").delete_blob()
    raw = dispatched()
    settle_ocr(raw, journal.FAILED, attempts=1)         # the host retries it: still worth waiting for
    assert runner.run("describe", raw) == [None]
    again = take("describe")
    settle_ocr(raw, journal.FAILED, attempts=waits.MAX_ATTEMPTS)   # the last try: its message went to poison
    outcome = run_one("describe", again)
    assert outcome.state == journal.SKIPPED and chat.calls == []
    assert row(raw)["describe_reason"] == ("no text to describe (no ocr or transcribe text for this asset); "
                                           "ocr failed: ran with what existed")


def test_after_the_bound_describe_runs_with_what_exists_and_says_why(env, pres, chat, fast, monkeypatch):
    chat.answer = "A letter of 1921 from the Harbour Office."
    raw = dispatched()
    assert runner.run("describe", raw) == [None]
    again = take("describe")
    since = dt.datetime.fromisoformat(json.loads(again)["waitingSince"])
    monkeypatch.setattr(waits, "_now", lambda: since + dt.timedelta(seconds=3600))   # ACTION_WAIT_SECONDS later
    assert run_one("describe", again).state == journal.DONE
    assert row(raw)["describe_reason"] == "waited 3600 s for ocr: ran with what existed"
    assert len(chat.calls) == 1 and queued("describe") == 0


def test_describe_replayed_from_poison_waits_again_for_the_ocr_replayed_with_it(env, pres, chat, fast):
    """A describe message that had waited out the bound, then failed its tries, replayed from poison while ocr (its
    own poison message replayed too) has not run yet: it waits for ocr again. Kept, its `waitingSince` of hours ago
    made it run at once without ocr's text, and again once ocr was done: two model calls."""
    import base64

    from handlers.clients import poison
    raw = dispatched()
    assert runner.run("describe", raw, message_id="m1") == [None]
    doc = json.loads(take("describe"))
    doc["waitingSince"] = "2026-01-01T00:00:00.000+00:00"
    dead = poison.raw_queue(default(), settings.action_queue("describe") + poison.POISON_SUFFIX)
    dead.create_queue()   # as the host makes it
    dead.send_message(base64.b64encode(json.dumps(doc).encode()).decode())
    assert poison.replay(default(), settings.action_queue("describe")) == 1
    assert runner.run("describe", take("describe"), message_id="m2") == [None]   # ocr still not done: waits again
    assert chat.calls == [] and (row(raw)["describe_state"], row(raw)["describe_reason"]) == ("queued",
                                                                                             "waiting for ocr")


def test_the_last_put_back_is_no_longer_than_the_bound_leaves(env, pres, chat, monkeypatch):
    monkeypatch.setenv("ACTION_WAIT_SECONDS", "45")
    raw = dispatched()
    assert runner.run("describe", raw) == [None]        # waits 30 s (FIRST_DELAY): invisible meanwhile
    assert visible("describe") == 0 and queued("describe") == 1
    job = read_job(raw)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40)
    deferred = messages.pack([messages.replace(job, deferrals=1, waiting_since=journal.iso(since))], 1)[0]
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(type(default()), "send", lambda self, q, m, delay=0: sent.append((m, delay)))
    assert runner.run("describe", deferred.encode()) == [None]
    assert [d for _, d in sent] == [5]                   # 45 s - 40 s waited, not 60 s
    # A waitingSince in the future (another clock, a hand-made message) counts from now, not for ever.
    future = messages.pack([messages.replace(job, deferrals=3, waiting_since="9999-01-01T00:00:00+00:00")], 1)[0]
    assert runner.run("describe", future.encode()) == [None]
    again = json.loads(sent[-1][0])
    assert again["deferrals"] == 4 and dt.datetime.fromisoformat(again["waitingSince"]) <= dt.datetime.now(dt.UTC)


def test_deferrals_in_a_message_must_be_a_count(env):
    raw = json.loads(dispatched("FULL_TEXT_INDEXED=journal,describe"))
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(InvalidMessage):
            messages.read_batch(json.dumps({**raw, "deferrals": bad}))


def test_after_must_name_actions_that_do_not_wait_for_each_other(monkeypatch):
    found = dict(registry.actions())
    assert found["describe"].after == ("ocr", "transcribe")
    from dataclasses import replace
    with pytest.raises(DeclarationError, match="no such action"):
        registry._check_order({**found, "describe": replace(found["describe"], after=("octopus",))})
    with pytest.raises(DeclarationError, match="describe -> ocr -> describe"):
        registry._check_order({**found, "ocr": replace(found["ocr"], after=("describe",))})
    with pytest.raises(ValueError, match="after"):
        replace(found["describe"], after=("describe",))


def test_for_good_and_the_bound_follow_host_json():
    from hookops import hostconfig
    host = hostconfig.load(ROOT / "host.json")
    assert waits.MAX_ATTEMPTS == host.queues.max_dequeue_count
    # An upstream that started before describe first waited has used all its tries within the default bound.
    retries = host.queues.max_dequeue_count * (host.function_timeout + host.queues.visibility_timeout)
    assert int(settings.BY_NAME["ACTION_WAIT_SECONDS"].default) >= retries
