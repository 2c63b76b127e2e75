"""Deliveries of any size within MAX_BODY_BYTES: intake accepts them, the dispatcher works through them a
page per invocation (continuations on the delivery queue), against real Azurite."""
import base64
import datetime as dt
import json
import random
import tracemalloc

import pytest
from azure.storage.queue import QueueClient

from handlers import dispatch, intake
from handlers.clients import journal
from handlers.core import envelope, messages, settings
from handlers.core.errors import InvalidMessage
from hookops.doubles.deliveries import delivery, encode
from tests.support.intake import signed

PAGE = 1000


def big(n: int, pad: int = 0) -> dict:
    # Sent now, as a webhook on time is: a late one also claims each event's identity for the reconciler, two
    # storage round trips an event that paging does not need (a late delivery retried: tests/test_dispatch.py).
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000")
    doc = delivery(refs=[f"big-{i}" for i in range(n)], subscription="big", timestamp=now)
    for e in doc["events"]:
        e["identifiers"] = [{"type": "filler", "value": "x" * pad}] if pad else []
    return doc


def take(conn: str, queue: str) -> list[bytes]:
    q = QueueClient.from_connection_string(conn, queue)
    out = []
    while batch := list(q.receive_messages(max_messages=32)):
        for m in batch:
            out.append(base64.b64decode(m.content))
            q.delete_message(m)
    return out


def post(body: bytes):
    return intake.handle(signed(body))


def run_delivery(conn: str, kill_after: int | None = None) -> tuple[int, int]:
    """Dispatch what is on the delivery queue, continuation after continuation, as the host would: (pages,
    messages). `kill_after`: the invocation after that many pages dies before its continuation is queued."""
    pages = sent = 0
    while msgs := take(conn, settings.DELIVERY_QUEUE):
        for raw in msgs:
            if kill_after is not None and pages == kill_after:
                from handlers.clients import delivery_queue
                real = delivery_queue.continue_at
                delivery_queue.continue_at = _die
                try:
                    with pytest.raises(SystemExit):
                        dispatch.dispatch(raw)
                finally:
                    delivery_queue.continue_at = real
                kill_after = None
                QueueClient.from_connection_string(conn, settings.DELIVERY_QUEUE).send_message(
                    base64.b64encode(raw).decode())  # the host gives the message again
                continue
            sent += dispatch.dispatch(raw)["messages"]
            pages += 1
    return pages, sent


def _die(*_):
    raise SystemExit("killed between a page's messages and its continuation")


# ---- parsing a page -----------------------------------------------------------------------------

def test_a_page_is_the_same_events_json_loads_sees():
    doc = big(25)
    body = encode(doc)
    whole, _ = envelope.parse_delivery(body)
    for offset, size in ((0, 10), (10, 10), (20, 10), (24, 1), (25, 10), (0, 100)):
        page, total = envelope.parse_page(body, offset, size)
        assert total == 25
        assert page.events == whole.events[offset:offset + size]
        assert (page.trigger, page.timestamp, page.subscription_id) == (whole.trigger, whole.timestamp, "big")


@pytest.mark.parametrize("text", [
    '{"events": [], "events": 5}', '{"events": [1,]}', '{"events": []} x', '{"events": [],}', '{1: 2}',
    '["events"]', '{"events": [{}]', '', '{"events" [] }', '\ufeff{"events": []}'.encode("utf-8").decode("latin-1"),
])
def test_a_page_refuses_what_intake_refuses(text):
    body = text.encode("utf-8")
    with pytest.raises(envelope.InvalidDelivery):
        envelope.parse_delivery(body)
    with pytest.raises(envelope.InvalidDelivery):
        envelope.parse_page(body, 0, 10)


def test_a_page_agrees_with_json_loads_on_odd_but_valid_json():
    rnd = random.Random(7)
    for _ in range(50):
        doc = big(rnd.randint(0, 12))
        doc["extra"] = {"nested": [1, {"a": "\u00e9\\\"]},"}]}
        if rnd.random() < 0.3:
            doc = {"events": [{"event": "x"}], **doc}  # a repeated key: the last one wins
        text = json.dumps(doc, indent=rnd.choice([None, 0, 2]), ensure_ascii=rnd.random() < 0.5)
        body = ("\ufeff" if rnd.random() < 0.2 else "").encode() + f" \n{text}\r\n".encode()
        whole, _ = envelope.parse_delivery(body)
        offset, size = rnd.randint(0, 12), rnd.randint(1, 5)
        page, total = envelope.parse_page(body, offset, size)
        assert total == len(whole.events) and page.events == whole.events[offset:offset + size]
        assert page.extra == whole.extra


def test_a_continuation_offset_must_be_a_whole_number():
    for bad in ('-1', '"3"', '1.5', 'true'):
        raw = f'{{"v":1,"id":"x","received":"","blob":"x.json","offset":{bad}}}'
        with pytest.raises(InvalidMessage):
            messages.read_intake_message(raw)
    assert messages.read_intake_message('{"v":1,"id":"x","blob":"x.json"}')["offset"] == 0


# ---- intake --------------------------------------------------------------------------------------

def test_a_signed_5000_event_delivery_is_accepted(app_env):
    body = encode(big(5000))
    resp = post(body)
    assert resp.status_code == 200, resp.get_body()
    assert json.loads(resp.get_body())["events"] == 5000


def test_a_delivery_of_max_body_bytes_is_accepted(app_env):
    limit = settings.get_int("MAX_BODY_BYTES")
    one = len(json.dumps(big(1)["events"][0]))
    doc = big((limit - len(encode(big(0)))) // (one + 2))
    body = encode(doc)
    body = body[:-1] + b' ' * (limit - len(body)) + b'}'
    assert len(body) == limit
    resp = post(body)
    assert resp.status_code == 200, resp.get_body()
    assert json.loads(resp.get_body())["events"] == len(doc["events"]) > 25_000
    assert post(body + b" ").status_code == 413


# ---- dispatch, a page at a time ------------------------------------------------------------------

def _journal_once(conn: str, monkeypatch) -> dict[str, int]:
    """Run every journal message, the journal action declared non-repeatable as an external effect is:
    how many times each event's action was performed."""
    import dataclasses

    from handlers.pipeline import registry, runner
    from handlers.pipeline.contract import Outcome
    done: dict[str, int] = {}

    def perform(job, ctx):
        done[job.rk] = done.get(job.rk, 0) + 1
        return Outcome("done")
    declared = registry.actions()
    monkeypatch.setitem(declared, "journal", dataclasses.replace(declared["journal"], repeatable=False, perform=perform))
    for raw in take(conn, settings.action_queue("journal")):
        runner.run("journal", raw)
    return done


def _queued(conn: str) -> dict[str, list[bytes]]:
    """Each event's journal messages, by RowKey."""
    out: dict[str, list[bytes]] = {}
    for raw in take(conn, settings.action_queue("journal")):
        for job in messages.read_batch(raw):
            out.setdefault(job.rk, []).append(raw)
    return out


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kill_after", [None, 2])
def test_a_5000_event_delivery_is_dispatched_in_pages_each_event_once(app_env, monkeypatch, kill_after):
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", str(PAGE))
    assert post(encode(big(5000))).status_code == 200
    pages, _ = run_delivery(app_env.connection_string, kill_after)
    assert pages == 5
    rows = {r["RowKey"]: r for r in journal.default().recent(10_000)}
    assert len(rows) == 5000 and all(r["journal_state"] == "queued" for r in rows.values())
    queued = _queued(app_env.connection_string)
    assert queued.keys() == rows.keys()
    twice = {rk for rk, raws in queued.items() if len(raws) > 1}
    # Only the page that died is queued again (its messages had gone before it died): never another page.
    assert len(twice) == (PAGE if kill_after is not None else 0) and all(len(queued[rk]) == 2 for rk in twice)
    # Both copies of one of its messages performed: each of those events' action once all the same.
    if not twice:
        return
    again = queued[min(twice)]
    for raw in again:
        QueueClient.from_connection_string(app_env.connection_string, settings.action_queue("journal")).send_message(
            base64.b64encode(raw).decode())
    performed = _journal_once(app_env.connection_string, monkeypatch)
    assert performed == dict.fromkeys((j.rk for j in messages.read_batch(again[0])), 1) and min(twice) in performed


def test_a_page_run_again_after_its_actions_finished_queues_nothing(app_env, monkeypatch):
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", "40")
    assert post(encode(big(100, pad=500))).status_code == 200   # over the queue payload: claim-checked
    [first] = take(app_env.connection_string, settings.DELIVERY_QUEUE)
    assert "blob" in json.loads(first)
    assert dispatch.dispatch(first) == {"events": 40, "messages": 1, "next": 40}
    assert len(_journal_once(app_env.connection_string, monkeypatch)) == 40
    again = dispatch.dispatch(first)   # a crash after the continuation: the host gives the page again
    assert again == {"events": 40, "messages": 0, "next": 40}
    conts = take(app_env.connection_string, settings.DELIVERY_QUEUE)
    assert [json.loads(c)["offset"] for c in conts] == [40, 40] and all("blob" in json.loads(c) for c in conts)


def test_an_inline_delivery_is_paged_too(app_env, monkeypatch):
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", "3")
    assert post(encode(big(7))).status_code == 200
    pages, sent = run_delivery(app_env.connection_string)
    assert (pages, sent) == (3, 3)
    assert len(_journal_once(app_env.connection_string, monkeypatch)) == 7


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(900)
def test_one_page_invocation_holds_the_body_and_a_page_whatever_the_delivery(app_env, monkeypatch):
    """Beyond the claim-checked body (which the SDK's download holds several copies of while it reads:
    bounded by MAX_BODY_BYTES), a page invocation holds the body's text and its page, not the delivery's
    events: json.loads of the whole 34,000-event body alone would take ~18 MiB more."""
    from handlers.clients import delivery_queue, storage
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", "100")
    limit = settings.get_int("MAX_BODY_BYTES")
    store = storage.default()
    for n in (1000, (limit - 200) // (len(json.dumps(big(1)["events"][0])) + 2)):
        body = encode(big(n))
        assert len(body) <= limit
        delivery_queue.enqueue(store, f"d{n}", "2026-11-29T10:00:01Z", body.decode())
        take(app_env.connection_string, settings.DELIVERY_QUEUE)
        read = _peak(lambda n=n: store.get_blob(settings.DELIVERY_CONTAINER, f"d{n}.json"))
        assert read < 10 * limit, read
        middle = messages.claim_message(f"d{n}", "2026-11-29T10:00:01Z", f"d{n}.json", offset=n // 2).encode()
        with monkeypatch.context() as m:
            m.setattr(type(store), "get_blob", lambda self, container, name, body=body: body)  # read already
            page = _peak(lambda middle=middle: dispatch.dispatch(middle))
        assert page < 2 * len(body) + 6 * 2**20, (n, len(body), page)
        take(app_env.connection_string, settings.DELIVERY_QUEUE)
        take(app_env.connection_string, settings.action_queue("journal"))
