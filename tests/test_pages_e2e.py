"""A 1,000-event delivery (ten pages) over real HTTP, the local runner in a process of its own and real Azurite: the
dispatcher is killed (SIGKILL) part-way through the delivery's pages, a new runner takes over, and every
event's relay post (an external effect) is made once: again only where a post got no answer (the receiver may have
had it), and then under the same `webhook-id`, by which the receiver drops it."""
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter

import httpx
import pytest

from handlers.clients import journal
from handlers.core import settings, signature
from hookops import azurite as az
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.doubles.receivers import RelayReceiver
from tests.support.e2e import queue_count as queued, wait_until
from tests.support.paths import ROOT, SECRET

pytestmark = pytest.mark.slow
EVENTS, PAGE = 1000, 100  # tests/test_pages.py dispatches 5,000 in process; here the runner's speed rules
# argv: app dir, port, host.json, and "dispatch" to run the dispatcher alone, with a short queue lease (the
# killed runner's message comes back in seconds, not 10 minutes), or "all" with the host's (a message
# whose lease ran out while it runs would be run again beside itself, as its own owner).
RUNNER = """
import logging, sys, threading
from pathlib import Path
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
from hookops.runner import Runner

class Only(Runner):
    def load(self):
        functions = super().load()
        if sys.argv[4] == "dispatch":
            for name in list(self.queue_functions):
                if name != "dispatch_delivery":
                    del self.queue_functions[name]
        return functions

lease = {"lease_seconds": 3} if sys.argv[4] == "dispatch" else {}
with Only(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), **lease):
    threading.Event().wait()
"""


def start(port: int, host_json, which: str, logs) -> subprocess.Popen:
    """A runner, its warnings and errors in `logs`/<which>.log."""
    with open(logs / f"{which}.log", "wb") as out:
        return subprocess.Popen([sys.executable, "-c", RUNNER, str(ROOT), str(port), str(host_json), which],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def up(port: int) -> bool:
    try:
        return bool(httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code)  # any answer: up
    except httpx.HTTPError:
        return False


def test_a_dispatcher_killed_between_pages_resumes_and_each_event_is_posted_once(app_env, monkeypatch,
                                                                                 fast_host_json, tmp_path):
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", str(PAGE))
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,relay")
    refs = [ref(f"e2e-page-{i}") for i in range(EVENTS)]
    # Sent now, as a webhook on time is (a late one would also claim each event's identity: 2,000 storage round
    # trips through the runner that paging does not need).
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000")
    body = encode(delivery(refs=refs, subscription="pages", timestamp=now))
    conn = app_env.connection_string
    with RelayReceiver() as relay:
        monkeypatch.setenv("RELAY_URL", relay.url)
        monkeypatch.setenv("RELAY_SECRET", relay.secret)
        port = az.free_port()
        first = start(port, fast_host_json, "dispatch", tmp_path)
        second = None
        try:
            assert wait_until(lambda: up(port), timeout=60)
            resp = httpx.post(f"http://127.0.0.1:{port}/api/preservica/webhook", content=body, timeout=60,
                              headers={"Preservica-Signature": signature.sign(SECRET, body)})
            assert resp.status_code == 200 and resp.json()["events"] == EVENTS
            # Some pages are dispatched (their relay messages wait: no relay runs in this runner), not all.
            per_page = PAGE // settings.get_int("ACTION_BATCH_SIZE")
            assert wait_until(lambda: queued(conn, settings.action_queue("relay")) >= 2 * per_page, timeout=120)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
            assert queued(conn, settings.action_queue("relay")) < EVENTS // settings.get_int("ACTION_BATCH_SIZE")
            second = start(port, fast_host_json, "all", tmp_path)
            done = lambda: sum(  # noqa: E731
                1 for r in journal.default().recent(EVENTS + 10) if r.get("relay_state") == "done")
            assert wait_until(lambda: done() == EVENTS, timeout=600)
        finally:
            for proc in (first, second):
                if proc and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
        posts = [(d.json()["event"]["entityRef"], d.headers["webhook-id"]) for d in relay.deliveries]
    logs = "\n".join(f.read_text(errors="replace") for f in sorted(tmp_path.glob("*.log")))
    no_answer = set(re.findall(r"relay failed for event (\S+) \(attempt", logs))   # runner.py's warning
    twice = [r for r, n in Counter(r for r, _ in posts).items() if n > 1]
    ids = {r: {key for ref, key in posts if ref == r} for r in twice}
    why = f"{twice[:5]}: webhook-ids {[ids[r] for r in twice[:5]]}; the runners said:\n{logs[-3000:]}"
    assert {r for r, _ in posts} == set(refs), why
    assert all(len(ids[r]) == 1 and ids[r] <= no_answer for r in twice), why
    rows = journal.default().recent(EVENTS + 10)
    assert len(rows) == EVENTS and all(r["journal_state"] == "done" for r in rows)
    assert not json.loads(json.dumps(relay.disagreements))
