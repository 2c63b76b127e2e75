"""Custody over time and the way out: the audit timer's run, `hookops custody status|verify|restore`, against
objects the real action wrote into Azurite; a hand-corrupted blob, a deleted one and a malicious inventory."""
from __future__ import annotations

import hashlib
import json
import logging

import pytest
from azure.storage.blob import BlobServiceClient
from click.testing import CliRunner

from handlers import custody_audit
from handlers.clients.custody_config import AUDIT_SCHEDULE
from handlers.core import ocfl as layout
from hookops.cli import main
from hookops.doubles.preservica.model import bitstream_bytes
from tests.actions.test_custody import ROOT, TIF
from tests.support.actions import ASSET, OTHER
from tests.support.jobs import run_one


@pytest.fixture
def stored(env, pres, jobs):
    """ASSET and OTHER copied (ASSET twice: v1, then v2 after a security change)."""
    pres.add_asset(OTHER, "Second", bitstreams=[("other.wav", 2048)])
    for raw in jobs("custody", refs=[ASSET, OTHER]):
        run_one("custody", raw)
    pres.set_security_tag(ASSET, "closed")
    run_one("custody", jobs("custody", trigger="CHANGED_SECURITY_DESCRIPTOR")[0])
    return BlobServiceClient.from_connection_string(env.connection_string).get_container_client("custody")


def tif_path(client) -> str:
    inv = json.loads(client.download_blob(f"{ROOT}/inventory.json").readall())
    [path] = [p for paths in inv["manifest"].values() for p in paths if p.endswith(TIF)]
    return f"{ROOT}/{path}"


def cli(*args):
    return CliRunner().invoke(main, ["custody", *args], catch_exceptions=False)


def test_a_full_audit_finds_every_object_ok(stored):
    report = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert (report["audited"], report["ok"], report["mismatched"], report["missing"]) == (2, 2, 0, 0)
    assert report["complete"] and report["compared"] == 2 and report["requests"] > 0


def test_the_audit_finds_a_file_whose_fixity_preservica_now_records_differently(stored, pres, caplog):
    """The copy and its inventory agree, but Preservica's stored fixity for the scan no longer matches it (its
    own store changed, or its record did): the audit compares with Preservica's fixity as it is now."""
    pres.set_fixity(ASSET, TIF, "SHA1", "0" * 40)
    with caplog.at_level(logging.WARNING):
        report = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert (report["audited"], report["ok"], report["mismatched"], report["missing"]) == (2, 1, 1, 0)
    assert report["failures"] == f"{ROOT} (mismatched, not Preservica's fixity now)"
    [alert] = [r for r in caplog.records if r.getMessage().startswith("ALERT custody-audit:")]
    assert "mismatched 1" in alert.getMessage() and ROOT in alert.getMessage()


def test_the_audit_stops_when_its_preservica_budget_is_spent_and_the_next_run_resumes(stored, monkeypatch):
    monkeypatch.setenv("CUSTODY_AUDIT_MAX_REQUESTS", "3")   # not enough to read one asset's fixity
    report = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert not report["complete"] and report["requests"] == 3 and report["audited"] < 2
    assert "request budget of 3 spent (CUSTODY_AUDIT_MAX_REQUESTS)" in report["error"]
    monkeypatch.setenv("CUSTODY_AUDIT_MAX_REQUESTS", "200")
    again = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert again["complete"] and (again["audited"], again["ok"], again["compared"]) == (2, 2, 2)


def test_an_inventory_that_names_another_asset_is_reported_and_that_asset_not_asked_for(stored, pres):
    """Someone with write access to the account gives ASSET's inventory OTHER's id (sidecar and all): the audit
    does not take the id's word and compare the copy with another asset's fixity."""
    inv = json.loads(stored.download_blob(f"{ROOT}/inventory.json").readall())
    inv["id"] = f"preservica:io:{OTHER}"
    data = json.dumps(inv).encode()
    stored.upload_blob(f"{ROOT}/inventory.json", data, overwrite=True)
    stored.upload_blob(f"{ROOT}/inventory.json.sha512", layout.sidecar(data), overwrite=True)
    asked = len(pres.requests)
    report = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert (report["audited"], report["ok"], report["mismatched"], report["compared"]) == (2, 1, 1, 1)
    assert f"{ROOT} (mismatched)" in report["failures"]
    assert sum(p.endswith(f"/information-objects/{OTHER}") for _, p in pres.requests[asked:]) == 1   # its own object


def test_without_preservica_settings_the_audit_checks_the_inventory_alone(stored, monkeypatch):
    monkeypatch.delenv("PRESERVICA_SERVER")
    report = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert (report["audited"], report["ok"], report["compared"], report["requests"]) == (2, 2, 0, 0)


def test_the_audit_finds_a_corrupted_and_a_missing_file_and_raises_the_alert(stored, caplog):
    stored.upload_blob(tif_path(stored), b"not the scan", overwrite=True)
    other = layout.object_root(f"preservica:io:{OTHER}")
    [wav] = [b.name for b in stored.list_blobs(name_starts_with=other) if b.name.endswith("other.wav")]
    stored.delete_blob(wav)
    with caplog.at_level(logging.WARNING):
        report = custody_audit.run(prefixes=custody_audit.PREFIXES)
    assert (report["audited"], report["ok"], report["mismatched"], report["missing"]) == (2, 0, 1, 1)
    [alert] = [r for r in caplog.records if r.getMessage().startswith("ALERT custody-audit:")]
    assert "audited 2, ok 0, mismatched 1, missing 1" in alert.getMessage()
    assert (alert.alert_mismatched, alert.alert_missing) == (1, 1)


def test_a_run_audits_its_share_and_the_next_goes_on_from_the_checkpoint(stored):
    seen = 0
    for _ in range(4):   # four runs of a quarter each: every object exactly once
        seen += custody_audit.run(prefixes=custody_audit.PREFIXES // 4)["audited"]
    assert seen == 2
    assert custody_audit.share(90) * 90 >= custody_audit.PREFIXES


def test_verify_reads_one_object_now(stored):
    result = cli("verify", ASSET)
    assert result.exit_code == 0 and f"{ASSET}: ok, head v2" in result.output
    stored.upload_blob(tif_path(stored), b"x", overwrite=True)
    result = cli("verify", ASSET)
    assert result.exit_code == 1 and "mismatched: v1/content/preservation/" in result.output


def test_verify_compares_with_preservicas_fixity_now_as_the_audit_does(stored, pres):
    assert "against its inventory and Preservica's fixity now" in cli("verify", ASSET).output
    pres.set_fixity(ASSET, TIF, "SHA1", "0" * 40)   # the copy agrees with its inventory, not with Preservica
    result = cli("verify", ASSET)
    assert result.exit_code == 1 and f"{ASSET}: mismatched" in result.output, result.output
    [line] = [x for x in result.output.splitlines() if "not Preservica's fixity now:" in x]
    assert line.endswith(TIF) and "mismatched: " not in result.output.replace(f"{ASSET}: mismatched", "")
    result = cli("verify", ASSET, "--inventory-only")
    assert result.exit_code == 0 and f"{ASSET}: ok, head v2" in result.output and "against its inventory\n" in result.output


def test_verify_with_preservica_down_says_so_and_how_to_check_without_it(stored, pres):
    pres.fail_next(1000, 503)
    result = CliRunner().invoke(main, ["custody", "verify", ASSET])
    assert result.exit_code == 1 and "not verified" in result.output and "--inventory-only" in result.output
    assert "Traceback" not in result.output, result.output
    pres.clear_failures()


def test_restore_reproduces_the_original_bytes_of_each_version(stored, tmp_path):
    result = cli("restore", ASSET, "--to", str(tmp_path / "v1"), "--version", "v1")
    assert result.exit_code == 0, result.output
    [tif] = list((tmp_path / "v1").rglob(TIF))
    assert tif.read_bytes() == bitstream_bytes(TIF, 1_048_576)
    old = (tmp_path / "v1" / "metadata" / "entity.xml").read_bytes()
    assert cli("restore", ASSET, "--to", str(tmp_path / "head")).exit_code == 0
    new = (tmp_path / "head" / "metadata" / "entity.xml").read_bytes()
    assert b"open" in old and b"closed" in new


def test_restore_refuses_a_corrupted_file(stored, tmp_path):
    stored.upload_blob(tif_path(stored), b"x", overwrite=True)
    result = CliRunner().invoke(main, ["custody", "restore", ASSET, "--to", str(tmp_path)])
    assert result.exit_code == 1 and "do not match the inventory's digest" in result.output
    assert not list(tmp_path.rglob(TIF)) and not list(tmp_path.rglob("*.partial"))


@pytest.mark.parametrize("logical", ["../escaped.txt", "/tmp/escaped.txt", "a/../../escaped.txt"])
def test_restore_refuses_an_inventory_that_points_outside_the_folder(stored, tmp_path, logical):
    inv = json.loads(stored.download_blob(f"{ROOT}/inventory.json").readall())
    digest = next(iter(inv["manifest"]))
    inv["versions"][inv["head"]]["state"] = {digest: [logical]}   # as someone with write access could
    data = json.dumps(inv).encode()
    stored.upload_blob(f"{ROOT}/inventory.json", data, overwrite=True)
    stored.upload_blob(f"{ROOT}/inventory.json.sha512", layout.sidecar(data), overwrite=True)
    target = tmp_path / "restore"
    result = CliRunner().invoke(main, ["custody", "restore", ASSET, "--to", str(target)])
    assert result.exit_code == 1 and "logical path not allowed" in result.output
    assert not list(tmp_path.rglob("escaped.txt")) and not (tmp_path.parent / "escaped.txt").exists()


def test_status_shows_coverage_the_last_audit_and_one_objects_versions(stored):
    custody_audit.run(prefixes=custody_audit.PREFIXES)
    result = cli("status")
    assert "objects: 2" in result.output and "audited 2, ok 2, mismatched 0, missing 0" in result.output
    result = cli("status", ASSET)
    assert "head v2" in result.output and "  v1  " in result.output and "CHANGED_SECURITY_DESCRIPTOR" in result.output


def test_status_escapes_what_the_inventory_says(stored):
    inv = json.loads(stored.download_blob(f"{ROOT}/inventory.json").readall())
    inv["versions"]["v1"]["message"] = "\x1b]0;owned\x07\x1b[2J"   # terminal control sequences
    data = json.dumps(inv).encode()
    stored.upload_blob(f"{ROOT}/inventory.json", data, overwrite=True)
    stored.upload_blob(f"{ROOT}/inventory.json.sha512", layout.sidecar(data), overwrite=True)
    result = cli("status", ASSET)
    assert "\x1b" not in result.output and "owned" in result.output


def test_an_inventory_changed_without_its_sidecar_is_reported(stored):
    inv = stored.download_blob(f"{ROOT}/inventory.json").readall()
    stored.upload_blob(f"{ROOT}/inventory.json", inv.replace(b'"v1"', b'"v1" '), overwrite=True)
    result = cli("verify", ASSET)
    assert result.exit_code == 1 and "does not match its sidecar" in result.output
    assert hashlib.sha512(inv).hexdigest()   # the original is what the sidecar names


@pytest.mark.parametrize("env, expected", [({}, "0 0 2 * * *"), ({"CUSTODY_AUDIT_SCHEDULE": ""}, None),
                                           ({"CUSTODY_AUDIT_SCHEDULE": "0 15 1 * * *"}, "0 15 1 * * *")])
def test_the_audit_timer_takes_its_schedule_from_the_setting(env, expected):
    assert AUDIT_SCHEDULE.schedule(env) == expected and AUDIT_SCHEDULE.problem(env) is None
    assert "CUSTODY_AUDIT_SCHEDULE must be an NCRONTAB" in AUDIT_SCHEDULE.problem({"CUSTODY_AUDIT_SCHEDULE": "daily"})
