"""The local runner against a toy app and a real Azurite: HTTP as the host serves it, queue triggers
as the host polls them (base64, dequeue count, poison queue), settings, and a prompt stop."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient, TextBase64EncodePolicy

from hookops import azurite as azurite_mod, hostconfig
from hookops.host import queues as runner_queues
from hookops.runner import Runner, RunnerError, route_regex
from tests.support.paths import ROOT, TOYS
from tests.support.toys import GOOD, WAIT, toy_env


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("records")


@pytest.fixture(scope="module")
def runner(azurite, host_json, records):
    r = Runner(GOOD, port=0, host_json=host_json, env=toy_env(azurite, records))
    r.queue_names = {k: v for k, v in r.env.items() if k.endswith("_QUEUE")}
    with r:
        yield r


def queue(azurite, name: str, policy=None) -> QueueClient:
    return QueueClient.from_connection_string(azurite.connection_string, name, message_encode_policy=policy)


def peek_all(client: QueueClient) -> list[str]:
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


def recorded(records: Path, kind: str, body: bytes) -> list[dict]:
    entries = [json.loads(p.read_text()) for p in records.glob(f"{kind}-*.json")]
    return sorted((e for e in entries if base64.b64decode(e["body"]) == body), key=lambda e: e["dequeue_count"])


def raw_http(port: int, request: bytes) -> bytes:
    """Send bytes exactly as given and read the whole answer (the request must say Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


# ---- HTTP ------------------------------------------------------------------------------------

def test_chunked_body_arrives_whole(runner):
    parts = [b'{"events": [', b"x" * 70_000, b"], ", "\u00e9t\u00e9".encode(), b"}"]
    whole = b"".join(parts)
    r = httpx.post(f"{runner.url}/api/echo", content=iter(parts))  # an iterator: httpx sends it chunked
    assert r.status_code == 200
    seen = r.json()
    assert (seen["length"], seen["sha256"]) == (len(whole), hashlib.sha256(whole).hexdigest())


def test_chunked_framing_with_extensions_and_trailers(runner):
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    answer = raw_http(runner.port, b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                   b"Connection: close\r\n\r\n" + body)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(payload)["sha256"] == hashlib.sha256(b"hello world").hexdigest()


def test_content_length_body_and_query(runner):
    r = httpx.post(f"{runner.url}/api/echo?challengeCode=abc&x=1&x=2", content=b"plain body")
    seen = r.json()
    assert seen["length"] == len(b"plain body")
    assert seen["params"] == {"challengeCode": "abc", "x": "1,2"}
    assert seen["url"].endswith("/api/echo?challengeCode=abc&x=1&x=2")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-toy"] == "echo"


@pytest.mark.parametrize("name", ["PRESERVICA-SIGNATURE", "preservica-signature", "Preservica-Signature"])
def test_header_names_are_case_insensitive(runner, name):
    answer = raw_http(runner.port, f"PUT /api/echo HTTP/1.1\r\nHost: x\r\n{name}: abc123\r\n"
                                   "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    seen = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert seen["signature"] == seen["signature_lower"] == "abc123"


def test_route_case_params_and_async_function(runner):
    r = httpx.get(f"{runner.url}/API/Items/42")
    assert (r.status_code, r.text) == (200, "item 42")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_wrong_method_is_405_unknown_route_is_404(runner):
    r = httpx.get(f"{runner.url}/api/echo")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"POST", "PUT"}
    assert httpx.post(f"{runner.url}/api/nope", content=b"x").status_code == 404
    assert httpx.post(f"{runner.url}/echo", content=b"x").status_code == 404  # routePrefix applies


def test_exception_is_a_bare_500_and_logged(runner, caplog):
    before = dict(runner.stats["boom"])
    with caplog.at_level("INFO", logger="hookops.runner"):
        r = httpx.get(f"{runner.url}/api/boom?challengeCode=SECRET123")
        assert runner.wait_idle(WAIT)  # the request's log line is written before it counts as done
    assert r.status_code == 500
    assert b"secret detail" not in r.content
    assert runner.stats["boom"]["failed"] == before["failed"] + 1
    assert "secret detail that must not reach the caller" in caplog.text  # traceback in the log
    lines = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("GET /api/boom")]
    assert lines and "500" in lines[0]
    assert "SECRET123" not in caplog.text  # the query string is never logged


def test_keep_alive_connection_serves_several_requests(runner):
    with httpx.Client() as client:
        for i in range(3):
            assert client.post(f"{runner.url}/api/echo", content=b"x" * i).json()["length"] == i


# ---- queues ----------------------------------------------------------------------------------

def test_base64_message_reaches_function(runner, azurite, records):
    body = b"\x00\xffbinary " + uuid.uuid4().bytes
    queue(azurite, runner.queue_names["TOY_RECORD_QUEUE"], BinaryBase64EncodePolicy()).send_message(body)
    assert runner.wait_for(lambda: recorded(records, "record", body), WAIT)
    (entry,) = recorded(records, "record", body)
    assert entry["dequeue_count"] == 1 and entry["pop_receipt"] and entry["has_times"]
    assert runner.wait_idle(WAIT)
    left = peek_all(queue(azurite, runner.queue_names["TOY_RECORD_QUEUE"]))
    assert body not in [base64.b64decode(c) for c in left]  # deleted after success


def test_failing_message_goes_to_poison_after_max_dequeue_count(runner, azurite, records):
    text = f"fails {uuid.uuid4()}"
    before = dict(runner.stats["always_fail"])
    fail_queue = runner.queue_names["TOY_FAIL_QUEUE"]
    queue(azurite, fail_queue, TextBase64EncodePolicy()).send_message(text)
    assert runner.wait_for(lambda: runner.stats["always_fail"]["poisoned"] > before["poisoned"], WAIT)
    attempts = recorded(records, "fail", text.encode())
    assert [a["dequeue_count"] for a in attempts] == [1, 2]  # maxDequeueCount attempts, not fewer
    assert runner.stats["always_fail"]["failed"] == before["failed"] + 2
    poison = peek_all(queue(azurite, f"{fail_queue}-poison"))
    assert base64.b64encode(text.encode()).decode() in poison  # the original, encoded content
    assert runner.wait_idle(WAIT)
    assert peek_all(queue(azurite, fail_queue)) == []


def test_one_failure_is_retried_not_poisoned(azurite, host_json, tmp_path, records):
    """With maxDequeueCount 3 the same function gets three tries before the poison queue."""
    custom = tmp_path / "host.json"
    doc = json.loads(host_json.read_text())
    doc["extensions"]["queues"]["maxDequeueCount"] = 3
    custom.write_text(json.dumps(doc))
    fresh = tmp_path / "records"
    fresh.mkdir()
    text = f"three {uuid.uuid4()}"
    env = toy_env(azurite, fresh)
    with Runner(GOOD, port=0, host_json=custom, env=env) as r:
        queue(azurite, env["TOY_FAIL_QUEUE"], TextBase64EncodePolicy()).send_message(text)
        assert r.wait_for(lambda: r.stats["always_fail"]["poisoned"] >= 1, WAIT)
    assert [a["dequeue_count"] for a in recorded(fresh, "fail", text.encode())] == [1, 2, 3]


def test_non_base64_message_goes_straight_to_poison(runner, azurite, records):
    raw = f"plain text, not base64 {uuid.uuid4()}!"
    before = dict(runner.stats["record"])
    record_queue = runner.queue_names["TOY_RECORD_QUEUE"]
    queue(azurite, record_queue).send_message(raw)
    assert runner.wait_for(lambda: runner.stats["record"]["poisoned"] > before["poisoned"], WAIT)
    assert raw in peek_all(queue(azurite, f"{record_queue}-poison"))
    assert runner.stats["record"]["invoked"] == before["invoked"]  # never reached the function


def test_storage_outage_is_logged_once_and_polling_goes_on(tmp_path, host_json, records, caplog):
    own = azurite_mod.start_on_free_ports(tmp_path / "azurite")
    try:
        env = toy_env(own, records)
        body = f"after the outage {uuid.uuid4()}".encode()
        with caplog.at_level("INFO", logger="hookops.runner"), \
                Runner(GOOD, port=0, host_json=host_json, env=env) as r:
            assert r.wait_idle(WAIT)
            own.stop()
            assert r.wait_for(lambda: r.stats["record"]["outages"] == 1, WAIT)
            own.start()
            queue(own, env["TOY_RECORD_QUEUE"], BinaryBase64EncodePolicy()).send_message(body)
            assert r.wait_for(lambda: r.stats["record"]["succeeded"] == 1, WAIT)
            assert r.stats["record"]["outages"] == 1  # many failed polls, one outage
        unreachable = [m for m in caplog.messages if m.startswith("record: queue") and "unreachable" in m]
        assert len(unreachable) == 1
        assert recorded(records, "record", body)
    finally:
        own.stop()


# ---- loading, settings, stopping -------------------------------------------------------------

def test_local_settings_fill_in_and_env_overrides(tmp_path, monkeypatch, caplog):
    app = tmp_path / "app"
    shutil.copytree(GOOD, app)
    (app / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true", "TOY_A": "from-file", "TOY_B": "from-file",
        "TOY_C": "from-file", "TOY_RECORD_QUEUE": "toy-record", "TOY_FAIL_QUEUE": "toy-fail"}}))
    monkeypatch.setenv("TOY_B", "from-environment")
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    r = Runner(app, env={"TOY_C": "from-arg"})
    try:
        assert set(r.load()) == {"echo", "item", "boom", "record", "always_fail"}
        assert (os.environ["TOY_A"], os.environ["TOY_B"], os.environ["TOY_C"]) == \
            ("from-file", "from-environment", "from-arg")
        assert "127.0.0.1:10001" in runner_queues.connection({"connection": "AzureWebJobsStorage"})
        said = [r.getMessage() for r in caplog.records if "from local settings" in r.getMessage()]
        assert "Skipping 'TOY_B' from local settings as it's already defined in current environment variables." in said
        assert not [line for line in said if "'TOY_A'" in line or "'AzureWebJobsStorage'" in line]
    finally:
        r.stop()  # puts the environment back
    assert "TOY_A" not in os.environ and os.environ["TOY_B"] == "from-environment"


def test_failed_start_leaves_nothing_behind(azurite, records, monkeypatch):
    monkeypatch.delenv("TOY_RECORD_QUEUE", raising=False)
    threads_before = set(threading.enumerate())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = Runner(GOOD, port=taken.getsockname()[1], env=toy_env(azurite, records))
        with pytest.raises(OSError):
            r.start()
    assert "TOY_RECORD_QUEUE" not in os.environ
    assert not [t for t in set(threading.enumerate()) - threads_before if t.name.startswith(("poll-", "runner-"))]


def test_unsupported_binding_is_a_clear_error():  # blob: fine for the worker, not served here
    with pytest.raises(RunnerError, match=r"'arrived'.*'blob'.*'blobTrigger'"):
        Runner(TOYS / "blob").load()


def test_timer_fires_on_its_schedule_and_on_the_admin_call(tmp_path):
    """NCRONTAB with seconds first, as the host reads it; POST /admin/functions/<name> runs it now (202)."""
    import httpx
    ticks = tmp_path / "ticks"
    ticks.touch()
    with Runner(TOYS / "ticker", port=0, env={"TICK_FILE": str(ticks)}) as r:
        assert r.wait_for(lambda: r.stats["tick"]["succeeded"] >= 2, timeout=30)   # "* * * * * *": every second
        before = r.stats["tick"]["invoked"]
        key = {"x-functions-key": r.admin_token}  # the host's master-key header; see hookops/host/admin.py
        assert httpx.post(f"{r.url}/admin/functions/tick", json={"input": ""}, headers=key).status_code == 202
        assert httpx.post(f"{r.url}/admin/functions/nope", json={}, headers=key).status_code == 404
        assert httpx.get(f"{r.url}/admin/functions/tick").status_code == 405
        assert r.wait_for(lambda: r.stats["tick"]["invoked"] > before, timeout=30)
    assert ticks.read_text().count("tick") >= 3


@pytest.mark.parametrize("app, message", [("no_functions", "no functions"),
                                          ("unbound_param", "do not match")])
def test_bad_apps_fail_to_load(app, message):
    with pytest.raises(RunnerError, match=message):
        Runner(TOYS / app, env={"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).load()


def test_host_json_defaults_and_parsing():
    assert hostconfig.load(None).queues == hostconfig.QueuesConfig()
    cfg = hostconfig.load(ROOT / "host.json")
    assert cfg.route_prefix == "api" and cfg.queues.max_dequeue_count == 5
    assert hostconfig.parse_timespan("1.02:03:04.5") == 86400 + 7384.5
    with pytest.raises(ValueError):
        hostconfig.from_dict({"version": "2.0", "extensions": {"queues": {"batchSize": 64}}})


def test_route_templates():
    rx = route_regex("api", "items/{id:int}/{rest?}")
    assert rx.fullmatch("/api/items/7").groupdict() == {"id": "7", "rest": None}
    assert rx.fullmatch("/api/items/7/x")["rest"] == "x"
    assert route_regex("", "files/{*path}").fullmatch("/files/a/b/c")["path"] == "a/b/c"


def test_stop_is_prompt_with_idle_connection_and_long_polling(azurite, tmp_path, records):
    slow = tmp_path / "host.json"
    slow.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {"maxPollingInterval": "00:10:00"}}}))
    r = Runner(GOOD, port=0, host_json=slow, env=toy_env(azurite, records)).start()
    client = httpx.Client()
    assert client.post(f"{r.url}/api/echo", content=b"x").status_code == 200  # leaves a keep-alive connection
    stopper = threading.Thread(target=r.stop)
    stopper.start()
    stopper.join(WAIT)  # a hang guard, not a timing assertion: pollers wake on an Event
    assert not stopper.is_alive(), "stop() did not return"
    with pytest.raises(httpx.TransportError):
        client.post(f"{r.url}/api/echo", content=b"x")
    client.close()


def test_main_serves_and_stops_on_ctrl_c(azurite, host_json, records):
    port = azurite_mod.free_port()
    env = {**os.environ, **toy_env(azurite, records), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hookops.runner", "--app-dir", str(GOOD), "--port", str(port),
                             "--host-json", str(host_json)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # wait for the start-up line, not a fixed time
            if "runner on http://127.0.0.1:" in line:
                break
        else:
            pytest.fail(f"runner exited with {proc.wait()}")
        assert httpx.post(f"http://127.0.0.1:{port}/api/echo?challengeCode=TOPSECRET",
                          content=b"hi").status_code == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "POST /api/echo 200" in err and "TOPSECRET" not in err
