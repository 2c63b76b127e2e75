"""`hookops subscribe / subscriptions / unsubscribe` against the Preservica double, through the real
pyPreservica WebHooksAPI, with a local endpoint that answers the challenge with the app's own code."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import pytest
from click.testing import CliRunner

from handlers import intake
from handlers.clients import preservica
from handlers.core import signature
from hookops import cli
from tests.support.cli import SECRET, seed


class _Endpoint(BaseHTTPRequestHandler):
    """The app's intake (intake.handle) behind a plain HTTP server, or a wrong answer."""
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        self.server.challenges.append(params.get("challengeCode"))
        if self.server.wrong:
            status, ctype = 200, "application/json"
            data = json.dumps({"challengeCode": params.get("challengeCode"),
                               "challengeResponse": signature.challenge_response("another-secret",
                                                                                  params.get("challengeCode", ""))}).encode()
        else:
            req = func.HttpRequest("POST", f"http://127.0.0.1{self.path}", headers=dict(self.headers),
                                   params=params, body=body)
            resp = intake.handle(req)
            status, ctype, data = resp.status_code, resp.mimetype, resp.get_body()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    server.wrong, server.challenges = False, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/api/preservica/webhook?code=function-key-123"
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def hookops(*args: str):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def test_subscribe_checks_the_endpoint_then_subscribes_each_trigger(env, endpoint):
    result = hookops("subscribe", "--url", endpoint.url, "--trigger", "FULL_TEXT_INDEXED", "-t", "moved",
                     "-t", "INDEXED")   # the SDK's name for FULL_TEXT_INDEXED: the same subscription
    assert result.exit_code == 0, result.output
    subs = sorted(env.subscriptions.values(), key=lambda s: s["triggerType"])
    assert [s["triggerType"] for s in subs] == ["FULL_TEXT_INDEXED", "MOVED"]
    assert all(s["url"] == endpoint.url and s["secret"] == SECRET and s["includeIdentifiers"] for s in subs)
    for s in subs:
        assert f"subscribed {s['triggerType']}: {s['id']}" in result.output
    # Our own check first, then Preservica's handshake per subscription: all answered by intake.handle.
    assert len(endpoint.challenges) == 3 and all(endpoint.challenges)
    assert "function-key-123" not in result.output


def test_subscribe_refuses_when_the_endpoint_answers_wrong(env, endpoint):
    endpoint.wrong = True
    result = hookops("subscribe", "--url", endpoint.url, "--trigger", "FULL_TEXT_INDEXED")
    assert result.exit_code != 0
    assert "not subscribing" in result.output and "different secret" in result.output
    assert env.subscriptions == {}
    assert not any(p.startswith("/api/webhook") for _, p in env.requests)   # Preservica was never asked
    assert "function-key-123" not in result.output


def test_subscribe_refuses_unknown_triggers_and_unsafe_urls(env, endpoint):
    result = hookops("subscribe", "--url", endpoint.url, "--trigger", "DELETED")
    assert result.exit_code != 0 and "unknown trigger 'DELETED'" in result.output and "INGEST_FAILED" in result.output
    result = hookops("subscribe", "--url", endpoint.url + '"x', "--trigger", "MOVED")
    assert result.exit_code != 0 and "may contain" in result.output
    assert endpoint.challenges == [] and env.subscriptions == {}


def test_subscribe_refuses_a_secret_whose_key_bytes_the_sources_disagree_on(env, endpoint, monkeypatch):
    # pyPreservica's reference receiver keys the HMAC with the secret as latin-1 (webHooksAPI.py
    # WebHookHandler.hmac), the app with UTF-8 (core/signature.py); Preservica's own encoding is not public.
    # For ASCII they are the same bytes; for this secret they are not, so one of the two would refuse.
    odd = "caf\u00e9-secret"
    code = "0123abcd"
    from pyPreservica.webHooksAPI import WebHookHandler
    sdk = WebHookHandler.hmac(None, odd, code)
    assert sdk != signature.challenge_response(odd, code)
    assert WebHookHandler.hmac(None, SECRET, code) == signature.challenge_response(SECRET, code)
    monkeypatch.setenv("PRESERVICA_WEBHOOK_SECRET", odd)
    from handlers.clients import secrets
    secrets._default.reset()
    result = hookops("subscribe", "--url", endpoint.url, "--trigger", "MOVED")
    assert result.exit_code != 0 and "ASCII" in result.output
    assert endpoint.challenges == [] and env.subscriptions == {}


def test_subscriptions_lists_with_query_strings_redacted(env):
    first = seed(env, "https://func.example/api/preservica/webhook?code=SECRET-KEY", "FULL_TEXT_INDEXED")
    second = seed(env, "https://other.example/hook", "INGEST_FAILED")
    result = hookops("subscriptions")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(first in line and "FULL_TEXT_INDEXED" in line and
               "https://func.example/api/preservica/webhook?<redacted>" in line for line in lines)
    assert any(second in line and "https://other.example/hook" in line for line in lines)
    assert "SECRET-KEY" not in result.output


def test_the_commands_quiet_the_preservica_loggers_only_while_they_run(env):
    """Their error lines would repeat ours with URLs; the app's own logging is left as it was after."""
    import logging
    loggers = [logging.getLogger(n) for n in ("pyPreservica", "handlers.clients.preservica")]
    before = [lg.level for lg in loggers]
    assert hookops("subscriptions").exit_code == 0
    assert [lg.level for lg in loggers] == before


def test_subscriptions_when_there_are_none(env):
    result = hookops("subscriptions")
    assert (result.exit_code, result.output.strip()) == (0, "No subscriptions.")


def test_unsubscribe_one(env):
    keep = seed(env, "https://a.example/hook", "MOVED")
    drop = seed(env, "https://b.example/hook", "MOVED")
    result = hookops("unsubscribe", drop)
    assert result.exit_code == 0 and f"unsubscribed {drop}" in result.output
    assert list(env.subscriptions) == [keep]
    result = hookops("unsubscribe", drop)
    assert result.exit_code != 0 and "no such subscription" in result.output


def test_unsubscribe_all_needs_yes(env):
    ids = [seed(env, f"https://{i}.example/hook", "MOVED") for i in range(3)]
    result = hookops("unsubscribe", "--all")
    assert result.exit_code != 0 and "--yes" in result.output
    assert sorted(env.subscriptions) == sorted(ids)
    assert hookops("unsubscribe").exit_code != 0                       # neither an id nor --all
    result = hookops("unsubscribe", "--all", "--yes")
    assert result.exit_code == 0 and env.subscriptions == {}
    assert all(f"unsubscribed {i}" in result.output for i in ids)


def test_missing_preservica_settings_are_named(env, monkeypatch):
    monkeypatch.delenv("PRESERVICA_SERVER")
    monkeypatch.delenv("PRESERVICA_PASSWORD")
    result = hookops("subscriptions")
    assert result.exit_code != 0
    assert "PRESERVICA_SERVER" in result.output and "PRESERVICA_PASSWORD" in result.output


def test_rejected_credentials_are_explained_without_the_password(env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_PASSWORD", "wrong-Pa55word")
    result = hookops("subscriptions")
    assert result.exit_code != 0
    assert "rejected the credentials" in result.output and "PRESERVICA_USERNAME" in result.output
    assert "wrong-Pa55word" not in result.output


def test_help_explains_the_challenge_and_the_triggers():
    result = hookops("subscribe", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "challenge" in text and "FULL_TEXT_INDEXED" in text and "INGEST_FAILED" in text
    assert "--yes" in hookops("unsubscribe", "--help").output


def test_hookops_lists_the_commands_kept_in_modules_of_their_own():
    """subscribe, subscriptions, unsubscribe (hookops/subscriptions.py), poison (hookops/poison.py) and
    backfill, reconcile (hookops/backfill.py), budget (hookops/budget.py), custody (hookops/custody.py), doubles
    (hookops/demo.py) and verify-deployment (hookops/verify.py) register on the same group as the rest, so
    `hookops --help` lists them all."""
    result = hookops("--help")
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {"backfill", "budget", "console-url", "custody", "doubles", "eventlog-types", "events", "poison", "prune-events",
                      "reconcile", "run", "send-test-event", "settings", "subscribe", "subscriptions", "unsubscribe",
                      "verify-deployment", "verify-endpoint"}


@pytest.fixture(autouse=True)
def _fresh_preservica_client():
    preservica.forget_client()
    yield
    preservica.forget_client()


def test_subscriptions_escape_what_preservica_returns(env):
    """A subscription's fields come from Preservica (another user may have made it): shown, not obeyed."""
    seed(env, "https://evil.example/\x1b]8;;https://x\x07hook", "MOVED\x1b[2K")
    result = hookops("subscriptions")
    assert result.exit_code == 0 and "\x1b" not in result.output and "\\x1b" in result.output
