"""`describe` runs again when `ocr` finishes after describe ran without it (pipeline/again.py): the real dispatcher
and runner, `ocr` against the Document Intelligence double, describe against the chat double, the journal, queues
and blobs in Azurite, a review through the console's function. The local runner's end-to-end run, with a poison
replay, is tests/test_order_e2e.py."""
from __future__ import annotations

import json

import pytest

from handlers.actions import describe as action
from handlers.clients import docintel, journal, preservica
from handlers.clients.storage import default
from handlers.console import views
from handlers.core.errors import ChatRefused, DocIntelRefused
from handlers.pipeline import runner, waits
from hookops.doubles.docintel import DocIntelDouble
from hookops.doubles.preservica import make_png
from tests.support.console import operator_get, operator_post, review_form
from tests.support.describe import KEY, LETTER, dispatched, draft, queued, take
from tests.support.jobs import row, run_one

DI_KEY = "di-key-0123456789"
ANSWER = "A letter of 3 May 1921 from the Harbour Office reporting that the harbour wall was breached."
AGAIN = "ran again: ocr finished after it ran without it"


@pytest.fixture(scope="module")
def di():
    with DocIntelDouble(key=DI_KEY) as double:
        yield double


@pytest.fixture
def world(env, pres, chat, di, monkeypatch):
    """The letter as a scanned page ocr can read; ocr's key wrong for now (it fails until the test mends it);
    ocr's text not yet in Blob; the model answers with a description."""
    pres.add_asset(LETTER, "Letter, 1921", description="Written by the archivist.",
                   bitstreams=[("letter.png", make_png(), "Access")])
    preservica.forget_client()
    monkeypatch.setenv("DOCINTEL_ENDPOINT", di.endpoint)
    monkeypatch.setenv("DOCINTEL_KEY", "a-wrong-key")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", di.ca_bundle)
    monkeypatch.setattr(docintel, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)
    di.reset()
    di.set_pages([["Harbour Office, 3 May 1921.", "Dear Sir, the harbour wall is breached and failing."]])
    default().blob_service().get_blob_client("ocr", f"{LETTER}.txt").delete_blob()
    chat.answer = ANSWER
    yield pres, chat


def describe_ran_without_ocr() -> tuple[bytes, bytes]:
    """Dispatch; ocr fails on its last try (its message goes to poison); describe runs with what exists.
    Returns (ocr's message, describe's)."""
    raw = dispatched()
    ocr = take("ocr")
    with pytest.raises(DocIntelRefused, match="401"):
        runner.run("ocr", ocr, attempt=waits.MAX_ATTEMPTS)
    outcome = run_one("describe", raw)
    assert (outcome.state, row(raw)["describe_without"]) == (journal.SKIPPED, "ocr")
    return ocr, raw


def described_from_the_transcript() -> tuple[bytes, bytes]:
    """A transcript there; ocr fails on its last try; describe drafts from the transcript alone (pending).
    Returns (ocr's message, describe's)."""
    default().put_blob("transcripts", f"{LETTER}.txt", b"Harbour Office, 1921: the wall is breached.", "text/plain")
    raw = dispatched()
    ocr = take("ocr")
    with pytest.raises(DocIntelRefused, match="401"):
        runner.run("ocr", ocr, attempt=waits.MAX_ATTEMPTS)
    assert run_one("describe", raw).state == journal.DONE
    assert (draft(LETTER)["status"], draft(LETTER)["sources"]) == ("pending", ["transcript"])
    return ocr, raw


def replay_ocr_mended(ocr: bytes, monkeypatch, message_id: str = "replayed"):
    monkeypatch.setenv("DOCINTEL_KEY", DI_KEY)
    return run_one("ocr", ocr, message_id=message_id)


def test_ocr_replayed_and_done_runs_describe_once_more_and_says_why(world, monkeypatch):
    pres, chat = world
    ocr, raw = describe_ran_without_ocr()
    assert chat.calls == [] and queued("describe") == 0

    assert replay_ocr_mended(ocr, monkeypatch).state == journal.DONE
    r = row(raw)
    assert (r["describe_state"], r["describe_reason"]) == ("queued", "to run again: ocr finished after it ran without it")
    assert {"action": "describe", "state": "queued",
            "reason": "to run again: ocr finished after it ran without it"} in views.event_row(r, None)["states"]
    # Replayed a second time, or a duplicate of the replay: ocr is finished and does not run; it sends describe's
    # event once more while describe has not run yet (what mends a send that failed), which the claim turns away.
    assert run_one("ocr", ocr, message_id="replayed-twice") is None
    again, copy = take("describe"), take("describe")
    assert queued("describe") == 0 and "snapshot" not in json.loads(again)["events"][0]

    outcome = run_one("describe", again)
    assert (outcome.state, row(raw)["describe_reason"]) == (journal.DONE, AGAIN)
    [call] = chat.calls
    assert "the harbour wall is breached" in call.messages[1]["content"]
    assert draft(LETTER)["sources"] == ["ocr"] and draft(LETTER)["draft"] == ANSWER
    assert (row(raw)["describe_without"], row(raw)["describe_again"]) == ("", "")
    # The copy, and a copy of that message (a retried queue write): describe is done, no second draft.
    assert runner.run("describe", copy, message_id="copy") == [None]
    assert runner.run("describe", again, message_id="copy-2") == [None]
    assert run_one("ocr", ocr, message_id="third") is None
    assert len(chat.calls) == 1 and queued("describe") == 0


def test_ocr_done_in_the_ordinary_way_sends_describe_nothing_more(world, monkeypatch):
    """describe waiting for ocr (put back) is not a describe that ran without it: ocr finishing adds no message."""
    pres, chat = world
    monkeypatch.setenv("DOCINTEL_KEY", DI_KEY)
    raw = dispatched()
    assert runner.run("describe", raw) == [None]          # waits for ocr: put back once
    assert run_one("ocr", take("ocr")).state == journal.DONE
    assert queued("describe") == 1
    assert run_one("describe", take("describe")).state == journal.DONE
    assert row(raw)["describe_reason"] == "" and len(chat.calls) == 1 and queued("describe") == 0


def test_a_reviewed_draft_is_not_replaced_when_describe_runs_again(world, monkeypatch):
    """describe drafted from the transcript while ocr had failed; a person accepted that draft; ocr is replayed:
    describe runs again, finds the draft reviewed, and keeps it (no model call, the review's record intact)."""
    pres, chat = world
    ocr, raw = described_from_the_transcript()
    form = review_form(operator_get(f"drafts/{LETTER}").get_body())
    assert operator_post(f"drafts/{LETTER}/accept", {"text": ANSWER, **form}).status_code == 303
    reviewed = draft(LETTER)
    assert reviewed["status"] == "accepted" and pres.metadata(LETTER)

    assert replay_ocr_mended(ocr, monkeypatch).state == journal.DONE
    outcome = run_one("describe", take("describe"))
    assert (outcome.state, row(raw)["describe_reason"]) == (
        journal.SKIPPED, f"its draft was reviewed (accepted) before: not replaced; {AGAIN}")
    assert draft(LETTER) == reviewed and len(chat.calls) == 1


def test_a_draft_replaced_by_the_run_again_while_its_page_is_open_is_not_accepted_unseen(world, monkeypatch):
    """A reviewer opens the draft made from the transcript alone and edits it; ocr is replayed and describe drafts
    again from both texts: their accept is refused, the new draft shown, their text kept; nothing is written
    until they accept on the new draft's page, and then with that draft's record."""
    pres, chat = world
    ocr, raw = described_from_the_transcript()
    first = draft(LETTER)
    form = review_form(operator_get(f"drafts/{LETTER}").get_body())
    edited = ANSWER + " Reviewed."

    chat.answer = "A letter of 3 May 1921 from the Harbour Office: the harbour wall is breached and failing."
    assert replay_ocr_mended(ocr, monkeypatch).state == journal.DONE
    assert run_one("describe", take("describe")).state == journal.DONE
    second = draft(LETTER)
    assert second["sources"] == ["ocr", "transcript"] and second["draftId"] != first["draftId"]
    resp = operator_post(f"drafts/{LETTER}/accept", {"text": edited, **form})
    page = resp.get_body()
    assert resp.status_code == 409 and b"replaced since the page was shown" in page and chat.answer.encode() in page
    assert edited.encode() in page and draft(LETTER) == second
    assert pres.saved == [] and not any("reviewedDescription" in xml for _, xml in pres.metadata(LETTER))
    assert operator_post(f"drafts/{LETTER}/accept", {"text": edited, **review_form(page)}).status_code == 303
    accepted = draft(LETTER)
    assert (accepted["draftId"], accepted["sources"], accepted["review"]["text"]) == (
        second["draftId"], ["ocr", "transcript"], edited)


def test_a_review_while_describe_runs_again_wins(world, monkeypatch):
    """The draft is accepted between describe's look at it and its write: the write is refused (the ETag)."""
    pres, chat = world
    ocr, raw = describe_ran_without_ocr()
    assert replay_ocr_mended(ocr, monkeypatch).state == journal.DONE
    default().put_blob("drafts", f"{LETTER}.json", json.dumps({"ref": LETTER, "status": "pending"}).encode(),
                       "application/json", {"ref": LETTER, "status": "pending"})   # an earlier event's draft
    ask = action._ask

    def reviewed_meanwhile(*args):
        default().put_blob("drafts", f"{LETTER}.json", b'{"status": "accepted"}', "application/json",
                           {"ref": LETTER, "status": "accepted"})
        return ask(*args)
    monkeypatch.setattr(action, "_ask", reviewed_meanwhile)
    outcome = run_one("describe", take("describe"))
    assert outcome.state == journal.SKIPPED and outcome.reason.startswith("its draft changed while this one was made")
    assert draft(LETTER) == {"status": "accepted"}


def test_an_asset_deleted_meanwhile_is_read_afresh_and_not_drafted(world, monkeypatch):
    """The run again reads Preservica now, not the dispatcher's snapshot of the first event."""
    pres, chat = world
    ocr, raw = describe_ran_without_ocr()
    assert replay_ocr_mended(ocr, monkeypatch).state == journal.DONE
    pres.remove_asset(LETTER)
    outcome = run_one("describe", take("describe"))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "not found")
    assert chat.calls == [] and row(raw)["describe_reason"] == f"not found; {AGAIN}"


def test_ocr_finishing_while_describe_runs_without_it_is_not_missed(world, monkeypatch):
    """ocr records done after describe read the journal and before describe records that it ran without it:
    describe's runner, writing second, sees it and sends the event again."""
    pres, chat = world
    raw = dispatched()
    ocr = take("ocr")
    job = json.loads(raw)["events"][0]
    pk = json.loads(raw)["pk"]
    journal.default().set_state(pk, job["rk"], "ocr", journal.FAILED, "401", waits.MAX_ATTEMPTS)
    text = action._text

    def ocr_finishes_now(ctx, container, ref):
        if container == "ocr" and journal.default().get(pk, job["rk"])["ocr_state"] != journal.DONE:
            monkeypatch.setenv("DOCINTEL_KEY", DI_KEY)
            assert run_one("ocr", ocr, message_id="replayed").state == journal.DONE
            return None, None, False   # describe looked before ocr's text was there
        return text(ctx, container, ref)
    monkeypatch.setattr(action, "_text", ocr_finishes_now)
    assert run_one("describe", raw).state == journal.SKIPPED
    assert row(raw)["describe_state"] == "queued" and queued("describe") == 1
    assert (run_one("describe", take("describe")).state, row(raw)["describe_reason"]) == (journal.DONE, AGAIN)
    assert len(chat.calls) == 1


def test_describe_replayed_alone_still_runs(world, monkeypatch):
    """describe failed for good (its key wrong) and is replayed from poison once mended: it runs, once."""
    pres, chat = world
    monkeypatch.setenv("DOCINTEL_KEY", DI_KEY)
    raw = dispatched()
    assert run_one("ocr", take("ocr")).state == journal.DONE
    monkeypatch.setenv("OPENAI_KEY", "a-wrong-key")
    with pytest.raises(ChatRefused):
        runner.run("describe", raw, attempt=waits.MAX_ATTEMPTS)
    assert (row(raw)["describe_state"], row(raw)["describe_attempts"]) == ("failed", waits.MAX_ATTEMPTS)
    monkeypatch.setenv("OPENAI_KEY", KEY)                  # mended
    refused = len(chat.calls)
    assert run_one("describe", raw, message_id="replayed").state == journal.DONE
    assert row(raw)["describe_reason"] == "" and len(chat.calls) == refused + 1 and queued("describe") == 0
    assert draft(LETTER)["draft"] == ANSWER


def test_describe_that_waited_out_a_slow_ocr_runs_again_when_it_is_done(world, monkeypatch):
    """Not only a failure: ocr still working after ACTION_WAIT_SECONDS (a backlog), done later."""
    import datetime as dt
    pres, chat = world
    monkeypatch.setenv("DOCINTEL_KEY", DI_KEY)
    raw = dispatched()
    assert runner.run("describe", raw) == [None]
    waiting = take("describe")
    since = dt.datetime.fromisoformat(json.loads(waiting)["waitingSince"])
    monkeypatch.setattr(waits, "_now", lambda: since + dt.timedelta(seconds=3600))
    assert run_one("describe", waiting).state == journal.SKIPPED
    assert (row(raw)["describe_reason"], row(raw)["describe_without"]) == (
        "no text to describe (no ocr or transcribe text for this asset); waited 3600 s for ocr: ran with what existed",
        "ocr")
    assert run_one("ocr", take("ocr")).state == journal.DONE
    assert run_one("describe", take("describe")).state == journal.DONE
    assert row(raw)["describe_reason"] == AGAIN and len(chat.calls) == 1 and queued("describe") == 0


def test_a_send_that_fails_is_sent_by_the_retry_of_ocr(world, monkeypatch):
    """The row is queued to run again, then the send fails: ocr's message fails, and its retry (ocr finished,
    so it does not run) sends describe's event."""
    from handlers.core.errors import StorageUnavailable
    pres, chat = world
    ocr, raw = describe_ran_without_ocr()
    store, send = type(default()), type(default()).send

    def down(self, queue, message, delay=0):
        if queue == "action-describe":
            raise StorageUnavailable("queue action-describe: ServiceRequestError")
        return send(self, queue, message, delay)
    monkeypatch.setattr(store, "send", down)
    with pytest.raises(StorageUnavailable):
        replay_ocr_mended(ocr, monkeypatch)
    assert (row(raw)["ocr_state"], row(raw)["describe_state"], queued("describe")) == ("done", "queued", 0)
    monkeypatch.setattr(store, "send", send)
    assert runner.run("ocr", ocr, attempt=2, message_id="replayed") == [None]
    assert run_one("describe", take("describe")).state == journal.DONE
    assert row(raw)["describe_reason"] == AGAIN and len(chat.calls) == 1


def test_the_run_again_drafts_against_the_asset_as_it_is_now(world, monkeypatch):
    """A person retitled the asset and wrote a description meanwhile: the draft's record holds those (what the
    review's conflict check compares), not the first event's snapshot."""
    pres, chat = world
    ocr, raw = describe_ran_without_ocr()
    assert replay_ocr_mended(ocr, monkeypatch).state == journal.DONE
    pres.add_asset(LETTER, "Letter to the harbour master, 1921", description="Rewritten by a person.",
                   bitstreams=[("letter.png", make_png(), "Access")])
    assert run_one("describe", take("describe")).state == journal.DONE
    record = draft(LETTER)
    assert (record["title"], record["description"]) == ("Letter to the harbour master, 1921", "Rewritten by a person.")
    assert "Letter to the harbour master, 1921" in chat.calls[0].messages[1]["content"]
