import base64
import json

import pytest

from handlers.core import envelope, journal, messages

REF1, REF2 = "7fdea7e0-1e72-4fb1-aadb-d7f9ee6ed8c2", "1c0ffee0-0000-4000-8000-000000000002"
DELIVERY = {"subscriptionId": "sub1", "timestamp": "2023-10-11T10:52:42.469", "tenant": "T", "version": "6.10",
            "trigger": "FULL_TEXT_INDEXED", "unknownField": 1,
            "events": [{"event": "FullTextIndexed", "entityType": "IO", "entityRef": REF1, "identifiers": []}]}


def body(doc=DELIVERY) -> bytes:
    return json.dumps(doc).encode()


def test_parse_keeps_fields_and_tolerates_extra():
    d, text = envelope.parse_delivery(body())
    assert (d.subscription_id, d.trigger, d.tenant, len(d.events)) == ("sub1", "FULL_TEXT_INDEXED", "T", 1)
    assert d.extra == {"unknownField": 1}
    assert json.loads(text) == DELIVERY


def test_lenient_about_absent_optional_fields():
    d, _ = envelope.parse_delivery(b'{"events": [{}]}')
    assert d.trigger == "" and d.timestamp == "" and journal.partition(d) == "undated"


@pytest.mark.parametrize("raw, why", [
    (b"\xff\xfe", "UTF-8"), (b"not json", "JSON"), (b"[]", "object"), (b'{"events": {}}', "events"),
    (b'{"trigger": "MOVED"}', "events"), (b'{"events": [1]}', "events[0]"),
])
def test_invalid_deliveries_say_why(raw, why):
    with pytest.raises(envelope.InvalidDelivery) as err:
        envelope.parse_delivery(raw)
    assert why in str(err.value)


def test_event_key_is_deterministic_and_distinguishes_events():
    d, _ = envelope.parse_delivery(body())
    e = d.events[0]
    assert envelope.event_key(d, e) == envelope.event_key(envelope.parse_delivery(body())[0], dict(e))
    assert envelope.event_key(d, e) != envelope.event_key(d, {**e, "entityRef": REF2})
    assert envelope.event_key(d, e) == envelope.event_key(d, {**e, "entityRef": f"https://x/api/entity/information-objects/{REF1}"})


def test_newer_deliveries_sort_first():
    old, _ = envelope.parse_delivery(body())
    new, _ = envelope.parse_delivery(body({**DELIVERY, "timestamp": "2024-01-01T00:00:00"}))
    assert journal.partition(new) < journal.partition(old)
    assert journal.row_prefix(new, "x") < journal.row_prefix(old, "x")


def test_intake_message_embeds_body_verbatim_and_is_valid_json():
    _, text = envelope.parse_delivery(body())
    msg = messages.intake_message("id1", "2026-01-01T00:00:00Z", text)
    doc = messages.read_intake_message(msg)
    assert doc["delivery"] == DELIVERY and doc["id"] == "id1"


def test_fits_queue_respects_base64_limit():
    small = "x" * messages.MAX_QUEUE_PAYLOAD
    assert messages.fits_queue(small)
    assert len(base64.b64encode(small.encode())) <= 64 * 1024
    assert not messages.fits_queue(small + "x")


def test_job_round_trip():
    d, _ = envelope.parse_delivery(body())
    job = messages.jobs_for(d, "did", d.events[0], ("journal", "teams"), "k", "pk", "rk")[1]
    job = messages.replace(job, snapshot={"parts": ["summary"], "title": "T"})
    [back] = messages.read_batch(messages.pack([job], 10)[0])
    assert back == job and back.snapshot == job.snapshot and back.entity_ref == REF1 and back.entity_type == "IO"


def test_batches_hold_at_most_the_batch_size_and_fit_a_queue_message():
    d, _ = envelope.parse_delivery(body())
    jobs = [messages.replace(messages.jobs_for(d, "did", {**d.events[0], "pad": "x" * 15000}, ("teams",),
                                               f"k{i}", "pk", f"rk{i}")[0]) for i in range(12)]
    packed = messages.pack(jobs, 5)
    assert all(messages.fits_queue(m) for m in packed)
    back = [j for m in packed for j in messages.read_batch(m)]
    assert [j.key for j in back] == [j.key for j in jobs]               # every event once, in order
    assert max(len(messages.read_batch(m)) for m in messages.pack(jobs[:3], 50)) <= 3
    assert len(messages.pack([messages.replace(j, event={"entityRef": REF1}) for j in jobs], 5)) == 3


@pytest.mark.parametrize("raw", [b"x", b"{}", b'{"v": 2}', b'{"v": 1, "action": "teams"}',
                                 b'{"v": 1, "action": "t", "kind": "event", "deliveryId": "d", "trigger": "", '
                                 b'"tenant": "", "subscriptionId": "", "timestamp": "", "pk": "p", "events": []}'])
def test_bad_messages_are_invalid(raw):
    with pytest.raises(messages.InvalidMessage):
        messages.read_batch(raw)


def test_inverted_ms_is_the_key_of_journal_rows_and_sorts_newest_first():
    import datetime as dt
    t = dt.datetime(2023, 10, 11, 10, 52, 42, 469000, tzinfo=dt.UTC)
    key = journal.inverted_ms(t)
    assert key == f"{10**14 - 1697021562469:014d}" and len(key) == 14
    assert journal.inverted_ms(t + dt.timedelta(milliseconds=1)) < key
    d = envelope.Delivery("s", "2023-10-11T10:52:42.469Z", "T", "6.10", "X", ())
    assert journal.row_prefix(d, "did") == key + "-"
