"""Attacks on the operator's terminal through `hookops events` and `hookops poison`: what they print
comes from senders (Preservica deliveries, queue messages), so it must not carry control sequences.
Against a real Azurite (the `app_env` fixture); output is taken as a terminal would get it (color=True,
so click strips nothing)."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import unicodedata

import pytest
from azure.storage.queue import QueueClient
from click.testing import CliRunner

from handlers import dispatch
from handlers.clients import journal
from handlers.core import envelope, messages, settings
from hookops.cli import main as cli
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.host.queues import ensure

UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}
# Erase the line and return to its start, an OSC 8 hyperlink, a bidi override, a line separator,
# DEL, a C1 CSI, a zero-width joiner and a lone surrogate.
EVIL_REF = "asset\x1b[2K\rDONE\x7f\x9b31m"
EVIL_TRIGGER = "MOVED\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
EVIL_REASON = "bad\u202egnp.exe\u2028next\u200dline\ud800"


def hookops(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, color=True)
    assert result.exit_code == 0, result.output
    return result.output


def unsafe_chars(text: str) -> set[str]:
    return {c for line in text.split("\n") for c in line if unicodedata.category(c) in UNSAFE}


@pytest.fixture
def evil_row(app_env):
    """A journaled event whose sender-controlled fields carry terminal control sequences. Intake now
    refuses such a ref, so it is written into the row directly (older rows, or another writer)."""
    body = encode(delivery(trigger=EVIL_TRIGGER, refs=["evil"]))
    did = envelope.delivery_id(body)
    dispatch.dispatch(messages.intake_message(did, "2026-11-29T10:00:01Z", body.decode()).encode())
    [row] = [r for r in journal.default().recent(10) if r["entityRef"] == ref("evil")]
    journal.default().merge(row["PartitionKey"], row["RowKey"], {"entityRef": EVIL_REF})
    journal.default().set_state(row["PartitionKey"], row["RowKey"], "journal", "failed", EVIL_REASON)
    return {**row, "entityRef": EVIL_REF}


def test_terminal_escape_sequences_in_events(evil_row):
    out = hookops("events")
    assert not unsafe_chars(out), out
    assert "asset\\x1b[2K\\rDONE\\x7f\\x9b31m" in out
    assert "MOVED\\x1b]8;;HTTP://EVIL.EXAMPLE\\x07CLICK\\x1b]8;;\\x07" in out  # the trigger is upper-cased
    assert "journal:failed(bad\\u202egnp.exe\\u2028next\\u200dline\\ud800)" in out


def test_terminal_escape_sequences_in_events_json(evil_row):
    out = hookops("events", "--json")
    assert not unsafe_chars(out), out
    assert "\x7f" not in out  # json.dumps leaves DEL as it is
    [doc] = [json.loads(line) for line in out.splitlines() if json.loads(line)["entityRef"] == EVIL_REF]
    assert doc["actions"]["journal"] == {"state": "failed", "reason": EVIL_REASON}  # nothing lost


def _poison_queue(app_env, action: str = "teams") -> QueueClient:
    return ensure(QueueClient.from_connection_string(app_env.connection_string,
                                                      settings.action_queue(action) + "-poison"))


def _job(ref: str) -> str:
    doc = {"v": 1, "action": "teams", "deliveryId": "d" * 32, "events": [{"key": "k", "rk": "r", "event": {"entityRef": ref}}]}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def test_terminal_escape_sequences_in_poison_list(app_env):
    _poison_queue(app_env).send_message(_job(EVIL_REF))
    out = hookops("poison", "list")
    assert not unsafe_chars(out), out
    assert "refs=asset\\x1b[2K\\rDONE" in out


def test_poison_expiry_hidden_from_operator(app_env):
    """`poison list` did not say when a poison message expires, so nobody knew how long was left to
    replay it; the host gives the copy 7 days (see QueuePoller._poison in hookops/host/queues.py)."""
    q = _poison_queue(app_env)
    q.send_message(_job("expiring-asset"))
    q.send_message(_job("immortal-asset"), time_to_live=-1)
    peeked = {json.loads(base64.b64decode(m.content))["events"][0]["event"]["entityRef"]: m
              for m in q.peek_messages(max_messages=32)}
    out = hookops("poison", "list")
    [expiring] = [line for line in out.splitlines() if "expiring-asset" in line]
    when = peeked["expiring-asset"].expires_on.astimezone(dt.UTC)
    assert f"expires {when:%Y-%m-%d %H:%M:%S} UTC" in expiring
    assert re.search(r"\(in 6d 2[0-3]h\)|\(in 7d 0h\)", expiring), expiring
    [immortal] = [line for line in out.splitlines() if "immortal-asset" in line]
    assert "expires never" in immortal


def test_replayed_message_expires_again(app_env):
    """Replay re-sent with the service default: a replayed message expired 7 days later in its queue,
    e.g. while the app was still down. It is now sent never to expire."""
    _poison_queue(app_env).send_message(_job("replayed-asset"))
    target = QueueClient.from_connection_string(app_env.connection_string, settings.action_queue("teams"))
    ensure(target)  # the host creates its trigger queues
    assert "replayed 1 message" in hookops("poison", "replay", "--queue", settings.action_queue("teams"))
    [m] = [m for m in target.peek_messages(max_messages=32) if m.content == _job("replayed-asset")]
    assert m.expires_on.year == 9999


@pytest.mark.parametrize("content", ["WzEsMl0=", "InRleHQi", "eyJldmVudCI6ICJ4In0=", "//79", "not base64!"])
def test_malformed_poison_message(app_env, content):
    """Poison queues hold exactly the messages that were wrong: one that is JSON but not an object
    ([1,2], "text", an `event` that is a string) or not UTF-8 made `poison list` crash."""
    _poison_queue(app_env).send_message(content)
    out = hookops("poison", "list")
    assert "not a pipeline message" in out and "total: 1" in out


def test_replay_into_a_queue_removed_by_hand_recreates_it(app_env):
    """Replay crashed with a traceback when the target queue did not exist (removed by hand)."""
    _poison_queue(app_env).send_message(_job("orphan-asset"))
    target = QueueClient.from_connection_string(app_env.connection_string, settings.action_queue("teams"))
    try:
        target.delete_queue()
    except Exception:
        pass
    assert "replayed 1 message" in hookops("poison", "replay", "--queue", settings.action_queue("teams"))
    assert len(list(target.peek_messages())) == 1


# ---- Preservica's and an endpoint's text in `unsubscribe --all` and `send-test-event` -------------

from hookops.doubles.base import HttpDouble, Reply  # noqa: E402
from tests.support.cli import seed  # noqa: E402

# An OSC 8 hyperlink (no "/" in it: it is a path segment of the DELETE) and clear screen + cursor home.
EVIL_ID = "sub\x1b]8;;evil.example\x07click-me\x1b]8;;\x07\x1b[2J\x1b[H"
CLEAR_AND_LINK = "ok\x1b[2J\x1b[H\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\u202e"


def test_terminal_escape_sequences_in_unsubscribe_all(env, cli_loggers):
    """`unsubscribe --all` printed each subscription id as Preservica listed it."""
    seed(env, "https://a.example/hook", "MOVED")
    env.subscriptions[EVIL_ID] = {**env.subscriptions.popitem()[1], "id": EVIL_ID}
    out = hookops("unsubscribe", "--all", "--yes")
    assert env.subscriptions == {}                       # it was removed: the id went to Preservica unchanged
    assert not unsafe_chars(out), out
    assert "unsubscribed sub\\x1b]8;;evil.example\\x07click-me" in out


class _Chatty(HttpDouble):
    """An endpoint whose answer to a delivery carries a clear-screen sequence and an OSC 8 link."""

    def handle(self, request):
        return Reply(200, {"Content-Type": "text/plain; charset=utf-8"}, CLEAR_AND_LINK.encode())


def test_terminal_escape_sequences_in_send_test_event(app_env):
    with _Chatty() as endpoint:
        out = hookops("send-test-event", "--url", endpoint.base_url + "/api/preservica/webhook")
    assert not unsafe_chars(out), out
    assert "200 ok\\x1b[2J\\x1b[H\\x1b]8;;http://evil.example/\\x07click" in out


def test_terminal_escape_sequences_in_a_preservica_failure(app_env, monkeypatch, tmp_path):
    """A next-page link whose path (after the last /api/, before a `#`) carries a bidi override and a C1
    CSI: pyPreservica's HTTPException names that path, the classified error quotes it, and `hookops
    eventlog-types` failed with it raw. Every `_fail` message is now escaped, whatever it quotes."""
    from handlers.clients import preservica
    from hookops.doubles.preservica import PreservicaDouble
    from tests.support.reconcile import PASSWORD, TENANT, USER
    monkeypatch.chdir(tmp_path)   # no credentials.properties for pyPreservica
    preservica.forget_client()
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as pres:
        for name, value in {"PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_PASSWORD": PASSWORD,
                            "PRESERVICA_TENANT": TENANT, "PRESERVICA_PROTOCOL": "http", "NO_PROXY": "127.0.0.1"}.items():
            monkeypatch.setenv(name, value)
        now = dt.datetime.now(dt.UTC)
        pres.record_event("Ingest", [ref("cli-a")], now - dt.timedelta(hours=2))
        pres.record_event("Ingest", [ref("cli-b")], now - dt.timedelta(hours=1))
        pres.page_limit = 1
        pres.next_base = f"http://{pres.server}/api/\u202eevil\x9b2J#"
        pres.fail_next(1, 400, path_prefix="/api/%E2%80%AE")
        result = CliRunner().invoke(cli, ["eventlog-types", "--days", "1"], color=True)
    preservica.forget_client()
    assert result.exit_code != 0 and "cannot read the event log" in result.output, result.output
    assert "evil" in result.output and unsafe_chars(result.output) == set(), result.output


@pytest.mark.parametrize("content", ["not base64!", "WzEsMl0=",
                                     base64.b64encode(b'{"waitingSince": "x", "deferrals": 1}').decode(),
                                     base64.b64encode(b'{"action": "ocr", "events": []}').decode()])
def test_replay_moves_anything_but_a_put_back_event_byte_for_byte(content):
    """Only a pipeline action message that was put back to wait is rewritten on replay (its wait starts again)."""
    from handlers.clients import poison
    assert poison._fresh(content) == content


def test_replay_starts_a_put_back_events_wait_again_and_keeps_the_rest_as_it_was():
    from handlers.clients import poison
    doc = {"v": 1, "action": "describe", "deferrals": 3, "waitingSince": "2026-01-01T00:00:00.000+00:00",
           "events": [{"event": {"entityRef": "x", "title": "Café \u2603"}}]}
    again = json.loads(base64.b64decode(poison._fresh(base64.b64encode(json.dumps(doc).encode()).decode())))
    assert again == {k: v for k, v in doc.items() if k not in ("deferrals", "waitingSince")}
