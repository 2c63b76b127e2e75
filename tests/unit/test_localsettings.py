"""local.settings.json and the environment (hookops/localsettings.py), as Core Tools merges them."""
import json
import os

from hookops import localsettings


def test_hookops_run_says_which_local_settings_the_environment_overrides(tmp_path, monkeypatch):
    """Issue 20: REQUESTS_CA_BUNDLE in local.settings.json was silently ignored because the shell exported
    one. As `func start`: the environment wins, one line per setting says so; an empty variable does not win."""
    monkeypatch.setattr(localsettings, "LOADED", {})
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"REQUESTS_CA_BUNDLE": "/home/me/local-ca.pem", "TOY_EMPTY_ENV": "file",
                                           "TOY_NEW": "file", "TOY_BLANK": "", "TOY_SAME": "x"}}))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("TOY_EMPTY_ENV", "")
    monkeypatch.setenv("TOY_SAME", "x")
    for name in ("TOY_NEW", "TOY_BLANK"):
        monkeypatch.delenv(name, raising=False)  # monkeypatch puts every one of these back after the test
    lines: list[str] = []
    localsettings.load(path, say=lines.append)
    assert lines == [
        "Skipping 'REQUESTS_CA_BUNDLE' from local settings as it's already defined in current environment variables.",
        "Skipping 'TOY_SAME' from local settings as it's already defined in current environment variables."]
    assert os.environ["REQUESTS_CA_BUNDLE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert (os.environ["TOY_EMPTY_ENV"], os.environ["TOY_NEW"], os.environ["TOY_BLANK"]) == ("file", "file", "")


def test_the_cli_loads_quietly_and_hookops_run_then_names_only_what_the_shell_set(tmp_path, monkeypatch):
    """Every `hookops` command loads local.settings.json first (quietly); `hookops run` loads it again and must
    not call those values "already defined", nor hand them to `func start` as if the shell had set them."""
    monkeypatch.setattr(localsettings, "LOADED", {})
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"REQUESTS_CA_BUNDLE": "/home/me/local-ca.pem", "TOY_NEW": "file"}}))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.delenv("TOY_NEW", raising=False)
    assert localsettings.load(path) == {"TOY_NEW": "file"}              # the CLI group: says nothing
    lines: list[str] = []
    assert localsettings.load(path, say=lines.append) == {}             # `hookops run`
    assert lines == [localsettings.skipped_line("REQUESTS_CA_BUNDLE")]
    given = localsettings.inherited(os.environ)
    assert "TOY_NEW" not in given and given["REQUESTS_CA_BUNDLE"] == "/etc/ssl/certs/ca-certificates.crt"
