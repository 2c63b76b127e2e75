"""Reconciliation and backfill: Preservica's event log read by the real pyPreservica client from the
double, the events put through the real dispatcher and journal on Azurite."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from handlers import dispatch, reconcile
from handlers.clients import preservica, reconcile_state
from handlers.core import envelope, messages, reconcile as core, settings
from handlers.core.errors import SafeError, SettingsError
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.host import queues
from tests.support.reconcile import FOLDER, NOW, PASSWORD, TENANT, USER, UTC, A, B, C, dispatch_all, journaled, webhook

# ---- the pure core --------------------------------------------------------------------------------

def test_mapping_and_schedule_are_checked():
    assert core.parse_types("Ingest=FULL_TEXT_INDEXED, Move=moved") == {"Ingest": "FULL_TEXT_INDEXED", "Move": "MOVED"}
    for bad in ("Ingest", "=MOVED", "Ingest=", "Ingest=FULL TEXT"):
        with pytest.raises(SettingsError, match="RECONCILE_EVENT_TYPES"):
            core.parse_types(bad)
    setting = settings.BY_NAME["RECONCILE_SCHEDULE"]
    assert setting.schedule({"RECONCILE_SCHEDULE": " 0 */15 * * * * "}) == "0 */15 * * * *"
    assert setting.schedule({}) == setting.default
    assert setting.schedule({"RECONCILE_SCHEDULE": "  "}) is None   # set empty: the reconciler is off
    for bad in ("*/15 * * * *", "0 */15 * * * * *", "0 @hourly * * * *"):
        with pytest.raises(SettingsError, match="RECONCILE_SCHEDULE"):
            setting.schedule({"RECONCILE_SCHEDULE": bad})


def test_window_lags_and_overlaps():
    hour, tol = dt.timedelta(hours=1), dt.timedelta(minutes=30)
    assert core.window(None, NOW, hour, tol, dt.timedelta(hours=24)) == (NOW - 25 * hour, NOW - hour)
    assert core.window(NOW - 2 * hour, NOW, hour, tol, hour) == (NOW - 2 * hour - tol, NOW - hour)
    assert core.window(NOW - hour, NOW, hour, tol, hour) is None   # nothing new yet
    assert core.slices(NOW - 3 * hour, NOW - hour / 2, hour)[-1] == (NOW - hour, NOW - hour / 2)


def test_same_event_within_tolerance_once():
    """One to one: a journaled event stands for one logged event; the reconciler's own row at exactly
    the logged time is its own earlier queuing; a covered security change is re-checked."""
    tol = dt.timedelta(minutes=30)
    seen = {(A, "FULL_TEXT_INDEXED"): [(NOW, "webhook")], (C, "FULL_TEXT_INDEXED"): [(NOW, "reconcile")],
            (C, "CHANGED_SECURITY_DESCRIPTOR"): [(NOW, "webhook")]}
    found = [core.Found(A, "IO", "FULL_TEXT_INDEXED", NOW - dt.timedelta(minutes=20), "Ingest"),   # the webhook's
             core.Found(A, "IO", "FULL_TEXT_INDEXED", NOW - dt.timedelta(minutes=10), "Ingest"),   # a second one near it
             core.Found(A, "IO", "FULL_TEXT_INDEXED", NOW - dt.timedelta(hours=2), "Ingest"),      # an earlier one
             core.Found(A, "IO", "MOVED", NOW, "Moved"),                                           # another trigger
             core.Found(B, "IO", "FULL_TEXT_INDEXED", NOW, "Ingest"),
             core.Found(B, "IO", "FULL_TEXT_INDEXED", NOW, "Ingest"),                              # listed twice
             core.Found(B, "IO", "FULL_TEXT_INDEXED", NOW + dt.timedelta(minutes=1), "Ingest"),    # B twice in the log
             core.Found(C, "IO", "FULL_TEXT_INDEXED", NOW, "Ingest"),                              # queued by a run before
             core.Found(C, "IO", "CHANGED_SECURITY_DESCRIPTOR", NOW, "Modified")]                  # covered, re-checked
    gap = core.missed(found, seen, tol)
    assert gap.already == 2 and [(f.ref, f.trigger, f.when) for f in gap.new] == [
        (A, "FULL_TEXT_INDEXED", NOW - dt.timedelta(hours=2)), (A, "FULL_TEXT_INDEXED", NOW - dt.timedelta(minutes=10)),
        (A, "MOVED", NOW), (B, "FULL_TEXT_INDEXED", NOW), (B, "FULL_TEXT_INDEXED", NOW + dt.timedelta(minutes=1))]
    assert [(f.ref, f.trigger) for f in gap.recheck] == [(C, "CHANGED_SECURITY_DESCRIPTOR")]
    assert gap.covered == {(A, "FULL_TEXT_INDEXED"): [NOW], (C, "CHANGED_SECURITY_DESCRIPTOR"): [NOW]}


def test_backfill_deliveries_are_the_same_every_time():
    refs = [("IO", ref(f"bf-{i}")) for i in range(30)]
    started = NOW
    once = core.backfill_deliveries(refs, "FULL_TEXT_INDEXED", started, "T", 1000)
    again = core.backfill_deliveries(list(reversed(refs)) + [("IO", "not-a-ref")], "FULL_TEXT_INDEXED", started, "T", 1000)
    assert once == again and sum(len(d["events"]) for d in once) == 30
    keys = {envelope.event_key(envelope.delivery_from_doc(d), e) for d in once for e in d["events"]}
    assert len(keys) == 30


# ---- against the double ----------------------------------------------------------------------------


def test_the_real_client_reads_the_event_log(pres):
    from pyPreservica import EntityAPI
    pres.record_event("Ingest", [A, B], NOW - dt.timedelta(hours=3))
    pres.record_event("Move", [C], dt.datetime.now(UTC))
    api = EntityAPI(username=USER, password=PASSWORD, tenant=TENANT, server=pres.server, protocol="http")
    ingests = list(api.all_ingest_events(previous_days=1))
    assert [e["eventType"] for e in ingests] == ["Move"] or all(e["eventType"] == "Ingest" for e in ingests)
    (event,) = [e for e in api._all_events_page(type="Ingest", from_date=(NOW - dt.timedelta(days=1)).isoformat(),
                                                 to_date=NOW.isoformat()).results]
    assert {x["Entity"] for x in api.entity_from_event(event["Ref"])} == {A, B}
    assert {e.reference for e in api.updated_entities(previous_days=1)} >= {A, B, C, FOLDER}
    assert {e.reference for e in api.all_descendants(FOLDER)} == {A, B, C}
    pres.delete_entity(C, dt.datetime.now(UTC))   # listed with deleted="true" and no type: the client skips it
    assert C not in {e.reference for e in api.updated_entities(previous_days=1)}
    assert 'deleted="true"' in api.session.get(f"http://{pres.server}/api/entity/entities/updated-since",
                                               params={"date": (NOW - dt.timedelta(days=1)).isoformat(), "start": 3},
                                               headers={"Preservica-Access-Token": api.token}).text


def test_reconciler_queues_only_what_the_webhooks_missed_and_only_once(env, pres, caplog):
    ingest = NOW - dt.timedelta(hours=3)
    pres.record_event("Ingest", [A, B, C], ingest)
    webhook([A], ingest + dt.timedelta(minutes=4))   # indexing took 4 minutes; B and C were missed
    caplog.set_level(logging.INFO)

    report = reconcile.run(now=NOW)
    assert (report["found"], report["delivered"], report["queued"], report["complete"]) == (3, 1, 2, True)
    assert dispatch_all(env.connection_string) >= 1
    rows = journaled()
    by_source = sorted((r["source"], r["entityRef"]) for r in rows)
    assert by_source == sorted([("webhook", A), ("reconcile", B), ("reconcile", C)])
    assert all(r["journal_state"] == "queued" and r["trigger"] == "FULL_TEXT_INDEXED" for r in rows)
    assert "the webhooks missed 2 event(s)" in caplog.text
    (last,) = reconcile_state.default().reports(1)
    assert (last["found"], last["delivered"], last["queued"]) == (3, 1, 2)

    # The next run overlaps this one's window: nothing is queued twice.
    again = reconcile.run(now=NOW + dt.timedelta(minutes=15))
    assert again["queued"] == 0 and dispatch_all(env.connection_string) == 0
    assert len(journaled()) == 3


def test_a_late_webhook_after_the_reconciler_is_the_same_event(env, pres):
    ingest = NOW - dt.timedelta(hours=3)
    pres.record_event("Ingest", [A], ingest)
    reconcile.run(now=NOW)
    dispatch_all(env.connection_string)
    webhook([A], ingest + dt.timedelta(minutes=2))   # Preservica re-sent it after an outage, late
    rows = {r["source"]: r for r in journaled()}
    assert rows["reconcile"]["journal_state"] == "queued"
    assert rows["webhook"]["journal_state"] == "skipped"
    assert rows["webhook"]["journal_reason"] == "same event as the reconcile one"


def test_webhook_dispatched_between_the_reconciler_queuing_and_its_dispatch(env, pres):
    """The race the journal check alone cannot see: the reconciler read the journal before the late
    webhook was dispatched, and its own delivery is dispatched after. The identity record decides: the
    reconciler recorded its events before it queued them, so the late webhook is the one skipped."""
    ingest = NOW - dt.timedelta(hours=3)
    pres.record_event("Ingest", [A, B], ingest)
    assert reconcile.run(now=NOW)["queued"] == 2                # on the queue, not dispatched yet
    webhook([A], ingest + dt.timedelta(minutes=1))               # late, dispatched first
    dispatch_all(env.connection_string)                          # now the reconciler's delivery
    rows = {(r["source"], r["entityRef"]): r for r in journaled()}
    assert rows[("webhook", A)]["journal_state"] == "skipped"
    assert rows[("webhook", A)]["journal_reason"] == "same event as the reconcile one"
    assert rows[("reconcile", A)]["journal_state"] == "queued"
    assert rows[("reconcile", B)]["journal_state"] == "queued"


def test_watermark_moves_only_after_the_slice_is_queued(env, pres, monkeypatch):
    event = NOW - dt.timedelta(hours=3)
    pres.record_event("Ingest", [A], event)
    state = reconcile_state.default()
    from handlers.clients import storage

    def broken(self, queue, message):
        raise RuntimeError("queue down")
    with monkeypatch.context() as m:
        m.setattr(storage.Storage, "send", broken)
        with pytest.raises(RuntimeError):
            reconcile.run(now=NOW)
    assert state.watermark()[0] <= event   # the empty slices before it count; its own does not
    reconcile.run(now=NOW)
    dispatch_all(env.connection_string)
    assert [r["entityRef"] for r in journaled()] == [A]


def test_preservica_failing_mid_page_leaves_the_watermark(env, pres, monkeypatch):
    monkeypatch.setenv("PRESERVICA_PROTOCOL", "http")
    first = NOW - dt.timedelta(hours=5, minutes=30)
    pres.record_event("Ingest", [A], first)                                   # slice 1: fine
    pres.record_event("Ingest", [B, C, FOLDER, A], NOW - dt.timedelta(hours=2))  # a later slice: fails on page 2
    reconcile.run(now=NOW - dt.timedelta(hours=4))                            # queues A's slice, watermark at -5 h
    mark = reconcile_state.default().watermark()[0]
    assert mark == NOW - dt.timedelta(hours=5)
    pres.fail_next(4, status=503, path_prefix="/api/entity/events/")          # event-actions, and its 3 retries
    with pytest.raises(SafeError, match="reconciliation stopped"):
        reconcile.run(now=NOW)
    assert reconcile_state.default().watermark()[0] >= mark
    assert reconcile_state.default().watermark()[0] <= NOW - dt.timedelta(hours=2)
    (last,) = reconcile_state.default().reports(1)
    assert last["complete"] is False and "503" in last["error"]
    reconcile.run(now=NOW)   # Preservica is back: the rest is queued, nothing skipped
    dispatch_all(env.connection_string)
    assert {(r["entityRef"], r["entityType"]) for r in journaled() if r["source"] == "reconcile"} == {
        (A, "IO"), (B, "IO"), (C, "IO"), (FOLDER, "SO")}


def test_a_spent_budget_ends_the_run_early_and_the_next_run_goes_on(env, pres, monkeypatch):
    for hours in (5, 4, 3, 2):
        pres.record_event("Ingest", [A], NOW - dt.timedelta(hours=hours, minutes=10))
    monkeypatch.setenv("RECONCILE_EVENT_TYPES", "Ingest=FULL_TEXT_INDEXED")
    monkeypatch.setenv("RECONCILE_MAX_REQUESTS", "6")   # a slice with an event: 1 + 1, pages of updated-since
    report = reconcile.run(now=NOW)
    assert report["complete"] is False and "RECONCILE_MAX_REQUESTS" in report["error"] and report["requests"] == 6
    runs = 1
    while reconcile.run(now=NOW)["complete"] is False:
        runs += 1
        assert runs < 10
    dispatch_all(env.connection_string)
    assert len([r for r in journaled() if r["source"] == "reconcile"]) == 4


def test_not_configured_or_off(app_env, monkeypatch):
    monkeypatch.delenv("PRESERVICA_SERVER", raising=False)
    report = reconcile.run(now=NOW)
    assert report["complete"] is False and "PRESERVICA_SERVER" in report["error"]
    from handlers.pipeline import registry
    monkeypatch.setenv("RECONCILE_SCHEDULE", "every 15 minutes")
    assert any("RECONCILE_SCHEDULE" in p for p in registry.problems())


# ---- through the local runner: the timer, and a run overlapping a webhook burst ---------------------

@pytest.mark.slow
def test_timer_run_overlapping_a_webhook_burst_makes_no_duplicate_card(env, pres, monkeypatch, tmp_path):
    import httpx

    from hookops.doubles.receivers import TeamsDouble
    from hookops.runner import Runner
    from tests.support.e2e import FAST_HOST, hookops, wait_until
    from tests.support.paths import ROOT

    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(FAST_HOST))
    ingest = NOW - dt.timedelta(hours=2)
    refs = [ref(f"burst-{i}") for i in range(12)]
    for r in refs:
        pres.add_asset(r, f"Burst {r[:4]}", parent=FOLDER)
    pres.record_event("Ingest", refs, ingest)
    with TeamsDouble() as teams:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url)
        monkeypatch.setenv("TEAMS_DIGEST_THRESHOLD", "100")     # one card per event, so duplicates show
        monkeypatch.setenv("PRESERVICA_ROUTES", "FULL_TEXT_INDEXED=journal,teams;*=journal")
        with Runner(ROOT, port=0, host_json=host_json) as runner:
            assert runner.functions["reconcile_timer"].trigger["type"] == "timerTrigger"
            # Preservica re-sends the burst late (after an outage) while the timer runs.
            stamp = (ingest + dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S.000")
            assert httpx.post(f"{runner.url}/admin/functions/reconcile_timer", json={"input": ""},
                              headers={"x-functions-key": runner.admin_token}).status_code == 202  # its admin key
            for chunk in (refs[:6], refs[6:]):
                hookops("send-test-event", "--url", f"{runner.url}/api/preservica/webhook", "--timestamp", stamp,
                        "--trigger", "FULL_TEXT_INDEXED", *[a for r in chunk for a in ("--ref", r)])
            assert runner.wait_for(lambda: runner.stats["reconcile_timer"]["succeeded"] == 1, timeout=60), runner.stats["reconcile_timer"]
            wait_until(lambda: len([r for r in journaled() if r.get("teams_state") in ("done", "skipped")]) >= 12,
                       timeout=60)
            assert runner.wait_idle(timeout=30)
        cards = json.dumps(teams.cards)
        assert all(cards.count(f"Burst {r[:4]}") == 1 for r in refs), "every asset has exactly one card"
        sources = sorted({r["source"] for r in journaled()})
        assert sources == ["reconcile", "webhook"] or sources == ["webhook"]


# ---- backfill ---------------------------------------------------------------------------------------

def perform_all(action: str) -> dict[str, int]:
    """Run every message on the action's queue as its function would; how often each ref was performed."""
    from handlers.clients.storage import default
    from handlers.pipeline import runner
    q, seen = default().queue(settings.action_queue(action)), {}
    queues.ensure(q)
    while batch := list(q.receive_messages(max_messages=32)):
        for m in batch:
            for job in messages.read_batch(m.content):
                seen[job.entity_ref] = seen.get(job.entity_ref, 0) + 1
            runner.run(action, m.content, 1, None, m.id)
            q.delete_message(m)
    return seen


def test_backfill_interrupted_half_way_and_resumed_does_each_asset_once(env, pres, monkeypatch):
    from click.testing import CliRunner

    from handlers.clients import storage
    from hookops.cli import main as cli
    folder = ref("bf-folder")
    pres.add_folder(folder, "Backfilled collection", parent=FOLDER)
    assets = [ref(f"bf-asset-{i}") for i in range(50)]
    for r in assets:
        pres.add_asset(r, f"Item {r[:6]}", parent=folder)
    pres.add_asset(ref("elsewhere"), "Not in the folder")
    args = ["backfill", "--since", "2020-01-01", "--folder", folder]

    dry = CliRunner().invoke(cli, args + ["--dry-run"])
    assert dry.exit_code == 0 and "Would queue journal for 50 asset(s)" in dry.output
    assert dispatch_all(env.connection_string) == 0                 # a dry run queues nothing

    real_send, sent = storage.Storage.send, []

    def flaky(self, queue, message):
        if len(sent) == 25:
            raise RuntimeError("the operator's laptop lost its connection")
        sent.append(queue)
        return real_send(self, queue, message)
    with monkeypatch.context() as m:
        m.setattr(storage.Storage, "send", flaky)
        first = CliRunner().invoke(cli, args)
    assert first.exit_code != 0 and len(sent) == 25
    dispatch_all(env.connection_string)
    performed = perform_all("journal")

    resumed = CliRunner().invoke(cli, args)
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming" in resumed.output and "already done or on their way" in resumed.output
    dispatch_all(env.connection_string)
    for r, n in perform_all("journal").items():
        performed[r] = performed.get(r, 0) + n
    assert performed == {r: 1 for r in assets}
    rows = [r for r in journaled() if r["source"] == "backfill"]
    assert len(rows) == 50 and all(r["journal_state"] == "done" for r in rows)

    again = CliRunner().invoke(cli, args)                           # a third time: nothing left
    assert again.exit_code == 0 and "for 0 asset(s); 50 already done" in again.output
    assert dispatch_all(env.connection_string) == 0


def test_backfill_refuses_bad_input(env, pres):
    from click.testing import CliRunner

    from hookops.cli import main as cli
    for args, message in ((["--since", "yesterday"], "is not a date"), (["--since", "2999-01-01"], "in the future"),
                          (["--since", "2020-01-01", "--folder", "../etc"], "not a folder reference"),
                          (["--since", "2020-01-01", "--trigger", "MOVED\x1b]8;;http://x\x07"], "not a trigger name"),
                          (["--since", "2020-01-01", "--trigger", "NOPE"], "not a trigger name")):
        result = CliRunner().invoke(cli, ["backfill", *args])
        if message:
            assert result.exit_code == 2 and message in result.output
    with pytest.MonkeyPatch.context() as m:
        m.setenv("PRESERVICA_ROUTES", "MOVED=journal")
        result = CliRunner().invoke(cli, ["backfill", "--since", "2020-01-01"])
        assert result.exit_code == 1 and "routes no action for FULL_TEXT_INDEXED" in result.output


def test_preservica_429_is_waited_out_within_the_cap(env, pres):
    """A 429 with Retry-After is retried after the wait (capped), and the run goes on."""
    pres.record_event("Ingest", [A], NOW - dt.timedelta(hours=3))
    pres.fail_next(1, status=429, headers={"Retry-After": "0"}, path_prefix="/api/entity/events")
    report = reconcile.run(now=NOW)
    assert report["complete"] is True and report["queued"] == 1
    assert sum(1 for m, p in pres.requests if p.startswith("/api/entity/events?")) >= 2


def test_preservica_data_cannot_steer_the_reconcilers_requests(env, pres):
    """A next-page link to another host is not followed (it would carry the access token); an event ref
    with path characters stays one path segment; a purged event is skipped, not fatal."""
    pres.record_event("Ingest", [A, B, C, FOLDER], NOW - dt.timedelta(hours=3))
    pres.next_base = "http://127.0.0.2:9"                    # the event-action list has a second page
    with pytest.raises(SafeError, match="another server"):
        reconcile.run(now=NOW)
    assert not any("127.0.0.2" in p for _, p in pres.requests)
    pres.next_base = None
    from handlers.clients import eventlog
    api = preservica.entity_api(__import__("handlers.clients.secrets", fromlist=["default"]).default())
    assert list(eventlog.touched(api, "../../accesstoken/login?x=", 0, eventlog.Budget(5))) == []
    raw = [r.path for r in list(pres.received)]
    assert any(p.startswith("/api/entity/events/..%2F..%2Faccesstoken%2Flogin%3Fx%3D/event-actions?") for p in raw), raw[-3:]


def test_hostile_refs_in_preservicas_records_are_not_queued(env, pres):
    """Entity references Preservica's lists return that are not UUIDs (a path, markup, a content object)
    are counted as not usable by the reconciler and left out by backfill: they never reach a URL or a key."""
    from click.testing import CliRunner

    from hookops.cli import main as cli
    evil = "../../accesstoken/login"
    pres.add_asset("<b>not-a-ref</b>", "Hostile", parent=FOLDER)
    pres.record_event("Ingest", [evil, "<b>not-a-ref</b>", A], NOW - dt.timedelta(hours=3))
    report = reconcile.run(now=NOW)
    assert (report["queued"], report["unusable"], report["complete"]) == (1, 2, True)
    dispatch_all(env.connection_string)
    assert [r["entityRef"] for r in journaled()] == [A]
    result = CliRunner().invoke(cli, ["backfill", "--since", "2020-01-01", "--dry-run"])
    assert result.exit_code == 0 and "not-a-ref" not in result.output and "<b>" not in result.output


def test_an_intake_message_naming_another_source_counts_as_a_webhook(env, pres):
    body = encode(delivery(refs=[A], timestamp=dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000")))
    raw = json.loads(messages.intake_message(envelope.delivery_id(body), "x", body.decode()))
    raw["source"] = "<script>x</script>"
    dispatch.dispatch(json.dumps(raw).encode())
    assert [r["source"] for r in journaled()] == ["webhook"]


def test_a_large_event_goes_through_a_claim_check_like_a_large_webhook(env, pres, monkeypatch):
    """One ingest touching 600 assets at one time is one delivery of ~70 KiB, over the 48 KiB queue
    payload: it is queued as intake queues a large body, through a blob."""
    many = [ref(f"big-{i}") for i in range(600)]
    for r in many:
        pres.add_asset(r, "Item", parent=FOLDER)
    pres.page_limit = 1000
    monkeypatch.setenv("RECONCILE_MAX_REQUESTS", "2000")   # event-action pages are at most half the budget left
    pres.record_event("Ingest", many, NOW - dt.timedelta(hours=3))
    assert reconcile.run(now=NOW)["queued"] == 600
    from azure.storage.blob import BlobServiceClient
    container = BlobServiceClient.from_connection_string(env.connection_string).get_container_client(
        settings.DELIVERY_CONTAINER)
    assert len(list(container.list_blobs())) == 1
    dispatch_all(env.connection_string)
    rows = journaled()
    assert len(rows) == 600 and {r["source"] for r in rows} == {"reconcile"}


def test_identity_records_are_used_once_and_a_retry_gets_its_first_answer(env):
    """claim_identity / claim_logged on Azurite: a late webhook put through and then taken by the
    reconciler as the same event keeps its answer on a retried dispatch (it was not skipped then)."""
    state, tol = reconcile_state.default(), dt.timedelta(minutes=30)
    t0 = NOW - dt.timedelta(hours=3)
    assert state.claim_identity(A, "MOVED", t0, "w0", "webhook", tol) is None            # put through
    assert state.claim_logged(A, "MOVED", [], [(t0, "l0")], tol) == []                  # the same event: not queued
    assert state.claim_identity(A, "MOVED", t0, "w0", "webhook", tol) is None            # retried: still put through
    assert state.claim_logged(A, "MOVED", [], [(t0 + dt.timedelta(minutes=5), "l1")], tol) == ["l1"]   # w0 is used
    assert state.claim_identity(A, "MOVED", t0 + dt.timedelta(minutes=5), "w1", "webhook", tol)["key"] == "l1"
    assert state.claim_identity(A, "MOVED", t0 + dt.timedelta(minutes=5), "w1", "webhook", tol)["key"] == "l1"
    assert state.claim_identity(A, "MOVED", t0 + dt.timedelta(minutes=6), "w2", "webhook", tol) is None   # l1 used
    assert state.claim_logged(A, "MOVED", [], [(t0, "l0")], tol) == []                  # found again: w0 does it
    assert state.claim_logged(A, "MOVED", [], [(t0 + dt.timedelta(minutes=5), "l1")], tol) == ["l1"]  # re-queued
