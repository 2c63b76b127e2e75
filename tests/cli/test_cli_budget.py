"""`hookops budget`: the heartbeat rows of real Azurite as an operator reads them, written by real budgets and by
hand (a row left by another version, a hostile process name). Read only: the command's own read adds no row."""
from __future__ import annotations

import json

from click.testing import CliRunner

from handlers.clients import heartbeat, ratelimit, storage
from handlers.core import settings
from hookops.cli import main as cli
from tests.cli.test_cli_output import unsafe_chars


def hookops(*args: str):
    return CliRunner().invoke(cli, list(args), color=True)


def table():
    return storage.default().table(settings.RECONCILE_TABLE)


def busy(names: list[str], total: int) -> list[ratelimit.SharedBudget]:
    """Processes that counted until their claims settled, as real ones do between requests (simulated time)."""
    from tests.test_budget import Clock, budget
    clock = Clock()
    budgets = [budget(heartbeat.Heartbeat(table(), name, ratelimit.TTL_SECONDS), total, clock) for name in names]
    for _ in range(12):
        clock.now += ratelimit.BEAT_SECONDS
        for b in budgets:
            b._count(clock())
    return budgets


def test_live_processes_their_claims_and_wants(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "4")
    assert sorted(b.rate for b in busy(["pod-a-1", "pod-b-2"], 4)) == [2.0, 2.0]
    hb = heartbeat.Heartbeat(table(), "pod-c-3", ratelimit.TTL_SECONDS)
    hb.beat(0.0)
    hb.rest(0.0, hb.etag)   # quiet: wants none
    result = hookops("budget")
    assert result.exit_code == 0, result.output
    first, *lines = result.output.splitlines()
    assert first.startswith("PRESERVICA_MAX_RPS=4: 3 live process(es), 2 wanting a share; claims ")
    assert first.endswith("claims 4 of 4")   # the live claims keep the budget
    assert {line.split()[0] for line in lines} == {"pod-a-1", "pod-b-2", "pod-c-3"}
    assert any("pod-c-3" in line and " rests " in line and "live" in line for line in lines)
    doc = json.loads(hookops("budget", "--json").output)
    assert doc["live"] == 3 and doc["wanting"] == 2 and doc["budget"] == 4
    assert len(list(table().query_entities("PartitionKey eq 'instances'"))) == 3   # the command wrote no row


def test_no_process_and_a_row_that_is_not_a_rate(app_env):
    assert "no process has counted in the last 4 s" in hookops("budget").output
    table().upsert_entity({"PartitionKey": heartbeat.PARTITION, "RowKey": "old\u2028version\u202e-9",  # a RowKey takes no C0/C1 control
                           "claim": "ten"})
    result = hookops("budget")
    assert result.exit_code == 0, result.output
    assert "claim all (not a rate)" in result.output   # counted as the others count it: the whole budget
    assert not unsafe_chars(result.output), result.output
    assert json.loads(hookops("budget", "--json").output)["processes"][0]["claim"] is None   # JSON has no inf


def test_storage_unreachable_is_one_line(app_env, monkeypatch):
    from handlers.clients import shared
    monkeypatch.setenv("AzureWebJobsStorage", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                       "AccountKey=Zm9v;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    shared.reset_all()
    result = hookops("budget")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot read the heartbeat rows (table 'reconcile'): ")
    assert "AccountKey" not in result.output and len(result.output.splitlines()) == 1


def test_the_service_time_from_a_date_header():
    import datetime as dt
    want = dt.datetime(2026, 12, 7, 20, 0, 0, 500000, tzinfo=dt.UTC)
    assert heartbeat.service_time("Mon, 07 Dec 2026 20:00:00 GMT") == want
    assert heartbeat.service_time("Mon, 07 Dec 2026 20:00:00 -0000") == want   # no zone: GMT, not naive
    assert heartbeat.service_time("Mon, 07 Dec 2026 21:00:00 +0100") == want
    assert heartbeat.service_time("yesterday") is None and heartbeat.service_time("") is None
    assert heartbeat.service_time(None) is None
