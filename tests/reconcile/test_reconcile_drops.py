"""Issue 19 findings 2 and 4, issue 20 point 6: the reconciler must neither drop an event nor stall.

Real pyPreservica against the Preservica double, the real dispatcher and journal on Azurite.
"""
from __future__ import annotations

import datetime as dt
import logging

from handlers import reconcile
from handlers.clients import reconcile_state
from handlers.core import settings
from hookops.doubles.deliveries import ref
from tests.support.reconcile import FOLDER, NOW, A, B, dispatch_all, journaled, webhook

T0 = NOW - dt.timedelta(hours=3)
FIVE = dt.timedelta(minutes=5)


def mapped(monkeypatch, routes: str = "*=journal") -> None:
    monkeypatch.setenv("PRESERVICA_ROUTES", routes)
    monkeypatch.setenv("RECONCILE_EVENT_TYPES", "Ingest=FULL_TEXT_INDEXED,Moved=MOVED,Modified=CHANGED_SECURITY_DESCRIPTOR")


def rows_of(source: str, trigger: str) -> list[dict]:
    return sorted((r for r in journaled() if r["source"] == source and r["trigger"] == trigger),
                  key=lambda r: r["timestamp"])


def test_closing_event_after_a_delivered_opening_is_queued(env, pres, monkeypatch):
    """Opened at t0 (webhook arrives), closed at t0+5 min (webhook lost). The old matcher let the one
    webhook stand for both logged events: found 2, delivered 2, queued 0, and the asset stayed public."""
    mapped(monkeypatch)
    webhook([A], T0, trigger="CHANGED_SECURITY_DESCRIPTOR")      # the opening, delivered
    pres.record_event("Modified", [A], T0)
    pres.record_event("Modified", [A], T0 + FIVE)                 # the closing: its webhook was lost
    report = reconcile.run(now=NOW)
    assert (report["found"], report["queued"]) == (2, 1), report
    dispatch_all(env.connection_string)
    [closing] = rows_of("reconcile", "CHANGED_SECURITY_DESCRIPTOR")
    assert closing["entityRef"] == A and closing["journal_state"] == "queued"
    assert closing["timestamp"].startswith((T0 + FIVE).strftime("%Y-%m-%dT%H:%M"))


def test_second_move_is_not_taken_for_the_first(env, pres, monkeypatch):
    """The same with a trigger that has no re-check: one webhook stands for one logged event only."""
    mapped(monkeypatch)
    webhook([A], T0, trigger="MOVED")
    pres.record_event("Moved", [A], T0)
    pres.record_event("Moved", [A], T0 + FIVE)
    report = reconcile.run(now=NOW)
    assert (report["found"], report["delivered"], report["queued"]) == (2, 1, 1), report
    dispatch_all(env.connection_string)
    assert [r["journal_state"] for r in rows_of("reconcile", "MOVED")] == ["queued"]


def test_identity_guard_does_not_let_a_used_webhook_stand_for_a_second_event(env, pres, monkeypatch):
    """Through the identity guard: the reconciler queued the first move (its webhook was lost), then
    both moves' webhooks arrive late. The first is the reconciled one; the second is a new event and
    must be put through (the old guard matched it to the same reconciled record and skipped it)."""
    mapped(monkeypatch)
    pres.record_event("Moved", [A], T0)
    assert reconcile.run(now=T0 + dt.timedelta(hours=1, minutes=2))["queued"] == 1   # the window ends before t0+5
    dispatch_all(env.connection_string)
    webhook([A], T0, trigger="MOVED")              # late: the same event as the reconciled one
    webhook([A], T0 + FIVE, trigger="MOVED")       # late: the second move, which the reconciler has not seen
    states = [(r["timestamp"][:16], r["journal_state"], r.get("journal_reason", "")) for r in rows_of("webhook", "MOVED")]
    assert states[0][1:] == ("skipped", "same event as the reconcile one"), states
    assert states[1][1] == "queued", states


def test_late_webhook_dispatched_before_the_run_leaves_the_closing_move_to_it(env, pres, monkeypatch):
    """The late first webhook is dispatched (and recorded by the guard) before the run reads the journal;
    the run queues the second logged move; dispatching it must not skip it as the first one's twin."""
    mapped(monkeypatch)
    webhook([A], T0, trigger="MOVED")
    pres.record_event("Moved", [A], T0)
    pres.record_event("Moved", [A], T0 + FIVE)
    assert reconcile.run(now=NOW)["queued"] == 1
    dispatch_all(env.connection_string)
    [second] = rows_of("reconcile", "MOVED")
    assert second["journal_state"] == "queued"


def test_a_covered_security_change_is_rechecked_by_publish_only(env, pres, monkeypatch, caplog):
    """A logged security change whose webhook came is run through publish again (it converges on the
    current tag), not through the other actions, and is not reported as missed."""
    mapped(monkeypatch, "CHANGED_SECURITY_DESCRIPTOR=journal,publish;*=journal")
    webhook([A], T0, trigger="CHANGED_SECURITY_DESCRIPTOR")
    pres.record_event("Modified", [A], T0)
    caplog.set_level(logging.INFO)
    report = reconcile.run(now=NOW)
    assert (report["queued"], report["rechecked"]) == (0, 1), report
    assert "ALERT reconcile-missed" not in caplog.text
    dispatch_all(env.connection_string)
    [row] = rows_of("recheck", "CHANGED_SECURITY_DESCRIPTOR")
    assert row["actions"] == "publish" and row["publish_state"] == "queued"
    assert reconcile.run(now=NOW + dt.timedelta(minutes=15))["rechecked"] == 0   # once per logged event


def test_a_covered_security_change_is_rechecked_by_ocr_and_transcribe_where_routed(env, pres, monkeypatch):
    """They take a closed file's text out of an asset opened (docs/actions.md, a closed file's text): a reading
    that wrote its fragment while the opening's own run looked may have left it there; the re-check, an hour on,
    finds it. Not the actions that have nothing to take back (thumbnail)."""
    mapped(monkeypatch, "CHANGED_SECURITY_DESCRIPTOR=journal,publish,thumbnail,ocr,transcribe;*=journal")
    monkeypatch.setenv("DOCINTEL_ENDPOINT", "https://docintel.invalid/")   # configured: queued, never called here
    monkeypatch.setenv("SPEECH_ENDPOINT", "https://speech.invalid/")
    webhook([A], T0, trigger="CHANGED_SECURITY_DESCRIPTOR")
    pres.record_event("Modified", [A], T0)
    assert reconcile.run(now=NOW)["rechecked"] == 1
    dispatch_all(env.connection_string)
    [row] = rows_of("recheck", "CHANGED_SECURITY_DESCRIPTOR")
    assert row["actions"] == "publish,ocr,transcribe" and row["ocr_state"] == row["transcribe_state"] == "queued"


def test_a_deleted_asset_goes_to_publish_as_gone(env, pres, monkeypatch):
    """updated-since lists a deleted entity with no type (TNA's fixture); it reaches publish, whose own
    read then finds it gone and withdraws it."""
    mapped(monkeypatch, "CHANGED_SECURITY_DESCRIPTOR=journal,publish;*=journal")
    pres.delete_entity(B, T0)
    pres.delete_entity("<b>../not-a-ref</b>", T0)
    report = reconcile.run(now=NOW)
    assert report["deleted"] == 1 and report["unusable"] >= 1, report
    dispatch_all(env.connection_string)
    [row] = rows_of("recheck", "CHANGED_SECURITY_DESCRIPTOR")
    assert (row["entityRef"], row["event"], row["actions"]) == (B, "Deleted", "publish")
    again = reconcile.run(now=NOW + dt.timedelta(minutes=15))
    assert again["deleted"] == 0   # the overlap is not scanned for deletions twice


def test_thirty_thousand_updates_since_the_watermark_do_not_stall_it(env, pres, caplog, monkeypatch):
    """~30,000 entities updated since the watermark (a busy archive, after the window's end): the old
    reconciler read updated-since without an end, spent its whole budget on it every run and reported
    complete=False, queued=0 for ever, while a missed security change waited."""
    mapped(monkeypatch)
    pres.page_limit = 100
    pres.record_event("Modified", [A], T0)                      # its webhook was lost
    late = NOW - dt.timedelta(minutes=30)                        # newer than the window's end
    for i in range(30_000):
        r = ref(f"busy-{i}")
        pres.add_asset(r, "Busy")
        pres.touch(r, late)
    caplog.set_level(logging.WARNING)
    reports = [reconcile.run(now=NOW + dt.timedelta(minutes=5 * i)) for i in range(3)]
    assert reports[0]["complete"] is True and reports[0]["queued"] == 1, reports[0]
    assert all(r["complete"] for r in reports)
    assert "ALERT reconcile-missed" in caplog.text and "ALERT reconcile-stalled" not in caplog.text


def test_progress_inside_a_slice_is_kept_and_stalls_are_alerted(env, pres, monkeypatch, caplog):
    """A slice too big for one run's budget: each run resumes where the last stopped (its checkpoint:
    the slice's date with the `start` reached), every asset is queued once, and incomplete runs in a
    row raise the stalled signal."""
    many = [ref(f"slice-{i}") for i in range(12)]
    for r in many:
        pres.add_asset(r, "Item", parent=FOLDER)
    pres.record_event("Ingest", many, T0)
    monkeypatch.setenv("RECONCILE_EVENT_TYPES", "Ingest=FULL_TEXT_INDEXED")
    monkeypatch.setenv("RECONCILE_MAX_REQUESTS", "5")
    monkeypatch.setenv("RECONCILE_STALL_RUNS", "2")
    caplog.set_level(logging.WARNING)
    queued, runs = [], 0
    while True:
        runs += 1
        assert runs < 40
        report = reconcile.run(now=NOW)
        dispatch_all(env.connection_string)   # as the app does between runs
        queued.append(report["queued"])
        if report["complete"]:
            break
        if runs == 1:
            assert "ALERT reconcile-stalled" not in caplog.text
        if runs == 2:
            assert "ALERT reconcile-stalled" in caplog.text
    assert sum(queued) == 12 and max(queued) < 12, queued   # spread over runs, nothing twice
    assert sorted(r["entityRef"] for r in journaled() if r["source"] == "reconcile") == sorted(many)
    assert reconcile_state.default().watermark()[0] > T0


def test_the_alert_signals_carry_their_counts(env, pres, caplog):
    pres.record_event("Ingest", [A, B], T0)
    caplog.set_level(logging.WARNING)
    reconcile.run(now=NOW)
    [alert] = [r for r in caplog.records if r.getMessage().startswith("ALERT reconcile-missed:")]
    assert alert.alert_queued == 2 and settings.get("RECONCILE_STALL_RUNS") == "3"


def test_next_page_links_are_compared_by_server_not_by_text():
    from handlers.clients.http import same_server
    base = "https://eu.preservica.com"
    for same in ("https://EU.Preservica.com/api/x?start=2", "https://eu.preservica.com:443/api/x",
                 "https://eu.preservica.com./api/x"):
        assert same_server(same, base), same
    for other in ("http://eu.preservica.com/api/x", "https://eu.preservica.com:8443/api/x",
                  "https://eu.preservica.com.evil.example/api/x", "https://eu.preservica.com@evil.example/api/x",
                  "https://user@eu.preservica.com/api/x", "https://eu.preservica.com:99999/api/x", "/api/x", ""):
        assert not same_server(other, base), other


def test_eventlog_types_lists_what_the_server_logs(env, pres):
    """`hookops eventlog-types`: the distinct types with counts and an example each, escaped for a terminal."""
    from click.testing import CliRunner

    from hookops.cli import main as cli
    now = dt.datetime.now(dt.UTC)
    pres.record_event("Ingest", [A, B], now - dt.timedelta(hours=2))
    pres.record_event("Ingest", [B], now - dt.timedelta(hours=1))
    pres.record_event("Modified", [A], now - dt.timedelta(minutes=30))
    pres.record_event("Virus\u202eCheck", [A], now - dt.timedelta(minutes=20))   # a bidi override
    result = CliRunner().invoke(cli, ["eventlog-types", "--days", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Ingest\t2\tevent ") and "-> FULL_TEXT_INDEXED" in lines[0]
    assert any(line.startswith("Modified\t1\t") and f"entity {A}" in line for line in lines)
    assert "\u202e" not in result.stdout and "\\u202e" in result.stdout
    assert "Moved" in lines[-1]   # mapped by default, not logged here
    assert "event(s) read" in result.stderr
    capped = CliRunner().invoke(cli, ["eventlog-types", "--days", "1", "--max-requests", "1"])
    assert capped.exit_code == 0 and "stopped after 1 requests" in capped.stdout
