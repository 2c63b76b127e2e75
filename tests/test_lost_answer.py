"""A journal write that gets no answer (its connection reset, before or after the service applied it), through a
proxy in front of the real Azurite: an unconditional merge is sent again and the caller goes on; a conditional
claim is not (sent again it could meet its own write), and the same owner takes it over. An action's outcome
write that got no answer used to fail the message; when the service had not applied it, the host's retry then
performed the action again: a relay posted 50 events twice (tests/test_pages_e2e.py, under load)."""
import datetime as dt
import json
import re

import pytest
from azure.core.exceptions import AzureError

from handlers.clients import journal, shared, storage
from handlers.core import settings
from tests.support.jobs import dispatched, run_one
from tests.support.lossy import LostAnswers

PK = "lost-answer"


def batch(request: bytes) -> bool:
    return request.startswith(b"POST ") and b"$batch" in request.split(b"\r\n", 1)[0]


def patch(request: bytes) -> bool:
    return request.startswith(b"PATCH ")


def through(azurite, proxy, name: str = settings.JOURNAL_TABLE):
    """A table as the app builds it (its storage settings and retry policy), behind the proxy: the journal, or
    another table's client."""
    blob, queue, _ = azurite.ports
    client = storage.Storage({"AzureWebJobsStorage": proxy.connection_string(blob, queue)}).table(name)
    return journal.Journal(client) if name == settings.JOURNAL_TABLE else client


@pytest.fixture
def direct(app_env):
    book = journal.default()
    book.merge(PK, "made", {"x": 0})   # the table is there: the proxy sees only the writes under test
    return book


APPLIED = pytest.mark.parametrize("applied", [True, False], ids=["answer-lost", "request-lost"])


@APPLIED
def test_a_transaction_of_merges_that_got_no_answer_is_sent_again(app_env, direct, applied):
    rows = [{"PartitionKey": PK, "RowKey": f"r{i}", "relay_state": "done"} for i in range(3)]
    with LostAnswers(app_env.ports[2], batch, applied=applied) as proxy:
        assert through(app_env, proxy).merge_many(rows) == 3
    assert proxy.lost == 1
    assert sum(1 for r in proxy.requests if "$batch" in r) == 1 + applied   # sent again
    assert {rk: direct.get(PK, rk)["relay_state"] for rk in ("r0", "r1", "r2")} == dict.fromkeys(("r0", "r1", "r2"),
                                                                                                 "done")


@APPLIED
def test_a_merge_that_got_no_answer_is_sent_again(app_env, direct, applied):
    with LostAnswers(app_env.ports[2], patch, applied=applied) as proxy:
        through(app_env, proxy).merge(PK, "one", {"relay_state": "done"})
    assert proxy.lost == 1 and sum(1 for r in proxy.requests if r.startswith("PATCH ")) == 1 + applied
    assert direct.get(PK, "one")["relay_state"] == "done"


def test_a_claim_whose_answer_was_lost_is_not_sent_again_and_its_owner_takes_it_over(app_env, direct):
    with LostAnswers(app_env.ports[2], batch) as proxy:
        with pytest.raises(AzureError):   # conditional: sent again, it would fail on its own write
            through(app_env, proxy).claim_many(PK, ["c"], "relay", "message-1", 600)
        assert sum(1 for r in proxy.requests if "$batch" in r) == 1
    assert direct.get(PK, "c")["relay_state"] == journal.RUNNING   # the service applied it
    assert direct.claim_many(PK, ["c"], "relay", "message-2", 600) == set()   # another message steps back
    assert direct.claim_many(PK, ["c"], "relay", "message-1", 600) == {"c"}   # the host's retry goes on


@APPLIED
def test_a_relay_whose_outcome_write_got_no_answer_posts_once(app_env, monkeypatch, relay, applied):
    """The host retries a failed message with the same message id, and its claims are its own to take over: had
    the outcome write failed unapplied, the retry would post again. It is sent again instead, and the message
    succeeds."""
    raw = dispatched("relay", "3f1c1d0e-5b8a-4a43-9d7c-2a7f0e5c9b11")
    outcome = re.compile(rb'"relay_state"\s*:\s*"done"')
    with LostAnswers(app_env.ports[2], lambda request: batch(request) and bool(outcome.search(request)),
                     applied=applied) as proxy:
        blob, queue, _ = app_env.ports
        monkeypatch.setenv("AzureWebJobsStorage", proxy.connection_string(blob, queue))
        shared.reset_all()
        try:
            run_one("relay", raw, message_id="message-1")
        except AzureError:   # as the host would: the same message again
            run_one("relay", raw, attempt=2, message_id="message-1")
    assert proxy.lost == 1
    assert len(relay.deliveries) == 1
    monkeypatch.setenv("AzureWebJobsStorage", app_env.connection_string)
    shared.reset_all()
    [row] = journal.default().recent(5)
    assert row["relay_state"] == "done"


@pytest.fixture
def relay(monkeypatch):
    from hookops.doubles.receivers import RelayReceiver
    with RelayReceiver() as receiver:
        monkeypatch.setenv("RELAY_URL", receiver.url)
        monkeypatch.setenv("RELAY_SECRET", receiver.secret)
        yield receiver


@APPLIED
def test_the_other_tables_unconditional_writes_are_sent_again_too(app_env, applied):
    """Which asset a published file is under (written before publish copies anything), and a reconciler's run
    report: failing on a lost answer, each would make its message or run ask Preservica all over again."""
    from handlers.clients import published_files
    from handlers.clients.reconcile_state import ReconcileState
    ReconcileState(storage.default().table(settings.RECONCILE_TABLE)).report({"made": 1}, dt.datetime.now(dt.UTC))
    with LostAnswers(app_env.ports[2], lambda r: batch(r) or patch(r), times=2, applied=applied) as proxy:
        table = through(app_env, proxy, settings.RECONCILE_TABLE)
        published_files.remember(table, "a1b2c3d4-0000-4000-8000-000000000001", ["c0ffee00-0000-4000-8000-00000000000c"])
        ReconcileState(table).report({"found": 3}, dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
    assert proxy.lost == 2
    direct = storage.default().table(settings.RECONCILE_TABLE)
    assert published_files.holder(direct, "c0ffee00-0000-4000-8000-00000000000c") == \
        "a1b2c3d4-0000-4000-8000-000000000001"
    assert any(r.get("found") == 3 for r in ReconcileState(direct).reports(5))


def first_watermark_writes():
    """Loses the first create (POST) and the first replace (PUT) of the watermark row."""
    left = {b"POST ", b"PUT "}

    def lose(request: bytes) -> bool:
        line = request.split(b"\r\n", 1)[0]
        method = line[:line.index(b" ") + 1]
        wanted = (method == b"PUT " and b"watermark" in line) or (method == b"POST " and b"$batch" not in line)
        if wanted and method in left:
            left.discard(method)
            return True
        return False
    return lose


@APPLIED
def test_a_watermark_write_that_got_no_answer_is_not_taken_for_another_runs(app_env, applied):
    """A PUT (If-Match) is sent again by azure-core and, applied the first time, meets itself (412); before, the run
    ended incomplete with "another reconciliation run moved the watermark". A first write (a POST) is not sent
    again: applied, it is found written; not, the run fails on storage, as it is."""
    from handlers.clients.reconcile_state import ReconcileState
    direct = ReconcileState(storage.default().table(settings.RECONCILE_TABLE))
    assert direct.watermark() == (None, None)   # as a run starts: the read makes the table
    first, second = dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC), dt.datetime(2026, 12, 7, 11, tzinfo=dt.UTC)
    with LostAnswers(app_env.ports[2], first_watermark_writes(), times=2, applied=applied) as proxy:
        state = ReconcileState(through(app_env, proxy, settings.RECONCILE_TABLE))
        if applied:
            seen = state.advance(first, None)              # POST: its answer lost, found written
        else:
            with pytest.raises(AzureError):                # POST: never arrived, not sent again
                state.advance(first, None)
            seen = state.advance(first, None)
        moved = state.advance(second, seen)                # PUT: sent again after its lost answer
    assert proxy.lost == 2
    assert sum(r.startswith("PUT ") for r in proxy.requests) == 1 + applied
    assert direct.watermark()[0] == second and direct.watermark()[1][journal.ETAG] == moved[journal.ETAG]


def test_a_watermark_another_run_moved_is_still_a_conflict(app_env):
    from handlers.clients.reconcile_state import ReconcileState
    state = ReconcileState(storage.default().table(settings.RECONCILE_TABLE))
    assert state.watermark() == (None, None)   # as a run starts: the read makes the table
    seen = state.advance(dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC), None)
    state.advance(dt.datetime(2026, 12, 7, 11, tzinfo=dt.UTC), seen)          # the other run
    with pytest.raises(journal.Conflict, match="another reconciliation run moved the watermark"):
        state.advance(dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC), seen)


def blob_put(path: str):
    """Loses the first PUT of the blob whose path ends with `path`."""
    left = [True]

    def lose(request: bytes) -> bool:
        line = request.split(b"\r\n", 1)[0]
        if left and line.startswith(b"PUT ") and line.split(b" ")[1].split(b"?")[0].endswith(path.encode()):
            left.clear()
            return True
        return False
    return lose


@APPLIED
def test_an_activity_whose_page_write_got_no_answer_is_in_the_stream_once(app_env, applied):
    """The blob client sends the page again (If-Match / If-None-Match) and, applied the first time, it meets itself:
    before, the append took that for another writer's, read the page again and added its activity a second time."""
    from handlers.clients import activity, public_store
    from handlers.core import iiif
    from hookops import azurite as az
    blob, queue, table = app_env.ports
    public_store.PublicStore(None, "iiif", None).ensure()
    with LostAnswers(blob, blob_put(iiif.page_name(0)), applied=applied) as proxy:
        store = public_store.PublicStore(None, "iiif", None,
                                         env={"AzureWebJobsStorage": az.connection_string(proxy.port, queue, table)})
        activity.append(store, "Create", "https://example.org/iiif/a/manifest.json")
    assert proxy.lost == 1
    page, _ = public_store.PublicStore(None, "iiif", None).read(iiif.page_name(0))
    assert [a["type"] for a in json.loads(page)["orderedItems"]] == ["Create"]


@APPLIED
def test_a_conditional_blob_write_that_got_no_answer_is_not_a_conflict(app_env, applied):
    """Over a version read (describe's draft over the one it read): applied the first time, the write sent again
    meets itself (412). A real change since is still a Conflict."""
    from hookops import azurite as az
    blob, queue, table = app_env.ports
    direct = storage.default()
    direct.put_blob("drafts-test", "d.json", b"{}")
    etag = direct.blob_service().get_blob_client("drafts-test", "d.json").get_blob_properties().etag
    with LostAnswers(blob, blob_put("/d.json"), applied=applied) as proxy:
        storage.Storage({"AzureWebJobsStorage": az.connection_string(proxy.port, queue, table)}).put_blob(
            "drafts-test", "d.json", b'{"draft": 1}', etag=etag)
    assert proxy.lost == 1 and direct.get_blob("drafts-test", "d.json") == b'{"draft": 1}'
    with pytest.raises(storage.Conflict):
        direct.put_blob("drafts-test", "d.json", b'{"draft": 2}', etag=etag)


def test_a_read_back_that_fails_is_storage_unavailable_not_a_raw_sdk_error():
    """holds() runs inside its caller's handler of the write's error, where a raw AzureError would escape its
    classification: the journal would keep only the class name."""
    from azure.storage.blob import BlobClient

    from handlers.core.errors import StorageUnavailable
    from hookops import azurite as az
    dead = az.free_port()   # nothing listens: the read-back cannot connect
    blob = BlobClient.from_connection_string(az.connection_string(dead, dead, dead), "drafts", "d.json", retry_total=0)
    with pytest.raises(StorageUnavailable, match="blob drafts/d.json: ServiceRequestError"):
        storage.holds(blob, b"{}")


def test_the_read_back_reads_no_more_than_one_byte_past_what_was_written(app_env):
    """A blob longer than the write (same first bytes), an empty one and an equal one, through the proxy to see
    the GETs: each asks for the write's length plus one byte (the first GET used to fetch up to 32 MiB)."""
    from hookops import azurite as az
    blob, queue, table = app_env.ports
    direct = storage.default()
    direct.put_blob("readback", "long", b"abc" + b"x" * 100_000)
    direct.put_blob("readback", "empty", b"")
    direct.put_blob("readback", "same", b"abc")
    gets: list[bytes] = []

    def seen(request: bytes) -> bool:
        if request.startswith(b"GET "):
            gets.append(request)
        return False
    with LostAnswers(blob, seen) as proxy:
        service = storage.Storage({"AzureWebJobsStorage": az.connection_string(proxy.port, queue, table)}).blob_service()
        held = {name: storage.holds(service.get_blob_client("readback", name), b"abc")
                for name in ("long", "empty", "same")}
    assert held["long"] is None and held["empty"] is None
    assert held["same"] == direct.blob_service().get_blob_client("readback", "same").get_blob_properties().etag
    assert len(gets) == 3 and all(b"x-ms-range: bytes=0-3\r\n" in g.lower() for g in gets), gets
