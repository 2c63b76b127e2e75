"""What an action's claim reads of the journal, against real Azurite: the rows of its message's events only.
A batch's RowKeys are hashes, so their range spans the whole delivery: a claim of the last batch of a
34,000-event delivery streamed about 660 rows per event. The message carries its events' span of journal
positions; the claim's query keeps to it, and a row not found there gets a point read."""
import json

import pytest

from handlers.clients import journal
from handlers.core import messages, settings
from hookops.doubles.deliveries import encode
from tests.test_page_reads import PAGE, counter, page_by_page, rows_read  # noqa: F401 - counter is a fixture
from tests.test_pages import big, post, take


@pytest.fixture
def last_batch(app_env, monkeypatch, counter):  # noqa: F811
    """The journal action's last message of a 12-page delivery, as its function would receive it."""
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", str(PAGE))
    assert post(encode(big(12 * PAGE))).status_code == 200
    page_by_page(app_env.connection_string, counter)
    raw = take(app_env.connection_string, settings.action_queue("journal"))[-1]
    return messages.read_batch(raw)


def claim(jobs, owner: str = "owner-1") -> set[str]:
    return journal.default().claim_many(jobs[0].pk, [j.rk for j in jobs], "thumbnail", owner, 60, jobs[0].span)


def test_a_claim_reads_its_own_rows_only(last_batch, counter):  # noqa: F811
    assert last_batch[0].span is not None and len(last_batch) == PAGE
    counter.reset()
    assert claim(last_batch) == {j.rk for j in last_batch}
    assert rows_read(counter) == PAGE   # not the 220 rows of the pages before it


def test_a_row_moved_to_another_deliverys_place_is_still_read_and_its_claim_kept(last_batch, counter):  # noqa: F811
    """Another delivery with the same event writes the row's position anew: the span does not find it, a point
    read does, so a live claim on it is seen and not taken twice."""
    book, moved = journal.default(), last_batch[3]
    book.merge(moved.pk, moved.rk, {journal.POSITION: "another-delivery/000000000"})
    assert claim([moved], owner="owner-0") == {moved.rk}
    counter.reset()
    assert claim(last_batch) == {j.rk for j in last_batch} - {moved.rk}
    assert rows_read(counter) == PAGE


@pytest.mark.parametrize("span", [None, "a", ["a"], ["b", "a"], ["a", 1], ["", "b"], ["a" * 201, "b" * 201],
                                  {"first": "a", "last": "b"}])
def test_a_span_not_as_packed_reads_every_row_of_the_range_instead(span):
    job = messages.Job(action="journal", key="k", pk="p", rk="r", delivery_id="d", trigger="MOVED", tenant="t",
                       subscription_id="s", timestamp="2026-12-07T10:00:00.000Z", event={}, position="d/000000001")
    doc = json.loads(messages.pack([job], 10)[0])
    assert doc["span"] == ["d/000000001", "d/000000001"]
    doc["span"] = span
    assert messages.read_batch(json.dumps(doc))[0].span is None


def test_a_batch_put_back_keeps_its_span():
    job = messages.Job(action="describe", key="k", pk="p", rk="r", delivery_id="d", trigger="MOVED", tenant="t",
                       subscription_id="s", timestamp="2026-12-07T10:00:00.000Z", event={}, position="d/000000007")
    [read] = messages.read_batch(messages.pack([job], 10)[0])
    assert messages.read_batch(messages.pack([read], 10)[0])[0].span == ("d/000000007", "d/000000007")
