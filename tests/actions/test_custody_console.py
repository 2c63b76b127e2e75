"""The custody copy in the operator console, through the console's real HTTP function: the overview's coverage
and last audit (the same tally `hookops custody status` reads, kept by the action and the audit, never a listing
of the copy), and the event page's outcome with the OCFL version written; everything from Preservica or storage
escaped. The objects are written by the real action (pyPreservica against the double, blobs in Azurite)."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from azure.storage.blob import BlobServiceClient
from click.testing import CliRunner

from handlers import custody_audit
from handlers.clients import custody_tally, reconcile_state
from handlers.console import auth
from handlers.core import ocfl as layout
from hookops.cli import main
from tests.actions.test_custody import ROOT, TIF
from tests.actions.test_custody_audit import tif_path
from tests.support.actions import ASSET, OTHER
from tests.support.console import azure_get
from tests.support.jobs import read_job, row, run_one

MARKUP = '<img src=x onerror="alert(1)">'


def page(path: str) -> str:
    resp = azure_get(path, auth.READER)
    assert resp.status_code == 200, resp.get_body()
    return resp.get_body().decode()


def event_page(raw, as_json: bool = False):
    job = read_job(raw)
    body = page(f"events/{job.pk}/{job.rk}" + (".json" if as_json else ""))
    return json.loads(body) if as_json else body


def overview() -> dict:
    return json.loads(page("overview.json"))["custody"]


def copy(jobs, *refs, trigger="FULL_TEXT_INDEXED") -> list[bytes]:
    raws = jobs("custody", refs=list(refs), trigger=trigger)
    for raw in raws:
        run_one("custody", raw)
    return raws


def test_the_event_page_shows_the_ocfl_version_each_event_wrote(env, pres, jobs):
    [first] = copy(jobs, ASSET)
    [again] = copy(jobs, ASSET)
    pres.set_security_tag(ASSET, "closed")
    [changed] = copy(jobs, ASSET, trigger="CHANGED_SECURITY_DESCRIPTOR")
    assert event_page(first, True)["custody"]["outcome"] == "v1 written"
    unchanged = event_page(again, True)["custody"]
    assert (unchanged["state"], unchanged["outcome"], unchanged["version"], unchanged["copied"]) == \
        ("done", "no change (v1)", "v1", 0)
    html = event_page(changed)
    assert "<h2>Custody copy</h2>" in html and '<span class="outcome">v2 written</span>' in html
    assert "OCFL version <code>v2</code>" in html


def test_a_fixity_failure_is_shown_escaped_with_the_version_the_copy_kept(env, pres, jobs):
    pres.add_asset(ASSET, "Letter", bitstreams=[(f"{MARKUP}.tif", 256)])
    copy(jobs, ASSET)                                                      # v1
    pres.set_fixity(ASSET, f"{MARKUP}.tif", "SHA1", "0" * 40)              # then Preservica's value changes
    [raw] = jobs("custody", trigger="MOVED")
    with pytest.raises(Exception, match="fixity failure"):
        run_one("custody", raw)
    assert row(raw)["custody_reason"].endswith("; the copy stays at v1")
    html = event_page(raw)
    assert MARKUP not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.tif" in html
    assert "the copy stays at v1" in html and "s-failed" in html


def test_a_first_fixity_failure_says_there_is_no_copy_yet(env, pres, jobs):
    pres.set_fixity(ASSET, TIF, "MD5", "f" * 32)
    [raw] = jobs("custody")
    with pytest.raises(Exception, match="fixity failure"):
        run_one("custody", raw)
    assert row(raw)["custody_reason"].endswith("; no copy yet")


def test_the_overview_shows_what_the_action_wrote_then_what_the_audit_found(env, pres, jobs, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "FULL_TEXT_INDEXED=journal,custody;*=journal")
    assert overview() == {"coverage": None, "audit": None}
    assert "Nothing counted yet" in page("overview")
    pres.add_asset(OTHER, "Second", bitstreams=[("other.wav", 2048)])
    copy(jobs, ASSET, OTHER)
    copy(jobs, ASSET)                                                       # no new object: not counted again
    cover = overview()["coverage"]
    assert (cover["objects"], cover["verified"], cover["written"], cover["failures"]) == (2, 2, 2, 0)

    custody_audit.run(prefixes=custody_audit.PREFIXES)
    found = overview()
    assert {k: found["coverage"][k] for k in ("objects", "verified", "ok", "written", "failures")} == \
        {"objects": 2, "verified": 2, "ok": 2, "written": 0, "failures": 0}
    assert (found["audit"]["audited"], found["audit"]["ok"], found["audit"]["missing"]) == (2, 2, 0)
    assert found["coverage"]["prefixes"] == 2 and found["coverage"]["oldest"] == found["audit"]["at"]

    store = BlobServiceClient.from_connection_string(env.connection_string).get_container_client("custody")
    store.upload_blob(tif_path(store), b"not the scan", overwrite=True)
    custody_audit.run(prefixes=custody_audit.PREFIXES)
    cover = overview()["coverage"]
    assert (cover["objects"], cover["verified"], cover["mismatched"], cover["failures"]) == (2, 1, 1, 1)
    html = page("overview")
    assert "<h2>Custody copy</h2>" in html and "audited 2, ok 1, " in html
    assert '<p class="audit bad">' in html and ROOT in html   # the object the audit named
    assert "events?action=custody&amp;state=failed" in html


def test_status_and_the_overview_show_the_same_counts(env, pres, jobs):
    copy(jobs, ASSET)
    custody_audit.run(prefixes=custody_audit.PREFIXES)
    pres.add_asset(OTHER, "Second", bitstreams=[("o.wav", 64)])
    copy(jobs, OTHER)                                                  # written after the audit
    cover = overview()["coverage"]
    out = CliRunner().invoke(main, ["custody", "status"], catch_exceptions=False).output
    assert (cover["objects"], cover["ok"], cover["written"]) == (2, 1, 1)
    assert "objects: 2 (verified 2: ok at their last audit 1, written since 1; mismatched 0, missing 0)" in out


def test_the_overview_never_reads_the_copy_itself(env, pres, jobs, monkeypatch):
    """Bounded: two rows of the reconciler's table, whatever the size of the copy."""
    copy(jobs, ASSET)
    from handlers.clients import custody_config as config, custody_store

    def refuse(*_a, **_k):
        raise AssertionError("the overview read the custody storage")
    for name in ("names", "top_level", "read", "chunks", "container"):
        monkeypatch.setattr(custody_store, name, refuse)
    monkeypatch.setattr(config, "storage_root", refuse)
    assert overview()["coverage"]["objects"] == 1


def test_no_custody_panel_when_custody_is_not_routed(env, pres, jobs, monkeypatch):
    copy(jobs, ASSET)
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal")
    assert json.loads(page("overview.json"))["custody"] is None
    assert "Custody copy" not in page("overview")


def test_the_overview_escapes_what_an_audit_report_holds(env, jobs):
    copy(jobs, ASSET)
    report = {"audited": 1, "ok": 0, "mismatched": 1, "missing": 0, "complete": False,
              "error": f"custody storage failed: {MARKUP}", "failures": f"{MARKUP} (mismatched)",
              "at": "2026-12-07T02:00:00+00:00"}
    reconcile_state.default().report(report, dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC), partition=custody_tally.RUNS)
    html = page("overview")
    assert MARKUP not in html and html.count("&lt;img src=x onerror=&#34;alert(1)&#34;&gt;") == 2


def test_a_count_the_action_could_not_add_is_mended_by_the_audit(env, pres, jobs, monkeypatch, caplog):
    def busy(*_a, **_k):
        raise custody_tally.Conflict("busy")
    with monkeypatch.context() as patched, caplog.at_level(logging.WARNING):
        patched.setattr(custody_tally, "object_written", busy)
        [raw] = copy(jobs, ASSET)
    assert row(raw)["custody_state"] == "done" and "was not counted (Conflict)" in caplog.text
    assert overview()["coverage"] is None
    custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert overview()["coverage"]["objects"] == 1


def test_an_object_written_while_its_prefix_is_audited_stays_counted(env):
    state, prefix, at = reconcile_state.default(), ROOT[:3], dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC)
    custody_tally.object_written(state, prefix)                     # before the audit read the prefix: it finds it
    written = custody_tally.before_audit(state, prefix)
    custody_tally.object_written(state, prefix)                     # while it reads: perhaps after its listing
    custody_tally.prefix_audited(state, prefix, {"ok": 1}, at, written)
    cover = custody_tally.sum_prefixes(state, at)
    assert (cover.objects, cover.ok, cover.written, cover.total) == (1, 1, 1, 2)
    assert custody_tally.coverage(state) == cover
    assert layout.PREFIXES == custody_audit.PREFIXES == 4096
