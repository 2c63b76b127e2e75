"""The toy apps (tests/support/toyapp/) the local runner's tests serve, with a fast host.json.
Registered as a plugin in tests/conftest.py, so `host_json` is a fixture everywhere."""
import json
import uuid
from pathlib import Path

import pytest

from tests.support.paths import TOYS

GOOD = TOYS / "good"
WAIT = 30  # upper bound for conditions that normally hold within a fraction of a second

HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {"maxPollingInterval": "00:00:00.200", "visibilityTimeout": "00:00:00",
                   "maxDequeueCount": 2, "batchSize": 4, "messageEncoding": "base64"},
    },
}


@pytest.fixture(scope="module")
def host_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostjson") / "host.json"
    path.write_text(json.dumps(HOST_JSON))
    return path


def toy_env(azurite, records: Path) -> dict:
    """Settings for one runner of the toy app, with queues of its own."""
    tag = uuid.uuid4().hex[:8]
    return {"AzureWebJobsStorage": azurite.connection_string, "TOYAPP_RECORD_DIR": str(records),
            "TOY_RECORD_QUEUE": f"toy-record-{tag}", "TOY_FAIL_QUEUE": f"toy-fail-{tag}"}
