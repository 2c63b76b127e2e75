import pytest
from click.testing import CliRunner

from handlers.core import settings
from handlers.pipeline import registry
from hookops.cli import main as cli


def test_defaults_apply_when_unset_or_blank():
    assert settings.get("MAX_BODY_BYTES", {}) == "4194304"
    assert settings.get("MAX_BODY_BYTES", {"MAX_BODY_BYTES": "  "}) == "4194304"
    assert settings.get("MAX_BODY_BYTES", {"MAX_BODY_BYTES": " 10 "}) == "10"
    assert settings.get("KEY_VAULT_URI", {}) is None


def test_undeclared_setting_is_a_bug():
    with pytest.raises(KeyError):
        settings.get("NOT_A_SETTING", {})


@pytest.mark.parametrize("value, message", [("ten", "whole number"), ("-1", "at least 0")])
def test_bad_numbers_name_the_setting(value, message):
    with pytest.raises(settings.SettingsError, match=f"SECRET_CACHE_SECONDS.*{message}"):
        settings.get_int("SECRET_CACHE_SECONDS", {"SECRET_CACHE_SECONDS": value})


def test_names_are_unique_and_every_setting_explained():
    names = [s.name for s in registry.all_settings()]
    assert len(names) == len(set(names))
    assert all(s.meaning and s.where in (settings.APP, settings.LOCAL, settings.HOST) for s in registry.all_settings())


def test_settings_check_reports_a_bad_route_token(monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "FULL_TEXT_INDEXED=journal,thumbnial")
    result = CliRunner().invoke(cli, ["settings", "--check"])
    assert result.exit_code != 0 and "'thumbnial'" in result.output


@pytest.mark.parametrize("routes, missing", [
    ("FULL_TEXT_INDEXED=journal,publish;*=journal", ["CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY"]),
    ("FULL_TEXT_INDEXED=journal,publish;CHANGED_SECURITY_DESCRIPTOR=journal,publish;*=journal", ["CHANGE_ASSET_VISIBILITY"]),
    ("*=journal,publish", []), ("*=journal", []),
    ("CHANGED_SECURITY_DESCRIPTOR=publish;CHANGE_ASSET_VISIBILITY=publish;*=journal", [])])
def test_publish_routed_without_its_withdrawals_is_a_problem(monkeypatch, routes, missing):
    """Publish routed for an ingest but not for a closure or a hiding: the asset stays public until the daily
    sweep (the demo's routes did so for CHANGE_ASSET_VISIBILITY)."""
    monkeypatch.setenv("PRESERVICA_ROUTES", routes)
    found = [p for p in registry.problems() if "publish" in p and "PRESERVICA_ROUTES" in p]
    assert [t for t in ("CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY") if any(t + ":" in p for p in found)] \
        == missing


def test_the_apps_own_unsafe_routes_raise_an_alert_once(monkeypatch, caplog):
    """In Azure the routes are an app setting nobody checks with `hookops settings --check`: the dispatcher's read of
    them raises the `routes-unsafe` signal (an alert rule in bicep/modules/alerts.bicep), once per process and value."""
    import logging
    monkeypatch.setattr(registry, "_signalled", set())

    def alerts(routes, reads=2, text=None):
        caplog.clear()
        monkeypatch.setenv("PRESERVICA_ROUTES", routes)
        with caplog.at_level(logging.WARNING, logger="handlers.alerts"):
            for _ in range(reads):
                registry.routes(text)
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT routes-unsafe:")]
    [alert] = alerts("FULL_TEXT_INDEXED=journal,publish;CHANGED_SECURITY_DESCRIPTOR=publish;*=journal")
    assert "not for CHANGE_ASSET_VISIBILITY" in alert and "CHANGED_SECURITY_DESCRIPTOR:" not in alert
    assert alerts("FULL_TEXT_INDEXED=journal,publish;CHANGED_SECURITY_DESCRIPTOR=publish;*=journal") == []   # said
    assert alerts("CHANGED_SECURITY_DESCRIPTOR=publish;CHANGE_ASSET_VISIBILITY=publish;*=journal") == []
    assert alerts("*=journal", text="FULL_TEXT_INDEXED=publish") == []   # a value given to check, not the app's
    [alert] = alerts("FULL_TEXT_INDEXED=journal,ocr;*=journal")   # a closed file's text left in an opened asset's fragment
    assert "ocr is routed, but not for CHANGED_SECURITY_DESCRIPTOR" in alert


@pytest.mark.parametrize("routes, missing", [
    ("FULL_TEXT_INDEXED=journal,ocr,describe;*=journal",
     [("ocr", "CHANGED_SECURITY_DESCRIPTOR"), ("ocr", "CHANGE_ASSET_VISIBILITY")]),
    ("FULL_TEXT_INDEXED=transcribe,ocr;CHANGED_SECURITY_DESCRIPTOR=ocr,transcribe;*=journal",
     [("ocr", "CHANGE_ASSET_VISIBILITY"), ("transcribe", "CHANGE_ASSET_VISIBILITY")]),
    ("FULL_TEXT_INDEXED=transcribe;CHANGE_ASSET_VISIBILITY=transcribe;*=journal",
     [("transcribe", "CHANGED_SECURITY_DESCRIPTOR")]),
    ("*=ocr,transcribe", []), ("*=journal", []),
    ("FULL_TEXT_INDEXED=ocr;CHANGED_SECURITY_DESCRIPTOR=ocr;CHANGE_ASSET_VISIBILITY=ocr;*=journal", [])])
def test_ocr_or_transcribe_routed_without_the_changes_of_access_is_a_problem(monkeypatch, routes, missing):
    """ocr or transcribe routed for an ingest but not for an opening or a showing: the text of a closed file in the
    fragment of an asset opened (its file left closed) stays there, where Preservica's public access may index it."""
    monkeypatch.setenv("PRESERVICA_ROUTES", routes)
    found = [p for p in registry.problems() if "PRESERVICA_ROUTES" in p and "fragment" in p]
    assert [(a, t) for a in ("ocr", "transcribe") for t in ("CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY")
            if any(p.startswith(f"PRESERVICA_ROUTES: {a} is routed, but not for {t}:") for p in found)] == missing


def test_the_demos_routes_follow_every_change_of_access(monkeypatch):
    from hookops import demo
    monkeypatch.setenv("PRESERVICA_ROUTES", demo.ROUTES)
    assert not [p for p in registry.problems() if "PRESERVICA_ROUTES" in p]


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", list(_commands(cli)), ids=" ".join)
def test_every_command_explains_itself(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.split("\n\n", 2)[1].strip()) > 20  # a real description, not just usage
