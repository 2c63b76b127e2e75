"""Cost per event: Preservica is asked once per event for what the routed actions read (and once more to replace
a metadata fragment: its content, compared with what the app wrote), events move
in batches, a failed event is retried alone, and the Preservica request rate is bounded.

The real pyPreservica client against the Preservica double, real Azurite, the real runner.
"""
import threading
from collections import Counter

import pytest

from handlers import dispatch
from handlers.clients import journal, preservica, ratelimit
from handlers.core import envelope, messages
from handlers.core.errors import SafeError
from handlers.pipeline import runner
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.doubles.receivers import CatalogueDouble, RelayReceiver, TeamsDouble
from tests.support.queues import drain

SCHEMA = "urn:example:catalogue"
ALL = "journal,thumbnail,teams,catalogue,relay"


@pytest.fixture
def five(env, pres, monkeypatch):
    """Every action routed and configured, each receiver a double."""
    with TeamsDouble() as teams, CatalogueDouble() as cat, RelayReceiver() as relay:
        for name, value in {"PRESERVICA_ROUTES": f"FULL_TEXT_INDEXED={ALL}", "TEAMS_WEBHOOK_URL": teams.url,
                            "TEAMS_DIGEST_THRESHOLD": "1000", "CATALOGUE_URL_TEMPLATE": cat.url_template,
                            "CATALOGUE_SCHEMA": SCHEMA, "RELAY_URL": relay.url, "RELAY_SECRET": relay.secret}.items():
            monkeypatch.setenv(name, value)
        yield teams, cat, relay


def add_assets(pres, cat, names, *, in_payload: bool):
    refs = [ref(n) for n in names]
    for i, r in enumerate(refs):
        from hookops.doubles.preservica import make_png
        pres.add_asset(r, f"Asset {i}", thumbnail=make_png(), identifiers={"catalogue": f"C/{i}"})
        cat.add_record(f"C/{i}", f"<record xmlns='{SCHEMA}'><id>{i}</id></record>")
    doc = delivery(refs=names)
    if in_payload:  # what a subscription made with includeIdentifiers=true delivers
        for i, e in enumerate(doc["events"]):
            e["identifiers"] = [{"catalogue": f"C/{i}"}]
    return refs, doc


def run_everything(conn: str) -> int:
    """Every action message, as the queue functions would run them; returns how many there were."""
    count = 0
    for action in ALL.split(","):
        for raw in drain(conn, action):
            runner.run(action, raw, message_id=f"m{count}")
            count += 1
    return count


def dispatched(doc) -> dict:
    body = encode(doc)
    return dispatch.dispatch(messages.intake_message(envelope.delivery_id(body), "2026-11-29T10:00:01Z",
                                                     body.decode()).encode())


@pytest.mark.parametrize("in_payload", [True, False], ids=["identifiers in the delivery", "identifiers asked for"])
def test_each_asset_is_read_once_per_event_with_all_five_actions(five, pres, app_env, in_payload):
    teams, cat, relay = five
    refs, doc = add_assets(pres, cat, [f"cost-{i}" for i in range(10)], in_payload=in_payload)
    pres.received.clear()
    assert dispatched(doc)["messages"] == 5                      # one batch per action for 10 events
    assert run_everything(app_env.connection_string) == 5
    reads = Counter(p.split("/")[4] for m, p in pres.requests
                    if m == "GET" and p.startswith("/api/entity/information-objects/") and p.count("/") == 4)
    # One asset read per event for all five actions: the catalogue's first fragment is added on the snapshot,
    # the app's record saying it never wrote one there (clients.fragments).
    assert reads == Counter(refs)
    assert not [p for m, p in pres.requests if m == "GET" and "/metadata/" in p]   # adding reads no fragment
    ids = sum(1 for m, p in pres.requests if p.endswith("/identifiers"))
    assert ids == (0 if in_payload else len(refs))
    per_process = ("/api/accesstoken", "/api/entity/versiondetails", "/api/user/details")  # login, once
    per_event = sum(1 for m, p in pres.requests if not p.startswith(per_process)) / len(refs)
    assert per_event <= (3 if in_payload else 4), Counter((m, p.split("?")[0].rsplit("/", 1)[0]) for m, p in pres.requests)
    rows = journal.default().recent(100)
    assert all(r[f"{a}_state"] == "done" for r in rows for a in ALL.split(","))
    assert len(teams.cards) == 10 and len(relay.deliveries) == 10
    assert {d.json()["asset"]["title"] for d in relay.deliveries} == {f"Asset {i}" for i in range(10)}
    assert all(len(pres.metadata(r)) == 1 for r in refs)
    def fragment_requests(method):
        return Counter(p.split("/")[4] for m, p in pres.requests if m == method and "/metadata/" in p)

    def later(timestamp):
        pres.received.clear()
        dispatched(dict(doc, timestamp=timestamp))
        run_everything(app_env.connection_string)
        assert Counter(p.split("/")[4] for m, p in pres.requests if m == "GET"
                       and p.startswith("/api/entity/information-objects/") and p.count("/") == 4) == Counter(refs)
    later("2026-11-29T11:00:00.000")   # the same records: what the app last wrote, so the fragment is neither read
    assert fragment_requests("GET") == fragment_requests("PUT") == Counter()   # nor sent
    for i in range(len(refs)):   # records changed since: the snapshot lists the fragment, read once and replaced
        cat.add_record(f"C/{i}", f"<record xmlns='{SCHEMA}'><id>{i}</id><title>revised</title></record>")
    later("2026-11-29T12:00:00.000")
    assert fragment_requests("GET") == fragment_requests("PUT") == Counter(refs)
    assert all(len(pres.metadata(r)) == 1 and "revised" in pres.metadata(r)[0][1] for r in refs)


def test_a_failed_event_in_a_batch_is_retried_alone(env, pres, app_env, monkeypatch):
    names = ["b-0", "b-1", "b-2"]
    with CatalogueDouble() as cat:
        monkeypatch.setenv("PRESERVICA_ROUTES", "*=catalogue")
        monkeypatch.setenv("CATALOGUE_URL_TEMPLATE", cat.url_template)
        monkeypatch.setenv("CATALOGUE_SCHEMA", SCHEMA)
        refs, doc = add_assets(pres, cat, names, in_payload=True)
        dispatched(doc)
        [raw] = drain(app_env.connection_string, "catalogue")
        pres.fail_next(1, 500, path_prefix=f"/api/entity/information-objects/{refs[1]}/metadata")
        with pytest.raises(SafeError, match="HTTP 500"):
            runner.run("catalogue", raw, message_id="m1")
        states = {r["entityRef"]: r["catalogue_state"] for r in journal.default().recent(10)}
        assert states == {refs[0]: "done", refs[1]: "failed", refs[2]: "done"}

        def writes():
            return Counter(p.split("/")[4] for m, p in pres.requests if m == "POST" and p.endswith("/metadata"))
        before = writes()
        outcomes = runner.run("catalogue", raw, attempt=2, message_id="m1")   # the host's retry of the message
        assert writes() - before == Counter({refs[1]: 1})             # only the failed event was performed again
        assert [o is None for o in outcomes] == [True, False, True] and outcomes[1].state == "done"
        assert all(len(pres.metadata(r)) == 1 for r in refs)


def test_token_bucket_holds_the_rate_for_many_threads():
    now, slept = [0.0], []
    lock = threading.Lock()

    def sleep(seconds):
        with lock:
            slept.append(seconds)
    bucket = ratelimit.TokenBucket(5, clock=lambda: now[0], sleep=sleep)
    threads = [threading.Thread(target=lambda: [bucket.take() for _ in range(10)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 80 requests at 5/s, all at one instant: the first goes at once, each next one 1/5 s later, so no
    # one-second window holds more than 5 + 1 and the last waits 79 / 5 s.
    assert max(slept) == pytest.approx(79 / 5)
    assert sorted(slept) == pytest.approx([i / 5 for i in range(1, 80)])


def test_every_preservica_request_takes_a_token(five, pres, app_env, monkeypatch):
    taken = []

    class Counting(ratelimit.TokenBucket):
        def take(self):
            taken.append(1)
            return 0.0
    monkeypatch.setattr(preservica._bucket, "_build", lambda: Counting(1))
    preservica._bucket.reset()
    preservica.forget_client()
    teams, cat, relay = five
    refs, doc = add_assets(pres, cat, ["rl-0", "rl-1", "rl-2"], in_payload=False)
    pres.received.clear()
    dispatched(doc)
    run_everything(app_env.connection_string)
    assert len(taken) == len(pres.requests) > 0                   # login and version included


@pytest.mark.parametrize("identifiers, expected", [
    ([{"catalogue": "C/1"}, {"isbn": "978"}], [["catalogue", "C/1"], ["isbn", "978"]]),
    ([{"type": "catalogue", "value": "C/1"}], [["catalogue", "C/1"]]),
    ([], None), (None, None),
    ([{"identifierType": "catalogue", "identifierValue": "C/1"}], None),   # another shape: ask Preservica
    (["C/1"], None), ([{"catalogue": {"nested": 1}}], None),
])
def test_identifiers_in_a_delivery_are_read_only_in_a_known_shape(identifiers, expected):
    from handlers.clients.snapshot import payload_identifiers
    assert payload_identifiers({"identifiers": identifiers}) == expected


def test_a_careless_preservica_record_is_carried_whole_or_not_at_all(env, pres, app_env, monkeypatch):
    """Preservica's data is not ours to cut: an asset with 30 fragments (the catalogue's last), 30
    identifiers (the catalogue one last) and a 60 KB title and description still gets its catalogue
    fragment replaced, not a second one added, and every message fits a queue message."""
    with CatalogueDouble() as cat:
        monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,catalogue,teams")
        monkeypatch.setenv("CATALOGUE_URL_TEMPLATE", cat.url_template)
        monkeypatch.setenv("CATALOGUE_SCHEMA", SCHEMA)
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", "http://127.0.0.1:9/never-posted")
        monkeypatch.setenv("TEAMS_DIGEST_THRESHOLD", "1")
        big = ref("careless")
        ids = {f"other-{i:02d}": f"V{i}" for i in range(29)} | {"zz-catalogue": "C/9"}
        monkeypatch.setenv("CATALOGUE_IDENTIFIER_TYPE", "zz-catalogue")
        pres.add_asset(big, "T" * 30_000, "D" * 30_000, identifiers=ids)
        for i in range(29):
            pres.add_metadata(big, f"urn:other:{i}", f"<r xmlns='urn:other:{i}'/>")
        from handlers.clients import fragments
        from handlers.pipeline.contract import Context
        ctx = Context()   # the app's own earlier record (recorded), which it may replace
        fragments.write(ctx.storage.blob_service(), ctx.secrets, big, SCHEMA,
                        f"<record xmlns='{SCHEMA}'><id>old</id></record>")
        cat.add_record("C/9", f"<record xmlns='{SCHEMA}'><id>new</id></record>")
        dispatched(delivery(refs=["careless", "plain"]))               # two events: the Teams digest samples both
        for action in ("catalogue", "teams"):
            for raw in drain(app_env.connection_string, action):
                assert messages.fits_queue(raw.decode() if isinstance(raw, bytes) else raw)
                if action == "catalogue":
                    runner.run("catalogue", raw, message_id="m")
        ours = [xml for schema, xml in pres.metadata(big) if schema == SCHEMA]
        assert len(ours) == 1 and "new" in ours[0]
