"""Attacks on the local runner's HTTP front end (what `make run` serves): the limits a real front end
(Kestrel, in front of the Functions host) has, against a toy app and a real Azurite.

Every wait here is for a condition (an answer, a closed connection, a runner counter), bounded by WAIT
as a hang guard; the slow clients pace their bytes by waiting for the server's answer."""
from __future__ import annotations

import datetime as dt
import socket
import time
import uuid

import httpx
import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from hookops.runner import Runner
from tests.support.paths import TOYS
from tests.support.toys import GOOD, WAIT, toy_env


@pytest.fixture(scope="module")
def runner(azurite, host_json, tmp_path_factory):
    env = toy_env(azurite, tmp_path_factory.mktemp("records"))
    with Runner(GOOD, port=0, host_json=host_json, env=env) as r:
        r.toy_env = env
        yield r


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def answer(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (WAIT at most between bytes)."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def trickle_until_closed(s: socket.socket, byte: bytes, pace: float = 0.05) -> bytes:
    """Send one byte, then another each time `pace` s pass without an answer, until the server
    answers and closes. Fails if it still listens after WAIT s."""
    s.settimeout(pace)
    data, deadline = b"", time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            try:
                s.sendall(byte)
            except (BrokenPipeError, ConnectionResetError):
                return data
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    pytest.fail(f"the server still holds the connection after {WAIT} s")


def request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


# ---- body framing ---------------------------------------------------------------------------------

def test_negative_content_length(runner):
    """`Content-Length: -1` made the runner read to EOF: no size limit, and a thread held until the
    client closes. It is a 400 at once, without waiting for more bytes."""
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nContent-Length: -1\n", b"abc"))
        assert answer(s).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("value", ["+3", "0x3", "3 3", "3, 3", "1_0", "3;"])
def test_non_decimal_content_length(runner, value):
    """Python's int() accepts what HTTP does not (a sign, underscores, whitespace inside, ...):
    a front end and the runner could then disagree on where the body ends (request smuggling)."""
    with connect(runner.port) as s:
        s.sendall(request(f"POST /api/echo HTTP/1.1\nHost: x\nConnection: close\nContent-Length: {value}\n",
                          b"abc"))
        assert answer(s).startswith(b"HTTP/1.1 400")


def test_conflicting_content_lengths(runner):
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nContent-Length: 3\nContent-Length: 10\n", b"abc"))
        assert answer(s).startswith(b"HTTP/1.1 400")


def test_negative_chunk_size(runner):
    """A chunk size of -1 read the rest of the stream in one go, past MAX_BODY."""
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n", b"-1\r\nabc"))
        assert answer(s).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("size", [b"+3", b"0x3", b"1_0", b"-0"])
def test_non_hex_chunk_size(runner, size):
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n",
                          size + b"\r\nabc\r\n0\r\n\r\n"))
        assert answer(s).startswith(b"HTTP/1.1 400")


def test_chunk_framing_overhead_counts_against_max_body(runner, monkeypatch):
    """Chunk extensions and trailers are bytes the runner reads too: they are bounded like the body."""
    from hookops.host import http as runner_http
    monkeypatch.setattr(runner_http, "MAX_BODY", 4096)
    ext = b";x=" + b"y" * 1000
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n",
                          b"".join(b"1" + ext + b"\r\na\r\n" for _ in range(8)) + b"0\r\n\r\n"))
        assert answer(s).startswith(b"HTTP/1.1 413")


# ---- slow clients ---------------------------------------------------------------------------------

def test_slowloris_headers(runner, monkeypatch):
    """Headers trickled a byte at a time never finished, and each such client held a thread for ever.
    The request line and headers must now arrive within header_timeout."""
    monkeypatch.setattr(runner, "header_timeout", 0.5)
    with connect(runner.port) as s:
        s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        trickle_until_closed(s, b"a")


def test_silent_connection(runner, monkeypatch):
    """A connection that never sends a byte was kept open for ever."""
    monkeypatch.setattr(runner, "header_timeout", 0.5)
    with connect(runner.port) as s:
        assert answer(s) == b""  # closed by the server, nothing said


def test_idle_keep_alive_connection(runner, monkeypatch):
    monkeypatch.setattr(runner, "header_timeout", 0.5)
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nContent-Length: 2\n", b"hi"))
        data = answer(s)  # the answer, then the server closes the idle connection
    assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1") == 1


def test_slow_post_body(runner, monkeypatch):
    """A body trickled slower than min_body_rate (after body_grace) is cut off with a 408."""
    monkeypatch.setattr(runner, "body_grace", 0.2)
    monkeypatch.setattr(runner, "min_body_rate", 1000)
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nContent-Length: 100000\n"))
        assert trickle_until_closed(s, b"a").startswith(b"HTTP/1.1 408")


def test_slow_chunked_body(runner, monkeypatch):
    monkeypatch.setattr(runner, "body_grace", 0.2)
    monkeypatch.setattr(runner, "min_body_rate", 1000)
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n", b"186a0\r\n"))
        assert trickle_until_closed(s, b"a").startswith(b"HTTP/1.1 408")


def test_body_sent_at_once_is_served_under_a_high_min_rate(runner, monkeypatch):
    """Not an attack: the rate limit must not cut off a sender that is merely normal."""
    monkeypatch.setattr(runner, "body_grace", WAIT)
    monkeypatch.setattr(runner, "min_body_rate", 1000)
    with connect(runner.port) as s:
        s.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nConnection: close\nContent-Length: 5000\n"))
        s.sendall(b"a" * 5000)
        data = answer(s)
    assert data.startswith(b"HTTP/1.1 200") and b'"length": 5000' in data


# ---- connection flood -----------------------------------------------------------------------------

def test_connection_flood(azurite, host_json, tmp_path):
    """Each connection was a new thread, without bound. Over max_connections, new connections now wait
    in the listen backlog (not accepted, no thread) until one closes, and are then served."""
    r = Runner(GOOD, port=0, host_json=host_json, env=toy_env(azurite, tmp_path))
    r.max_connections = 2
    with r:
        held = [connect(r.port) for _ in range(2)]
        assert r.wait_for(lambda: r.http_connections == 2, WAIT)
        with connect(r.port) as third:
            third.sendall(request("POST /api/echo HTTP/1.1\nHost: x\nConnection: close\nContent-Length: 2\n",
                                  b"hi"))
            assert r.wait_for(lambda: r.http_waiting, WAIT)  # the accept loop waits for a free slot
            assert r.http_connections == 2
            third.setblocking(False)
            with pytest.raises(BlockingIOError):  # not accepted, so nothing could have answered it
                third.recv(1)
            third.setblocking(True)
            held.pop().close()
            assert answer(third).startswith(b"HTTP/1.1 200")
        for s in held:
            s.close()
        assert r.wait_for(lambda: r.http_connections == 0, WAIT)


def test_stop_while_connections_wait_for_a_slot(azurite, host_json, tmp_path):
    r = Runner(GOOD, port=0, host_json=host_json, env=toy_env(azurite, tmp_path))
    r.max_connections = 1
    r.start()
    try:
        held, waiting = connect(r.port), connect(r.port)
        assert r.wait_for(lambda: r.http_waiting, WAIT)
    finally:
        r.stop()  # returns although the accept loop was waiting (a hang here fails on pytest's timeout)
    held.close()
    waiting.close()


# ---- poison copies --------------------------------------------------------------------------------

def test_poison_copy_gets_the_hosts_seven_day_ttl(runner, azurite):
    """The host copies a poison message with the service's default time-to-live (7 days from the
    move), whatever the original's was; see QueuePoller._poison (hookops/host/queues.py). A message
    sent never to expire must not look immortal in the poison queue locally when it expires on Azure."""
    text = f"poison ttl {uuid.uuid4()}"
    fail_queue = runner.toy_env["TOY_FAIL_QUEUE"]
    before = runner.stats["always_fail"]["poisoned"]
    QueueClient.from_connection_string(azurite.connection_string, fail_queue,
                                       message_encode_policy=TextBase64EncodePolicy()
                                       ).send_message(text, time_to_live=-1)
    assert runner.wait_for(lambda: runner.stats["always_fail"]["poisoned"] > before, WAIT)
    poison = QueueClient.from_connection_string(azurite.connection_string, f"{fail_queue}-poison")
    [copy] = [m for m in poison.peek_messages(max_messages=32)
              if m.content == TextBase64EncodePolicy().encode(text)]
    assert copy.expires_on - copy.inserted_on == dt.timedelta(days=7)


# ---- the admin call: POST /admin/functions/<name> (hookops/host/admin.py) --------------------------

ADMIN_KEY = "local-admin-key-for-the-test"


@pytest.fixture(scope="module")
def ticker(tmp_path_factory):
    ticks = tmp_path_factory.mktemp("ticks") / "ticks"
    ticks.touch()
    with Runner(TOYS / "ticker", port=0, env={"TICK_FILE": str(ticks)}, admin_token=ADMIN_KEY) as r:
        yield r


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},                                        # a form on any web page
    {"Origin": "null"},                                                         # a sandboxed frame or a file
    {"Origin": "https://evil.example", "x-functions-key": ADMIN_KEY},          # even with the key
    {"Sec-Fetch-Site": "cross-site", "x-functions-key": ADMIN_KEY},            # no Origin, but the browser says
    {"Host": "evil.example", "x-functions-key": ADMIN_KEY},                    # DNS rebinding: its own name
])
def test_cross_origin_post_starts_a_timer(ticker, headers):
    """Any web page open in the developer's browser could POST here and start a reconcile run."""
    resp = httpx.post(f"{ticker.url}/admin/functions/tick", headers=headers, timeout=WAIT)
    assert resp.status_code == 403


@pytest.mark.parametrize("headers", [{}, {"x-functions-key": "wrong"}, {"x-functions-key": "\u00e9".encode()},
                                     {"Origin": "http://127.0.0.1:1", "x-functions-key": "wrong"}])
def test_admin_call_without_the_key(ticker, headers):
    resp = httpx.post(f"{ticker.url}/admin/functions/tick", headers=headers, timeout=WAIT)
    assert resp.status_code in (401, 403)


def test_admin_call_with_the_key_from_this_machine_runs_the_timer(ticker):
    for extra in ({}, {"Origin": ticker.url}, {"Sec-Fetch-Site": "same-origin"}):   # curl; the runner's own page
        resp = httpx.post(f"{ticker.url}/admin/functions/tick", headers={"x-functions-key": ADMIN_KEY, **extra},
                          timeout=WAIT)
        assert resp.status_code == 202
