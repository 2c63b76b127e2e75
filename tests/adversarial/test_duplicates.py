"""Attack 12: duplicate copies of a delivery or of an action message cause no second external effect.

Unit level here (the real runner, journal and Teams double over real Azurite); the storage-stall
end-to-end run is in test_storage_stall.py.
"""
import pytest

from handlers import dispatch
from handlers.actions import teams as action_teams
from handlers.clients import journal
from handlers.core.errors import SafeError
from hookops.doubles.deliveries import delivery
from hookops.doubles.receivers import TeamsDouble
from tests.support.jobs import read_job, run_one
from tests.support.queues import drain, intake_msg


@pytest.fixture
def teams(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,teams")
    with TeamsDouble() as double:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", double.url)
        yield double


def one_teams_message(app_env, doc) -> bytes:
    dispatch.dispatch(intake_msg(doc))
    [raw] = drain(app_env.connection_string, "teams")
    return raw


def test_second_copy_of_an_action_message_in_flight_steps_back(teams, app_env, monkeypatch):
    raw = one_teams_message(app_env, delivery(refs=["a"]))
    seen = []
    original = action_teams.post

    def post_while_a_copy_arrives(url, card):
        seen.append(run_one("teams", raw, message_id="copy-B"))   # the queue delivered a duplicate
        return original(url, card)
    monkeypatch.setattr(action_teams, "post", post_while_a_copy_arrives)
    assert run_one("teams", raw, message_id="copy-A").state == journal.DONE
    assert seen == [None] and len(teams.cards) == 1
    assert run_one("teams", raw, message_id="copy-C") is None     # after it finished: nothing
    assert len(teams.cards) == 1


def test_a_retry_of_the_same_message_takes_over_its_own_claim(teams, app_env):
    raw = one_teams_message(app_env, delivery(refs=["a"]))
    job = read_job(raw)
    book = journal.default()
    assert book.claim(job.pk, job.rk, "teams", "msg-1", 600) == journal.CLAIMED   # then the worker died
    assert run_one("teams", raw, message_id="msg-2") is None           # another copy: steps back
    assert run_one("teams", raw, message_id="msg-1").state == journal.DONE
    assert len(teams.cards) == 1


def test_an_expired_claim_is_taken_over(teams, app_env):
    raw = one_teams_message(app_env, delivery(refs=["a"]))
    job = read_job(raw)
    assert journal.default().claim(job.pk, job.rk, "teams", "dead-worker", -1) == journal.CLAIMED
    assert run_one("teams", raw, message_id="msg-2").state == journal.DONE


def test_a_failed_attempt_releases_its_claim_for_the_retry(teams, app_env):
    raw = one_teams_message(app_env, delivery(refs=["a"]))
    teams.respond_with(400)
    with pytest.raises(SafeError):
        run_one("teams", raw, message_id="m")
    row = journal.default().get(read_job(raw).pk, read_job(raw).rk)
    assert row["teams_state"] == journal.FAILED and not row["teams_lease"]
    assert run_one("teams", raw, message_id="other").state == journal.DONE


def test_second_copy_of_a_delivery_does_not_requeue_a_running_action(teams, app_env):
    doc = delivery(refs=["a"])
    raw = one_teams_message(app_env, doc)
    job = read_job(raw)
    journal.default().claim(job.pk, job.rk, "teams", "in-flight", 600)
    assert dispatch.dispatch(intake_msg(doc))["messages"] == 1   # the still-queued journal action only
    assert drain(app_env.connection_string, "teams") == []
    row = journal.default().get(job.pk, job.rk)
    assert row["teams_state"] == journal.RUNNING and row["teams_owner"] == "in-flight"


def test_racing_claims_give_the_work_to_exactly_one(teams, app_env):
    import concurrent.futures as cf
    raw = one_teams_message(app_env, delivery(refs=["a"]))
    job = read_job(raw)
    book = journal.default()
    with cf.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: book.claim(job.pk, job.rk, "teams", f"m{i}", 600), range(8)))
    assert results.count(journal.CLAIMED) == 1 and results.count(journal.BUSY) == 7
