"""An event whose run finds another run of the same asset at work (custody's lease on `custody/<ref>`) is put back
on its queue to wait, like an event waiting for an upstream action (pipeline/waits.py), instead of failing.

Before: it failed with LeaseBusy and the host retried it, five tries 30 s apart, then the poison queue: an event of
an asset whose copy ran longer than about 8 minutes, or the sixth event of one large asset in one message (four
performed at once, each waiting 75 s for the lease), needed an operator's replay."""
from __future__ import annotations

import json

import pytest

from handlers.clients import publish_lock
from handlers.clients.storage import default
from handlers.core.errors import StorageUnavailable
from handlers.pipeline import runner, waits
from tests.support.actions import ASSET
from tests.support.describe import queued, take, visible
from tests.support.jobs import row

MARKER = f"custody/{ASSET}"


@pytest.fixture
def another_run(env, pres, monkeypatch):
    """Another run of the asset holds its custody lease for the test's block; this run gives up waiting at once."""
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)   # the put-back is visible again after 1 s
    return lambda: publish_lock.held(default().blob_service(), MARKER, doing="copying")


def test_on_its_last_try_it_is_put_back_not_sent_to_poison(another_run, jobs):
    [raw] = jobs("custody")
    with another_run():
        assert runner.run("custody", raw, attempt=5, message_id="m1") == [None]   # no raise: the message completes
    got = row(raw)
    assert (got["custody_state"], got["custody_reason"]) == ("queued", "waiting: another run is copying this asset")
    assert not got.get("custody_lease") and "custody_attempts" not in got   # the claim ended; no try counted
    assert visible("custody") == 0 and queued("custody") == 1              # invisible for now

    again = take("custody")
    assert json.loads(again)["deferrals"] == 1 and json.loads(again)["waitingSince"]
    [outcome] = runner.run("custody", again, message_id="m2")            # the other run is over: this one copies
    assert (outcome.state, outcome.reason) == ("done", "v1 written")
    assert row(raw)["custody_state"] == "done" and queued("custody") == 0


def test_past_action_wait_seconds_it_fails_as_before(another_run, jobs):
    [raw] = jobs("custody")
    with another_run():
        runner.run("custody", raw, message_id="m1")
        doc = json.loads(take("custody"))
        doc["waitingSince"] = "2026-01-01T00:00:00.000+00:00"              # put back for longer than the bound
        with pytest.raises(publish_lock.Busy, match="another run is copying this asset"):
            runner.run("custody", json.dumps(doc).encode(), message_id="m2")
    got = row(raw)
    assert got["custody_state"] == "failed" and got["custody_reason"] == "LeaseBusy: another run is copying this asset"
    assert queued("custody") == 0


def test_when_the_put_back_cannot_be_sent_the_event_fails_and_is_retried(another_run, jobs, monkeypatch):
    """Nothing is lost: the message fails, and the host retries it (the put-back is sent before it completes)."""
    [raw] = jobs("custody")
    storage = default()

    def down(queue_name, message, delay=0):
        raise StorageUnavailable(f"queue {queue_name!r}: ServiceRequestError")
    with monkeypatch.context() as patch, another_run(), pytest.raises(publish_lock.Busy):
        patch.setattr(storage, "send", down)
        runner.run("custody", raw, message_id="m1")
    assert row(raw)["custody_state"] == "failed" and queued("custody") == 0


def test_a_put_back_seen_before_its_run_has_recorded_it_is_not_dropped(env, pres, jobs, monkeypatch):
    """The put-back may be taken before the run that sent it has written its row (a slow journal answer: 20 s a try,
    three tries, against a first delay of 30 s). Its claim must not find the sender's claim still held: it would
    step back, and the sender then completes its message, leaving the event queued with no message to run it."""
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)
    [raw] = jobs("custody")
    storage, real, got = default(), default().send, []
    lease = publish_lock.held(storage.blob_service(), MARKER, doing="copying")

    def seen_at_once(queue_name, message, delay=0):   # sent, then taken and run before anything else happens
        real(queue_name, message, delay=delay)
        lease.__exit__(None, None, None)                # the other run is over meanwhile
        got.append(runner.run("custody", take("custody"), message_id="m2"))
    lease.__enter__()
    with monkeypatch.context() as patch:
        patch.setattr(storage, "send", seen_at_once)
        assert runner.run("custody", raw, message_id="m1") == [None]
    assert [o.reason if o else None for o in got[0]] == ["v1 written"]
    assert row(raw)["custody_state"] == "done" and queued("custody") == 0


def test_replayed_from_poison_its_wait_starts_again(another_run, jobs):
    """It waited past ACTION_WAIT_SECONDS, failed its five tries and went to poison; replayed while the other run
    still holds the lease, it waits again. Before, the replay kept its `waitingSince` of an hour ago and failed at
    once (and a replayed `describe` ran without the `ocr` replayed with it)."""
    import base64

    from handlers.clients import poison
    [raw] = jobs("custody")
    with another_run():
        runner.run("custody", raw, message_id="m1")
        doc = json.loads(take("custody"))
        doc["waitingSince"] = "2026-01-01T00:00:00.000+00:00"
        poisoned = json.dumps(doc).encode()
        with pytest.raises(publish_lock.Busy):
            runner.run("custody", poisoned, attempt=5, message_id="m2")   # the host moves it to poison
        storage = default()
        dead = poison.raw_queue(storage, "action-custody" + poison.POISON_SUFFIX)
        dead.create_queue()   # as the host makes it
        dead.send_message(base64.b64encode(poisoned).decode())
        assert poison.replay(storage, "action-custody") == 1
        replayed = take("custody")
        assert json.loads(replayed) == {k: v for k, v in doc.items() if k not in ("waitingSince", "deferrals")}
        assert runner.run("custody", replayed, message_id="m3") == [None]   # waits again, not failed
    assert row(raw)["custody_state"] == "queued"
