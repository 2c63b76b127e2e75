"""GET /api/health: healthy when storage and the webhook secret can be read, else 503 with no detail;
cached; never hangs on a service that does not answer."""
import json
import os
import signal

import azure.functions as func
import httpx
import pytest

from handlers import health
from hookops import azurite as az


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(health, "_last", None)
    monkeypatch.setattr(health, "DEADLINE", 60.0)   # a loaded machine is slow, not down: a hang guard, not 5 s


def get() -> func.HttpResponse:
    return health.health(func.HttpRequest("GET", "http://h/api/health", body=b""))


def test_healthy_when_storage_and_secret_answer(app_env):
    resp = get()
    assert resp.status_code == 200 and json.loads(resp.get_body()) == {"status": "ok"}
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Content-Type-Options"] == "nosniff"


def test_storage_down_is_unhealthy_and_says_nothing_more(app_env, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", az.connection_string(az.free_port(), az.free_port(), az.free_port()))
    resp = get()
    assert resp.status_code == 503 and json.loads(resp.get_body()) == {"status": "unhealthy"}


def test_missing_secret_is_unhealthy(app_env, monkeypatch):
    monkeypatch.delenv("PRESERVICA_WEBHOOK_SECRET")
    assert get().status_code == 503


def test_storage_that_does_not_answer_is_unhealthy_within_the_deadline(app_env, tmp_path, monkeypatch):
    store = az.start_on_free_ports(tmp_path / "azurite")
    monkeypatch.setenv("AzureWebJobsStorage", store.connection_string)
    try:
        assert get().status_code == 200        # with a generous deadline: a loaded machine is slow, not down
        monkeypatch.setattr(health, "_last", None)
        monkeypatch.setattr(health, "DEADLINE", 0.5)   # a frozen Azurite never answers: no need to wait 5 s
        os.kill(store.proc.pid, signal.SIGSTOP)
        assert get().status_code == 503        # answered (pytest-timeout would catch a hang), not waited out
    finally:
        os.kill(store.proc.pid, signal.SIGCONT)
        store.stop()


def test_the_answer_is_cached_for_a_few_seconds(app_env, monkeypatch):
    calls = []
    monkeypatch.setattr(health, "_storage", lambda: calls.append(1) or True)
    assert health.healthy(now=100.0) and health.healthy(now=100.0 + health.CACHE_SECONDS / 2)
    assert len(calls) == 1
    assert health.healthy(now=100.0 + health.CACHE_SECONDS + 1) and len(calls) == 2


def test_health_over_http_through_the_runner(app_env, tmp_path):
    from hookops.runner import Runner
    from tests.support.paths import ROOT
    with Runner(ROOT, port=0) as runner:
        resp = httpx.get(f"{runner.url}/api/health", timeout=10)
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
