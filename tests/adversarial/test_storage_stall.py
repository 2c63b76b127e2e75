"""Attack 12, end to end: storage freezes (SIGSTOP) for longer than the storage client's read timeout
while deliveries arrive, and a second copy of one delivery arrives while its actions are in flight.
Every event's external effects (Teams card, relay POST, catalogue write) must happen exactly once.

Timed-out writes that the SDK retried land twice once storage resumes; senders re-send what got 503,
as Preservica would. Real Azurite, the local runner over real HTTP, the real pyPreservica client.
"""
import json
import os
import signal
import threading
from collections import Counter

import httpx
import pytest

from handlers.clients import journal, preservica
from handlers.core import signature
from hookops import azurite as az
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.doubles.preservica import PreservicaDouble
from hookops.doubles.receivers import CatalogueDouble, RelayReceiver, TeamsDouble
from hookops.runner import Runner
from tests.support.e2e import wait_until, webhook
from tests.support.paths import ROOT, SECRET

pytestmark = pytest.mark.slow
ACTIONS = ("journal", "teams", "catalogue", "relay")
SCHEMA = "urn:example:catalogue"


def done_everywhere(refs) -> bool:
    rows = {r["entityRef"]: r for r in journal.default().recent(100)}
    return all(r in rows and all(rows[r].get(f"{a}_state") == "done" for a in ACTIONS) for r in refs)


def test_storage_stall_and_a_second_copy_in_flight_cause_each_effect_once(tmp_path, fast_host_json, monkeypatch,
                                                                         app_env):
    store = az.start_on_free_ports(tmp_path / "azurite")
    monkeypatch.chdir(tmp_path)  # no stray credentials.properties for pyPreservica
    monkeypatch.setenv("AzureWebJobsStorage", store.connection_string)
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "2")
    preservica.forget_client()
    refs = [ref(f"stall-{i}") for i in range(6)]
    bodies = [encode(delivery(refs=[r], subscription="stall")) for r in refs]
    stalled = threading.Event()
    answers: dict[int, list] = {i: [] for i in range(len(bodies))}
    try:
        with PreservicaDouble(username="u", password="p", tenant="T") as pres, TeamsDouble() as teams, \
                CatalogueDouble() as cat, RelayReceiver() as relay:
            for i, r in enumerate(refs):
                pres.add_asset(r, f"Stalled asset {i}", identifiers={"catalogue": f"CAT/{i}"})
                cat.add_record(f"CAT/{i}", f"<record xmlns='{SCHEMA}'><id>{i}</id></record>")
            for name, value in {
                "PRESERVICA_ROUTES": "FULL_TEXT_INDEXED=" + ",".join(ACTIONS), "PRESERVICA_SERVER": pres.server,
                "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p", "PRESERVICA_TENANT": "T",
                "PRESERVICA_PROTOCOL": "http", "TEAMS_WEBHOOK_URL": teams.url, "CATALOGUE_URL_TEMPLATE": cat.url_template,
                "CATALOGUE_SCHEMA": SCHEMA, "RELAY_URL": relay.url, "RELAY_SECRET": relay.secret,
                "NO_PROXY": "127.0.0.1,localhost",
            }.items():
                monkeypatch.setenv(name, value)
            with Runner(ROOT, port=0, host_json=fast_host_json) as runner, \
                    httpx.Client(timeout=60) as client:
                def send(i: int) -> int:
                    resp = client.post(webhook(runner), content=iter([bodies[i]]),
                                       headers={"Preservica-Signature": signature.sign(SECRET, bodies[i])})
                    answers[i].append(resp.status_code)
                    return resp.status_code

                def sender(i: int) -> None:
                    for _ in range(5):          # Preservica re-sends what was not acknowledged
                        if send(i) == 200:
                            return
                        stalled.wait()          # the first 503: storage is frozen; re-send once it thaws

                teams.hold()                    # every card stays in flight until release()
                os.kill(store.proc.pid, signal.SIGSTOP)
                try:
                    threads = [threading.Thread(target=sender, args=(i,)) for i in range(len(bodies))]
                    for t in threads:
                        t.start()
                    # A 503 comes only after every write attempt timed out: the stall outlasted the read timeout.
                    wait_until(lambda: any(503 in a for a in answers.values()), timeout=60)
                finally:
                    os.kill(store.proc.pid, signal.SIGCONT)
                    stalled.set()
                for t in threads:
                    t.join(120)
                assert all(a and a[-1] == 200 for a in answers.values()), answers

                # Every event's Teams post is in flight (claimed, running); Preservica sends a copy again.
                teams.wait_for(len(refs), timeout=60)
                stats = runner.stats["dispatch_delivery"]
                dispatched = stats["succeeded"] + stats["failed"]
                assert send(0) == 200
                # The copy is dispatched while the cards are held (well within the Teams client's timeout:
                # a post that times out after Teams received it is the window the README documents).
                assert runner.wait_for(lambda: stats["succeeded"] + stats["failed"] > dispatched, timeout=120)
                teams.release()
                wait_until(lambda: done_everywhere(refs), timeout=90)
                runner.wait_idle(timeout=60)

            cards = Counter(r for card in teams.cards for r in refs if r in json.dumps(card))
            posts = Counter(d.json()["event"]["entityRef"] for d in relay.deliveries)
            writes = Counter(p.split("/")[4] for m, p in pres.requests
                             if m in ("POST", "PUT") and "/metadata" in p and p.startswith("/api/entity/information"))
            assert cards == Counter(refs), cards
            assert posts == Counter(refs), posts
            assert writes == Counter(refs), writes
            assert not relay.disagreements
    finally:
        os.kill(store.proc.pid, signal.SIGCONT) if store.proc and store.proc.poll() is None else None
        store.stop()
        preservica.forget_client()
