"""Dispatcher and action runner against real Azurite."""
import json

import pytest

from handlers import dispatch
from handlers.clients import journal
from handlers.core import envelope, messages, settings
from handlers.pipeline.contract import ActionError, Outcome
from hookops.doubles.deliveries import delivery, encode, ref
from tests.support.jobs import read_job, run_one
from tests.support.queues import drain, intake_msg


def test_each_event_and_action_gets_one_message_and_a_journal_row(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "FULL_TEXT_INDEXED=journal,thumbnail;*=journal")
    monkeypatch.setenv("PRESERVICA_SERVER", "127.0.0.1:9")   # nothing listens: the snapshot fails, locally
    monkeypatch.setenv("PRESERVICA_PROTOCOL", "http")
    monkeypatch.setenv("PRESERVICA_USERNAME", "u")
    monkeypatch.setenv("PRESERVICA_PASSWORD", "p")
    doc = delivery(refs=["a", "b", "a"])  # the same event twice is one event
    assert dispatch.dispatch(intake_msg(doc)) == {"events": 2, "messages": 2}   # a batch per action
    jobs = [j for m in drain(app_env.connection_string, "journal") for j in messages.read_batch(m)]
    assert sorted(j.entity_ref for j in jobs) == sorted([ref("a"), ref("b")])
    [batch] = drain(app_env.connection_string, "thumbnail")
    assert len(messages.read_batch(batch)) == 2
    rows = journal.default().recent(10)
    assert {r["entityRef"] for r in rows} == {ref("a"), ref("b")}
    assert all(r["journal_state"] == "queued" and r["thumbnail_state"] == "queued" for r in rows)


def test_finished_actions_are_not_queued_again(app_env):
    msg = intake_msg(delivery(refs=["a"]))
    dispatch.dispatch(msg)
    [job] = drain(app_env.connection_string, "journal")
    assert run_one("journal", job).state == "done"
    assert dispatch.dispatch(msg) == {"events": 1, "messages": 0}   # re-sent delivery: no double work
    assert run_one("journal", job).state == "done"          # a duplicate: redone, same row
    [row] = journal.default().recent(10)
    assert row["journal_state"] == "done" and json.loads(row["eventJson"])["entityRef"] == ref("a")


def test_dispatch_never_puts_a_finished_action_back_to_queued(app_env, monkeypatch):
    """A dispatch that read the journal before an action finished must not overwrite `done`: its conditional
    write fails, and it reads the page again and decides again, in the same invocation."""
    msg = intake_msg(delivery(refs=["a"]))
    dispatch.dispatch(msg)
    book = journal.default()
    original, reads = dispatch._page_rows, []

    def read_then_action_finishes(*args):
        rows = original(*args)
        reads.append(rows)
        if len(reads) == 1:
            [job] = drain(app_env.connection_string, "journal")
            run_one("journal", job)        # finishes between the dispatch's read and its write
        return rows
    monkeypatch.setattr(dispatch, "_page_rows", read_then_action_finishes)
    assert dispatch.dispatch(msg)["messages"] == 0   # read again: `done`, nothing queued
    assert len(reads) == 2 and drain(app_env.connection_string, "journal") == []
    [row] = book.recent(10)
    assert row["journal_state"] == "done"


def test_a_page_whose_rows_keep_changing_fails_after_its_rounds_and_queues_nothing(app_env, monkeypatch):
    """Bounded: rows an action changes after every read fail every round, and the message is retried by the host
    (its retry sees what the actions did)."""
    msg = intake_msg(delivery(refs=["a"]))
    dispatch.dispatch(msg)
    [job] = drain(app_env.connection_string, "journal")
    original, reads = dispatch._page_rows, []

    def read_then_action_runs(*args):
        rows = original(*args)
        reads.append(rows)
        run_one("journal", job)   # the journal's merge is repeatable: it writes the row each time
        return rows
    monkeypatch.setattr(dispatch, "_page_rows", read_then_action_runs)
    with pytest.raises(journal.Conflict):
        dispatch.dispatch(msg)
    assert len(reads) == 1 + dispatch.WRITE_ROUNDS   # the first, and one after each round that failed
    assert drain(app_env.connection_string, "journal") == []


def test_unfinished_actions_are_queued_again_on_retry(app_env):
    msg = intake_msg(delivery(refs=["a"]))
    dispatch.dispatch(msg)
    assert dispatch.dispatch(msg)["messages"] == 1  # still queued: a retried dispatch re-sends it


def test_routed_but_unconfigured_action_is_skipped_not_failed(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,teams")
    assert dispatch.dispatch(intake_msg(delivery(refs=["a"])))["messages"] == 1
    [row] = journal.default().recent(10)
    assert row["teams_state"] == "skipped" and "TEAMS_WEBHOOK_URL" in row["teams_reason"]
    assert drain(app_env.connection_string, "teams") == []


def test_bad_routes_setting_fails_with_the_token(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,fax")
    with pytest.raises(settings.SettingsError, match="'fax'"):
        dispatch.dispatch(intake_msg(delivery()))


def test_claim_check_delivery_is_dispatched_from_blob(app_env):
    from handlers.clients.storage import default
    doc = delivery(refs=[f"r{i}" for i in range(300)])
    body = encode(doc)
    did = envelope.delivery_id(body)
    default().put_blob(settings.DELIVERY_CONTAINER, did + ".json", body)
    raw = messages.claim_message(did, "2026-11-29T10:00:01Z", did + ".json").encode()
    assert dispatch.dispatch(raw) == {"events": 300, "messages": 6}     # ACTION_BATCH_SIZE 50
    assert len(journal.default().recent(1000)) == 300


def test_many_teams_events_become_one_digest(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=teams")
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "http://127.0.0.1:9/hook?sig=x")
    monkeypatch.setenv("TEAMS_DIGEST_THRESHOLD", "3")
    assert dispatch.dispatch(intake_msg(delivery(refs=["a", "b", "c", "d"])))["messages"] == 1
    [raw] = drain(app_env.connection_string, "teams")
    job = read_job(raw)
    assert job.kind == "digest" and job.digest["total"] == 4 and job.digest["counts"] == {"IO": 4}
    rows = {r["entityRef"]: r for r in journal.default().recent(10)}
    assert rows["(digest of 4 events)"]["teams_state"] == "queued"
    assert all(rows[ref(name)]["teams_reason"] == "in digest" for name in "abcd")


def test_failed_action_is_journaled_and_raised(app_env, monkeypatch):
    dispatch.dispatch(intake_msg(delivery(refs=["a"])))
    [raw] = drain(app_env.connection_string, "journal")

    class Boom(ActionError):
        pass

    import dataclasses

    from handlers.pipeline import registry

    def explode(job, ctx):
        raise Boom("catalogue said no")
    declared = registry.actions()
    monkeypatch.setitem(declared, "journal", dataclasses.replace(declared["journal"], perform=explode))
    with pytest.raises(Boom):
        run_one("journal", raw, attempt=2)
    [row] = journal.default().recent(1)
    assert row["journal_state"] == "failed" and row["journal_attempts"] == 2 and "catalogue said no" in row["journal_reason"]


def test_non_repeatable_action_skips_a_duplicate_message(app_env, monkeypatch):
    import dataclasses

    from handlers.pipeline import registry
    calls = []
    declared = registry.actions()
    monkeypatch.setitem(declared, "journal", dataclasses.replace(
        declared["journal"], repeatable=False, perform=lambda job, ctx: calls.append(job) or Outcome("done")))
    dispatch.dispatch(intake_msg(delivery(refs=["a"])))
    [raw] = drain(app_env.connection_string, "journal")
    assert run_one("journal", raw).state == "done"
    assert run_one("journal", raw) is None and len(calls) == 1


def test_message_on_the_wrong_queue_is_invalid(app_env):
    dispatch.dispatch(intake_msg(delivery(refs=["a"])))
    [raw] = drain(app_env.connection_string, "journal")
    with pytest.raises(messages.InvalidMessage):
        run_one("teams", raw)


def test_prune_events_deletes_only_days_before_the_cut(app_env):
    from click.testing import CliRunner

    from hookops.cli import main as cli
    for stamp, name in (("2020-01-01T00:00:00", "old"), ("2099-01-01T00:00:00", "new"), ("", "undated")):
        dispatch.dispatch(intake_msg(delivery(refs=[name], timestamp=stamp)))
    result = CliRunner().invoke(cli, ["prune-events", "--older-than", "30", "--yes"])
    assert result.exit_code == 0 and "deleted 1 journal row" in result.output, result.output
    assert {r["entityRef"] for r in journal.default().recent(10)} == {ref("new"), ref("undated")}
    refused = CliRunner().invoke(cli, ["prune-events", "--older-than", "30"], input="n\n")
    assert refused.exit_code != 0
