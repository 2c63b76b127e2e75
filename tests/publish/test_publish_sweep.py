"""The public sweep (handlers/sweep.py) against the real pyPreservica talking to the Preservica double, real
Blob and Table clients and Azurite: what lost webhooks left public is withdrawn or brought up to date."""
from __future__ import annotations

import logging

import pytest

from handlers import sweep
from handlers.clients import journal
from handlers.console import data
from handlers.sweep import SWEEP_SCHEDULE
from hookops.doubles.preservica import make_png
from tests.support.jobs import run_one
from tests.support.publish import ASSET, AV, blobs, dispatched

OTHER = "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
HIDDEN = "6e7f8091-2b3c-4d4e-9f0a-1b2c3d4e5f60"


def manifests(env) -> set[str]:
    return {n.split("/")[0] for n in blobs(env) if n.endswith("/manifest.json")}


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")   # the double needs no protecting


@pytest.fixture
def four(env, pres):
    """Four published assets; then Preservica changes each of three without a webhook arriving."""
    pres.add_asset(OTHER, "Third", bitstreams=[("c.png", make_png(5, 5), "Access")])
    pres.add_asset(HIDDEN, "Fourth", bitstreams=[("d.png", make_png(6, 6), "Access")])
    for ref in (ASSET, AV, OTHER, HIDDEN):
        assert run_one("publish", dispatched(ref)).state == journal.DONE
    assert manifests(env) == {ASSET, AV, OTHER, HIDDEN}
    return pres


def test_the_sweep_withdraws_what_is_closed_deleted_or_hidden_and_republishes_a_replaced_file(env, four, caplog):
    four.set_security_tag(ASSET, "closed")                                 # webhook lost
    four.remove_asset(AV)                                                  # no trigger covers deletion
    four.set_hidden(HIDDEN)
    four.add_asset(OTHER, "Third", bitstreams=[("c.png", make_png(9, 7), "Access")])   # access file replaced
    with caplog.at_level(logging.WARNING, logger="handlers.alerts"):
        report = sweep.run()
    assert (report["checked"], report["withdrawn"], report["updated"], report["complete"]) == (4, 3, 1, True)
    assert manifests(env) == {OTHER} and set(n.split("/")[0] for n in blobs(env)) == {OTHER, "activity"}
    assert b'"width":9' in blobs(env)[f"{OTHER}/manifest.json"]
    [alert] = [r for r in caplog.records if r.getMessage().startswith("ALERT sweep-withdrew:")]
    assert alert.alert_withdrawn == 3 and "checked 4, withdrawn 3, updated 1" in alert.getMessage()
    shown = data.last_sweep_report()
    assert (shown["checked"], shown["withdrawn"], shown["updated"]) == (4, 3, 1)


def test_nothing_changed_nothing_withdrawn_and_no_alert(env, four, caplog):
    with caplog.at_level(logging.WARNING, logger="handlers.alerts"):
        report = sweep.run()
    assert (report["checked"], report["withdrawn"], report["updated"]) == (4, 0, 0)
    assert not [r for r in caplog.records if "ALERT" in r.getMessage()]


def test_files_without_a_manifest_of_a_closed_asset_are_found_and_withdrawn(env, pres):
    from handlers.actions import publish
    publish.public_store().upload(f"{ASSET}/files/left-over", b"half a copy", "application/octet-stream")
    pres.set_security_tag(ASSET, "closed")
    assert sweep.run()["withdrawn"] == 1 and blobs(env, f"{ASSET}/") == {}


def test_a_run_stops_at_its_request_budget_and_the_next_goes_on_from_its_checkpoint(env, four, monkeypatch):
    monkeypatch.setattr(sweep, "PAGE", 1)
    monkeypatch.setenv("PUBLISH_SWEEP_MAX_REQUESTS", "1")
    for ref in (ASSET, AV, OTHER, HIDDEN):
        four.set_security_tag(ref, "closed")
    runs = []
    while not (runs and runs[-1]["complete"]):
        runs.append(sweep.run())
        assert len(runs) <= 5, runs
    # one prefix a page: the four assets, and activity/ (skipped) in a page of its own
    assert [r["checked"] for r in runs] == [1, 1, 1, 1, 0] and sum(r["withdrawn"] for r in runs) == 4
    assert all(r["error"].startswith("PUBLISH_SWEEP_MAX_REQUESTS (1) spent") for r in runs[:-1])
    assert manifests(env) == set()
    assert sweep.run()["checked"] == 0                                     # a complete run starts over: all gone


def test_a_preservica_outage_is_reported_and_the_page_is_swept_again(env, four):
    four.set_security_tag(ASSET, "closed")
    four.fail_next(200, 503)
    with pytest.raises(Exception, match="the public sweep stopped"):
        sweep.run()
    assert "503" in data.last_sweep_report()["error"]
    four.clear_failures()
    assert sweep.run()["withdrawn"] == 1 and ASSET not in manifests(env)


@pytest.mark.parametrize("raw, expected", [(None, "0 30 3 * * *"), ("", None), ("  ", None),
                                           ("0 0 2 * * *", "0 0 2 * * *")])
def test_the_schedule_is_daily_by_default_and_empty_turns_it_off(raw, expected):
    env = {} if raw is None else {"PUBLISH_SWEEP_SCHEDULE": raw}
    assert SWEEP_SCHEDULE.schedule(env) == expected and SWEEP_SCHEDULE.problem(env) is None


def test_an_unusable_schedule_is_a_problem_naming_the_setting():
    assert "PUBLISH_SWEEP_SCHEDULE must be an NCRONTAB" in (SWEEP_SCHEDULE.problem({"PUBLISH_SWEEP_SCHEDULE": "daily"}) or "")


def test_the_timer_is_wired_in_function_app():
    import function_app
    names = {f.get_function_name() for f in function_app.app.get_functions()}
    assert "publish_sweep_timer" in names


def test_the_console_overview_shows_the_last_sweep_report_escaped(app_env):
    import datetime as dt

    from handlers.clients import reconcile_state
    from handlers.console import routes
    from tests.support.console import LOCAL_URL, local_env, request
    assert data.last_sweep_report() is None
    reconcile_state.default().report({"checked": 9, "withdrawn": 2, "updated": 1, "complete": False,
                                      "error": "<b>budget</b>"}, dt.datetime.now(dt.UTC), partition="sweep-runs")
    assert data.last_gap_report() is None                                  # not the reconciler's report
    body = routes.handle(request("overview", url=LOCAL_URL + "overview", headers={"Host": "127.0.0.1"}), local_env()).get_body()
    assert b"Public sweep" in body and b"&lt;b&gt;budget&lt;/b&gt;" in body and b"<b>budget" not in body


def test_a_publish_that_lost_its_lease_writes_nothing_more(env, pres, monkeypatch):
    from handlers.actions import publish
    from handlers.clients import publish_lock
    from handlers.clients.storage import default
    from handlers.pipeline.contract import Context
    monkeypatch.setattr(publish_lock, "RENEW_AFTER", 0)                  # renewed before every write
    real = publish._thumbnail

    def another_run_takes_the_lease(*args):
        from azure.storage.blob import BlobLeaseClient
        marker = default().blob_service().get_blob_client(publish_lock.CONTAINER, ASSET)
        BlobLeaseClient(marker).break_lease(lease_break_period=0)          # e.g. it expired while this one stalled
        marker.acquire_lease(lease_duration=15)
        return real(*args)
    monkeypatch.setattr(publish, "_thumbnail", another_run_takes_the_lease)
    with pytest.raises(publish_lock.Lost):
        publish.converge(Context(), ASSET)
    assert f"{ASSET}/manifest.json" not in blobs(env) and f"{ASSET}/thumbnail" not in blobs(env)
