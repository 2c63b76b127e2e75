"""`hookops verify-deployment` against the real app (the local runner, real Azurite) behind a front end
that behaves as App Service built-in authentication is documented to (hookops/doubles/easyauth.py), and
behind misconfigured fronts, where each check concerned must fail with its advice."""
from __future__ import annotations

import unicodedata

import pytest
from click.testing import CliRunner

from hookops import localsettings
from hookops.cli import main as cli
from hookops.doubles.base import HttpDouble
from hookops.doubles.easyauth import EasyAuthFront
from tests.support.paths import ROOT

SECRET = "verify-deployment-secret"
# What the platform sets where the app runs with built-in authentication on (console/auth.py reads them).
AZURE_ENV = {"WEBSITE_INSTANCE_ID": "0" * 64, "WEBSITE_AUTH_ENABLED": "True"}
CHECKS = ("unsigned-delivery", "challenge", "health", "https-only", "console-anonymous",
          "console-forged-principal", "security-headers")


@pytest.fixture(scope="module")
def app(azurite):
    """The app under the local runner, configured as in Azure behind built-in authentication."""
    from handlers.clients import shared
    from hookops.runner import Runner
    with pytest.MonkeyPatch.context() as mp:
        for name in ("KEY_VAULT_URI", "PRESERVICA_WEBHOOK_SECRET_PREVIOUS", "PRESERVICA_SERVER", "MAX_BODY_BYTES"):
            mp.delenv(name, raising=False)
        mp.setenv("AzureWebJobsStorage", azurite.connection_string)
        mp.setenv("PRESERVICA_WEBHOOK_SECRET", SECRET)
        mp.setattr(localsettings, "load", lambda *a, **k: None)  # no developer local.settings.json
        shared.reset_all()
        with Runner(ROOT, port=0, env=AZURE_ENV) as runner:
            yield runner
        shared.reset_all()


def verify(url: str, *args: str, secret: str | None = SECRET, session: str | None = None):
    env = {"HOOKOPS_AUTH_SESSION": session or "", "KEY_VAULT_URI": ""}
    extra = ["--secret-stdin"] if secret is not None and "--vault-url" not in args else []
    result = CliRunner().invoke(cli, ["verify-deployment", "--url", url, "--timeout", "30", *extra, *args],
                                input=(secret or "") + "\n", env=env, catch_exceptions=False, color=True)
    lines = {line.split()[1].rstrip(":"): line for line in result.output.splitlines()
             if line.split()[:1] in (["PASS"], ["FAIL"], ["SKIP"])}
    return result, lines


def test_every_check_passes_behind_documented_built_in_auth(app):
    with EasyAuthFront(app.url) as front:
        result, lines = verify(front.base_url, session=front.sign_in())
    assert result.exit_code == 0, result.output
    assert set(lines) == set(CHECKS), result.output
    assert all(lines[c].startswith("PASS") for c in CHECKS if c != "https-only"), result.output
    assert lines["https-only"].startswith("SKIP")   # a local http URL
    assert SECRET not in result.output
    # The forged principal never reached the app: the front redirected it, as it did the anonymous browser.
    assert not any("forged" in str(r.headers) for r in front.forwarded)


def test_webhook_route_behind_sign_in_fails_delivery_and_challenge(app):
    with EasyAuthFront(app.url, excluded=("/api/health",)) as front:
        result, lines = verify(front.base_url, session=front.sign_in())
    assert result.exit_code == 1
    assert lines["unsigned-delivery"].startswith("FAIL") and "redirected to sign-in" in lines["unsigned-delivery"]
    assert "/api/preservica/webhook to excludedPaths" in lines["unsigned-delivery"]
    assert lines["challenge"].startswith("FAIL") and "excludedPaths" in lines["challenge"]
    assert lines["health"].startswith("PASS") and lines["console-anonymous"].startswith("PASS")
    assert "2 check(s) failed: unsigned-delivery, challenge" in result.output


def test_health_behind_sign_in_fails(app):
    with EasyAuthFront(app.url, excluded=("/api/preservica/webhook",)) as front:
        _, lines = verify(front.base_url)
    assert lines["health"].startswith("FAIL") and "/api/health to excludedPaths" in lines["health"]


def test_console_open_without_sign_in_fails(app):
    with EasyAuthFront(app.url, require_auth=False) as front:
        result, lines = verify(front.base_url)
    assert result.exit_code == 1
    assert lines["console-anonymous"].startswith("FAIL")
    assert "expected a redirect to sign-in, got 401" in lines["console-anonymous"]   # the app's own refusal
    assert "requireAuthentication" in lines["console-anonymous"]
    assert lines["unsigned-delivery"].startswith("PASS") and lines["challenge"].startswith("PASS")


def test_forged_principal_passed_through_fails(app):
    """Built-in authentication off while the app is told it is on (WEBSITE_AUTH_ENABLED as an app setting):
    nothing strips the caller's principal header, and the console believes it."""
    with EasyAuthFront(app.url, require_auth=False, strip_principal=False) as front:
        result, lines = verify(front.base_url)
    assert result.exit_code == 1
    assert lines["console-forged-principal"].startswith("FAIL")
    assert "forged X-MS-CLIENT-PRINCIPAL header was believed" in lines["console-forged-principal"]
    assert "WEBSITE_AUTH_ENABLED" in lines["console-forged-principal"]


def test_wrong_or_missing_secret_fails_the_challenge(app):
    with EasyAuthFront(app.url) as front:
        _, lines = verify(front.base_url, secret="not-the-apps-secret")
        assert lines["challenge"].startswith("FAIL") and "different secret" in lines["challenge"]
        assert "not-the-apps-secret" not in lines["challenge"]
        _, lines = verify(front.base_url, secret=None)
        assert lines["challenge"].startswith("FAIL") and "--secret-stdin" in lines["challenge"]


def test_secret_read_from_key_vault_with_the_callers_identity(app, _keyvault_server, monkeypatch):
    kv = _keyvault_server
    kv.set_available(True)
    kv.patch_env(monkeypatch)      # DefaultAzureCredential finds the double's managed identity endpoint
    kv.set_secret("preservica-webhook-secret", SECRET)
    with EasyAuthFront(app.url) as front:
        result, lines = verify(front.base_url, "--vault-url", kv.vault_url)
        assert lines["challenge"].startswith("PASS"), result.output
        kv.set_secret("preservica-webhook-secret", "rotated-in-the-vault-only")
        _, lines = verify(front.base_url, "--vault-url", kv.vault_url)
        assert "different secret" in lines["challenge"] and "restart the app" in lines["challenge"]
        kv.set_available(False)
        _, lines = verify(front.base_url, "--vault-url", kv.vault_url)
        assert lines["challenge"].startswith("FAIL") and "could not read Key Vault secret" in lines["challenge"]
    kv.set_available(True)
    assert SECRET not in result.output


class _Hostile(HttpDouble):
    """An endpoint (or a man in the middle) answering every request with terminal control sequences."""

    def handle(self, request):
        from hookops.doubles.base import Reply
        return Reply(302, {"Location": "/x\x1b]8;;http://evil.example\x07y"}, b"") if "console" in request.path \
            else Reply(500, {"Content-Type": "text/plain"}, "oops\x1b[2J\x1b]8;;http://evil.example\x07click\u202e".encode())


def test_hostile_answers_are_printed_escaped():
    with _Hostile() as hostile:
        result, lines = verify(hostile.base_url)
    assert result.exit_code == 1
    unsafe = {c for c in result.output.replace("\n", "") if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}}
    assert not unsafe, result.output
    assert "oops\\x1b[2J" in lines["unsigned-delivery"]


def test_help_explains_each_check():
    result = CliRunner().invoke(cli, ["verify-deployment", "--help"])
    text = " ".join(result.output.split())
    assert all(c in text for c in CHECKS)
    assert "--secret-stdin" in text and "--vault-url" in text and "never printed" in text


class _StrippingFront(EasyAuthFront):
    """A front (a proxy someone put in front of the app) that drops the console's Content-Security-Policy."""

    def _forward(self, request, headers):
        from hookops.doubles.base import Reply
        reply = super()._forward(request, headers)
        return Reply(reply.status, {k: v for k, v in reply.headers.items() if k.lower() != "content-security-policy"},
                     reply.body)


def test_missing_security_headers_fail(app):
    with _StrippingFront(app.url) as front:
        result, lines = verify(front.base_url, session=front.sign_in())
        assert lines["security-headers"].startswith("FAIL") and "Content-Security-Policy" in lines["security-headers"]
        _, lines = verify(front.base_url)                  # no session: said, not failed
    assert lines["security-headers"].startswith("SKIP") and "HOOKOPS_AUTH_SESSION" in lines["security-headers"]
    assert result.exit_code == 1


def test_the_url_may_be_the_webhook_url_but_must_be_http():
    from hookops.verify import base_url
    assert base_url("https://app.azurewebsites.net/api/preservica/webhook?code=k") == "https://app.azurewebsites.net"
    assert base_url("http://127.0.0.1:7071/") == "http://127.0.0.1:7071"
    result = CliRunner().invoke(cli, ["verify-deployment", "--url", "ftp://x\x1b[2J", "--secret-stdin"], input="s\n")
    assert result.exit_code == 2 and "not an http(s) URL" in result.output and "\x1b" not in result.output
