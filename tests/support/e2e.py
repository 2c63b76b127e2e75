"""End-to-end helpers: the app under the local runner with a fast host.json, and waits on conditions.
Registered as a plugin in tests/conftest.py, so `fast_host_json` and `runner` are fixtures everywhere."""
import json
import time

import pytest
from azure.storage.queue import QueueClient
from click.testing import CliRunner

from handlers.clients import journal
from hookops.cli import main as cli
from hookops.runner import Runner
from tests.support.paths import ROOT

FAST_HOST = {"version": "2.0", "extensions": {"http": {"routePrefix": "api"}, "queues": {
    "maxPollingInterval": "00:00:00.200", "visibilityTimeout": "00:00:00", "batchSize": 16,
    "newBatchThreshold": 8, "maxDequeueCount": 2, "messageEncoding": "base64"}}}


@pytest.fixture
def fast_host_json(tmp_path):
    path = tmp_path / "host.json"
    path.write_text(json.dumps(FAST_HOST))
    return path


@pytest.fixture
def runner(app_env, fast_host_json):
    """The whole app under the local runner against the session Azurite (test_runner.py has a toy app's)."""
    with Runner(ROOT, port=0, host_json=fast_host_json) as r:
        yield r


def webhook(r) -> str:
    return f"{r.url}/api/preservica/webhook"


def hookops(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def rows_done(action: str = "journal") -> dict[str, dict]:
    return {r["entityRef"]: r for r in journal.default().recent(1000) if r.get(f"{action}_state") == "done"}


def wait_until(predicate, timeout: float = 30.0, step: float = 0.05, why=None):
    """`predicate()` once it is true; after `timeout` s an AssertionError saying `why()` (what is still missing)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout:g} s" + (f": {why()}" if why else ""))
        time.sleep(step)  # polling a condition, not waiting a fixed time
    return value


def queue_count(conn: str, name: str) -> int:
    try:
        return QueueClient.from_connection_string(conn, name).get_queue_properties().approximate_message_count
    except Exception:
        return 0
