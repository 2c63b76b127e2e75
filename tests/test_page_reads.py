"""What a dispatcher page reads of the journal, against real Azurite: its own rows, not the rows of the pages
before it (RowKeys are hashes, so a page's RowKey range spans the whole delivery); and what that must not lose:
a page run again, the same event on two pages, a delivery whose rows are there under another id, and the
conditional write."""
import json
import re

import pytest

from bench.probes import StorageCounter
from handlers import dispatch
from handlers.clients import journal
from handlers.core import envelope, messages, settings
from hookops.doubles.deliveries import encode, ref
from tests.support.jobs import run_one
from tests.support.queues import drain, intake_msg
from tests.test_pages import big, post, take

PAGE = 20
TABLE_LIMIT = 15   # comparisons in one $filter: learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities


def rows_read(counter: StorageCounter) -> int:
    """Journal rows the app's queries and point reads returned since the last reset (one odata.etag each)."""
    return sum(v["items"] for k, v in counter.detail().items()
               if k.startswith(("app|table|query", "app|table|get")))


def page_by_page(conn: str, counter: StorageCounter) -> list[tuple[bytes, int]]:
    """Each page's message and the journal rows its dispatch read, a page at a time as the trigger runs them."""
    out = []
    while msgs := take(conn, settings.DELIVERY_QUEUE):
        for raw in msgs:
            counter.reset()
            dispatch.dispatch(raw)
            out.append((raw, rows_read(counter)))
    return out


@pytest.fixture
def counter(app_env):
    c = StorageCounter(app_env.connection_string).install()
    yield c
    c.remove()


@pytest.fixture
def filters(monkeypatch):
    """Every $filter the app's table queries send."""
    from azure.data.tables import TableClient
    sent: list[str] = []
    real = TableClient.query_entities

    def query_entities(self, query_filter, **kwargs):
        sent.append(query_filter)
        return real(self, query_filter, **kwargs)
    monkeypatch.setattr(TableClient, "query_entities", query_entities)
    return sent


def test_the_last_page_of_many_reads_its_own_rows_only(app_env, monkeypatch, counter, filters):
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", str(PAGE))
    assert post(encode(big(12 * PAGE))).status_code == 200
    pages = page_by_page(app_env.connection_string, counter)
    assert len(pages) == 12
    # The first run of a page finds none of its rows: nothing of the 220 rows before the last page is read.
    assert [n for _, n in pages] == [0] * 12
    last, _ = pages[-1]
    take(app_env.connection_string, settings.action_queue("journal"))
    counter.reset()
    assert dispatch.dispatch(last)["messages"] == 1     # run again (its rows still queued): re-sent, as before
    assert rows_read(counter) == PAGE                   # its own rows, each once
    worst = max(len(re.findall(r"\b(?:eq|ne|gt|ge|lt|le)\b", f)) for f in filters)
    assert worst <= TABLE_LIMIT, filters


def _twice(n: int, first: int, again: int) -> dict:
    doc = big(n)
    doc["events"][again] = dict(doc["events"][first])
    return doc


def _journal_jobs(conn: str) -> list[messages.Job]:
    return [j for raw in take(conn, settings.action_queue("journal")) for j in messages.read_batch(raw)]


@pytest.mark.parametrize("page", [PAGE, 150])   # 150: the second page writes two transactions, the later fails
def test_an_event_on_two_pages_is_dispatched_once(app_env, monkeypatch, counter, page):
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", str(page))
    n, first, again = 2 * page, 3, 2 * page - 10
    assert post(encode(_twice(n, first, again))).status_code == 200
    pages = page_by_page(app_env.connection_string, counter)
    jobs = _journal_jobs(app_env.connection_string)
    assert len(jobs) == n - 1 and len({j.rk for j in jobs}) == n - 1   # each event once, the repeat too
    rows = journal.default().recent(1000)
    assert len(rows) == n - 1
    assert [read for _, read in pages] == [0, 1]   # the second page read its repeat's row, not the first page's
    [repeat] = [r["RowKey"] for r in rows if r["entityRef"] == ref(f"big-{first}")]
    # The second page run again (killed before its continuation): its own events go again, the repeat does not.
    again_jobs = dispatch.dispatch(pages[1][0])
    assert again_jobs["events"] == page - 1
    rks = {j.rk for j in _journal_jobs(app_env.connection_string)}
    assert len(rks) == page - 1 and repeat not in rks
    assert {r["RowKey"]: r[journal.POSITION] for r in journal.default().recent(1000)} == {
        r["RowKey"]: r[journal.POSITION] for r in rows}   # the repeat's row still says where it is first


def test_rows_there_under_another_delivery_are_read_and_not_queued_again(app_env):
    """The same events in another body (another delivery id): its rows are not this delivery's page's, so it
    takes them for new; the write says they are there, and they are read and decided on, not retried forever."""
    doc = big(3)
    dispatch.dispatch(intake_msg(doc))
    from handlers.pipeline import runner
    [raw] = drain(app_env.connection_string, "journal")
    assert [o.state for o in runner.run("journal", raw)] == ["done"] * 3
    other = {**doc, "extra": "another body, the same events"}
    assert envelope.delivery_id(encode(other)) != envelope.delivery_id(encode(doc))
    assert dispatch.dispatch(intake_msg(other)) == {"events": 3, "messages": 0}
    assert all(r["journal_state"] == "done" for r in journal.default().recent(10))


def test_a_row_read_after_the_write_found_it_is_still_written_only_if_unchanged(app_env, monkeypatch):
    """The conditional write holds for rows read after a create found them: an action finishing between that
    read and the write fails it, and the dispatch reads them again and sees `done`."""
    doc = big(1)
    dispatch.dispatch(intake_msg(doc))
    [job] = drain(app_env.connection_string, "journal")
    other = intake_msg({**doc, "extra": "x"})
    real, reads = journal.Journal.rows_at, []

    def read_then_action_finishes(self, pk, rks):
        rows = real(self, pk, rks)
        reads.append(rows)
        if len(reads) == 1:
            run_one("journal", job)
        return rows
    monkeypatch.setattr(journal.Journal, "rows_at", read_then_action_finishes)
    assert dispatch.dispatch(other)["messages"] == 0
    assert len(reads) == 2 and drain(app_env.connection_string, "journal") == []
    [row] = journal.default().recent(10)
    assert row["journal_state"] == "done" and json.loads(row["eventJson"])["entityRef"] == ref("big-0")
