"""One test per attack on the trust boundary (the webhook body and query, Preservica and catalogue data,
secrets), named after the attack. Each failed on the code before the hardening issue.

Storage is real Azurite; the function is called as the host calls it.
"""
import datetime as dt
import json
import tracemalloc

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient

from handlers import dispatch
from handlers.clients import journal
from handlers.core import envelope, settings, signature
from handlers.core.errors import SafeError
from hookops.doubles.deliveries import delivery, encode, ref
from tests.support.jobs import read_job, run_one
from tests.support.paths import SECRET
from tests.support.queues import drain, intake_msg

URL = "http://localhost:7071/api/preservica/webhook"
A, B = ref("a"), ref("b")


def post(body: bytes = b"", params=None, secret: str | None = SECRET) -> func.HttpResponse:
    from handlers import intake
    headers = {"Preservica-Signature": signature.sign(secret, body)} if secret else {}
    return intake.handle(func.HttpRequest("POST", URL, headers=headers, params=params or {}, body=body))


def kept(conn: str) -> dict[str, bytes]:
    """Bodies in the rejected-deliveries container."""
    container = BlobServiceClient.from_connection_string(conn).get_container_client(settings.REJECTED_CONTAINER)
    try:
        return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}
    except Exception:
        return {}


def rejected_and_kept(app_env, body: bytes, why: str) -> None:
    resp = post(body)
    assert resp.status_code == 400, resp.get_body()
    assert why in json.loads(resp.get_body())["error"]
    assert kept(app_env.connection_string) == {f"{envelope.delivery_id(body)}.bin": body}


def accepted_and_dispatched(app_env, body: bytes) -> dict:
    """200 at intake, then the real dispatcher on the very message intake queued."""
    from handlers.clients.storage import default
    resp = post(body)
    assert resp.status_code == 200, resp.get_body()
    q = default().queue(settings.DELIVERY_QUEUE)
    [msg] = list(q.receive_messages(max_messages=32))
    q.delete_message(msg)
    return dispatch.dispatch(msg.content.encode() if isinstance(msg.content, str) else msg.content)


# ---- 1. the challenge as a signing oracle ----------------------------------------------------------

def test_challenge_code_carrying_a_delivery_does_not_sign_it(app_env):
    forged = encode(delivery(refs=["victim"]))
    code = "preservica-webhook-auth" + forged.decode()
    resp = post(params={"challengeCode": code}, secret=None)
    assert resp.status_code == 400 and b"challengeResponse" not in resp.get_body()
    # Even the bare prefix (the answer would sign an empty body) and any case of it are refused.
    for code in ("preservica-webhook-auth", "PRESERVICA-WEBHOOK-AUTH", "preservica-webhook-auth0"):
        assert post(params={"challengeCode": code}, secret=None).status_code == 400


def test_challenge_codes_of_every_plausible_form_are_answered(app_env):
    for code in ("0d1f3a8e-8c2b-4b8e-9a57-1f2e3d4c5b6a", "a" * 256, "YWJj+/==", "abc_DEF-123.~:"):
        resp = post(params={"challengeCode": code}, secret=None)
        assert resp.status_code == 200, code
        assert json.loads(resp.get_body())["challengeResponse"] == signature.challenge_response(SECRET, code)
    for code in ("", "a" * 257, "{}", "with space", "new\nline", "ü"):
        assert post(params={"challengeCode": code}, secret=None).status_code == 400, code


# ---- 2. acknowledged but never processable --------------------------------------------------------

@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01",
                                   "not a time", "2026-13-45T99:99:99"])
def test_timestamp_at_the_edge_of_the_calendar_is_dispatched(app_env, stamp):
    assert accepted_and_dispatched(app_env, encode(delivery(refs=["a"], timestamp=stamp))) == \
        {"events": 1, "messages": 1}
    [row] = journal.default().recent(10)
    assert row["PartitionKey"] == "undated" and row["timestamp"] == stamp


def test_lone_surrogate_in_a_field_is_400_and_kept(app_env):
    body = encode(delivery(refs=["a"])).replace(A.encode(), b"\\ud800", 1)
    rejected_and_kept(app_env, body, "lone surrogate")
    body = encode(delivery(refs=["a"])).replace(b'"TEST"', b'"\\udfff"', 1)  # the tenant
    assert post(body).status_code == 400


def test_deeply_nested_json_is_400_and_kept(app_env):
    doc = delivery(refs=["a"])
    deep = "[" * 100_000 + "]" * 100_000
    body = encode(doc)[:-1] + b', "extra": ' + deep.encode() + b"}"
    rejected_and_kept(app_env, body, "nested deeper")
    doc["events"][0]["identifiers"] = json.loads("[" * 40 + "]" * 40)   # within what json.loads takes
    assert post(encode(doc)).status_code == 400


# ---- 3. unbounded fan-out ---------------------------------------------------------------------------

def test_delivery_of_tiny_events_is_accepted_and_left_to_the_dispatchers_pages(app_env, monkeypatch):
    # Any number of events within MAX_BODY_BYTES is accepted (each still checked); the dispatcher works
    # through them MAX_EVENTS_PER_DELIVERY at a time (tests/test_pages.py), so no one invocation fans out more.
    body = json.dumps({"trigger": "MOVED", "events": [{}] * 190_000}).encode()
    resp = post(body)
    assert resp.status_code == 200 and json.loads(resp.get_body())["events"] == 190_000
    monkeypatch.setenv("MAX_EVENTS_PER_DELIVERY", "2")
    assert post(encode(delivery(refs=["a", "b", "c"]))).status_code == 200
    body = json.dumps({"trigger": "MOVED", "events": [{}] * 10 + [[]]}).encode()
    rejected_and_kept(app_env, body, "events[10]")   # the per-event checks stay, for every event


def test_event_over_the_event_size_limit_is_400_and_kept(app_env):
    doc = delivery(refs=["a"])
    doc["events"][0]["identifiers"] = [{"catalogue": "x" * envelope.MAX_EVENT_BYTES}]
    rejected_and_kept(app_env, encode(doc), "larger than")


def test_forty_thousand_character_ref_is_400_and_kept(app_env):
    doc = delivery(refs=["a"])
    doc["events"][0]["entityRef"] = "x" * 40_000       # over the event size limit as well
    rejected_and_kept(app_env, encode(doc), "events[0]")
    doc["events"][0]["entityRef"] = "x" * 10_000       # within it: the reference rule still refuses it
    assert "entityRef" in json.loads(post(encode(doc)).get_body())["error"]


@pytest.mark.parametrize("name", ["subscriptionId", "tenant", "trigger", "timestamp", "version"])
def test_oversized_delivery_field_is_400(app_env, name):
    doc = delivery(refs=["a"])
    doc[name] = "x" * (envelope.MAX_FIELD_CHARS + 1)
    assert post(encode(doc)).status_code == 400
    doc[name] = {"not": "text"}
    assert post(encode(doc)).status_code == 400


@pytest.mark.parametrize("shape", ["largest events", "most events"])
def test_largest_admitted_delivery_dispatches_in_bounded_memory(app_env, monkeypatch, shape):
    """Property (d): MAX_BODY_BYTES of events (as large as admitted, or as many), all five actions routed."""
    for name, value in {"PRESERVICA_ROUTES": "*=journal,thumbnail,teams,catalogue,relay", "PRESERVICA_SERVER": "127.0.0.1:9", "PRESERVICA_PROTOCOL": "http",
                        "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p", "TEAMS_WEBHOOK_URL": "http://127.0.0.1:9/x",
                        "CATALOGUE_URL_TEMPLATE": "http://127.0.0.1:9/{identifier}", "CATALOGUE_SCHEMA": "urn:x",
                        "RELAY_URL": "http://127.0.0.1:9/r", "RELAY_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}.items():
        monkeypatch.setenv(name, value)
    limit, most = settings.get_int("MAX_BODY_BYTES"), settings.get_int("MAX_EVENTS_PER_DELIVERY")
    per_event = envelope.MAX_EVENT_BYTES - 200 if shape == "largest events" else limit // most - 300
    count = min(most, limit // (per_event + 200))
    # The largest events come late, so the dispatcher also claims each event's identity for the reconciler
    # (two storage calls an event); the most events on time, where those thousand claims would only add minutes
    # of storage round trips (not memory) to the same page.
    late = shape == "largest events"
    stamp = "2026-11-29T10:00:00.000" if late else dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000")
    doc = delivery(refs=[f"big-{i}" for i in range(count)], timestamp=stamp)
    for e in doc["events"]:
        e["identifiers"] = [{"note": "x" * per_event}]
    body = encode(doc)
    assert len(body) <= limit
    msg = intake_msg(doc)
    tracemalloc.start()
    try:
        result = dispatch.dispatch(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Four actions a message per event; Teams one digest (with a journal row of its own).
    batches = -(-count // settings.get_int("ACTION_BATCH_SIZE"))
    assert result["events"] == count + 1 and 4 * batches + 1 <= result["messages"] <= 4 * count + 1
    from handlers.clients.reconcile_state import default as reconcile_state
    seen = reconcile_state().table.query_entities("PartitionKey ge 'seen|' and PartitionKey lt 'seen}'",
                                                  select=["PartitionKey"])
    assert sum(1 for _ in seen) == (count if late else 0)   # each late event's identity claimed, on time none
    bound = 8 * len(body) + 32 * 2**20   # the parsed delivery, its rows and a window of messages
    print(f"dispatch peak {peak / 2**20:.1f} MiB for a {len(body) / 2**20:.1f} MiB delivery of {count} events")
    assert peak < bound, f"dispatch peaked at {peak / 2**20:.0f} MiB for a {len(body) / 2**20:.1f} MiB delivery"


# ---- 4. a Teams digest settles only its own delivery ------------------------------------------------

def test_digest_does_not_settle_another_subscriptions_events(app_env, monkeypatch):
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=teams")
    monkeypatch.setenv("TEAMS_DIGEST_THRESHOLD", "2")
    from hookops.doubles.receivers import TeamsDouble
    with TeamsDouble() as teams:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url)
        stamp = "2026-11-29T10:00:00.000"
        dispatch.dispatch(intake_msg(delivery(refs=["a", "b", "c"], timestamp=stamp, subscription="one")))
        dispatch.dispatch(intake_msg(delivery(refs=["d"], timestamp=stamp, subscription="two")))
        raws = drain(app_env.connection_string, "teams")
        digest = next(r for r in raws if read_job(r).kind == "digest")
        run_one("teams", digest)
        rows = {r["entityRef"]: r for r in journal.default().recent(10)}
        assert rows[ref("d")]["teams_state"] == "queued"   # subscription two's event is still its own card
        assert all(rows[ref(n)]["teams_state"] == "done" for n in "abc")
        [single] = [r for r in raws if r is not digest]
        assert run_one("teams", single).state == "done" and len(teams.cards) == 2


# ---- 5. event keys ----------------------------------------------------------------------------------

def test_unit_separator_in_fields_cannot_make_two_events_one(app_env):
    d = envelope.delivery_from_doc({"subscriptionId": "s", "timestamp": "t", "trigger": "MOVED",
                                    "events": [{"entityType": "IO\x1fX", "entityRef": A, "event": "e"},
                                               {"entityType": "IO", "entityRef": A, "event": "X\x1fe"}]})
    # Joined with \x1f these two were the same key; the second was dropped as a duplicate.
    first, second = d.events
    assert envelope.event_key(d, first) != envelope.event_key(d, second)


# ---- 6. untrusted text reaching people and paths ----------------------------------------------------

@pytest.mark.parametrize("bad", ["..", "x?ref=other&", "../../api/admin", "7fdea7e0-1e72-4fb1-aadb-d7f9ee6ed8c2?x=1",
                                 "a/b/..", "%2e%2e", "7fdea7e0 1e72", "sdb:IO|..", "\x00"])
def test_entity_ref_that_is_not_a_reference_is_400_and_kept(app_env, bad):
    doc = delivery(refs=["a"])
    doc["events"][0]["entityRef"] = bad
    rejected_and_kept(app_env, encode(doc), "entityRef")


def test_entity_ref_forms_preservica_uses_are_accepted(app_env):
    for form in (A, f"sdb:IO|{A}", f"IO|{A}", f"https://eu.preservica.com/api/entity/information-objects/{A}", A.upper()):
        doc = delivery(refs=["a"])
        doc["events"][0]["entityRef"] = form
        assert post(encode(doc)).status_code == 200, form
        assert envelope.entity_ref(doc["events"][0]).lower() == A


def test_markdown_link_in_a_title_is_shown_as_text():
    from markdown_it import MarkdownIt

    from handlers.actions.teams import cards as teams_cards
    evil = "[re-enter your password](https://evil.example) **urgent** <https://evil.example>\n# Heading\n1. step"
    card = teams_cards.indexed_card(evil, evil, A, [(evil, 1)], None)
    md = MarkdownIt("commonmark")
    texts = [b["text"] for b in card["attachments"][0]["content"]["body"] if b["type"] == "TextBlock"]
    facts = [v for b in card["attachments"][0]["content"]["body"] if b["type"] == "FactSet"
             for f in b["facts"] for v in (f["title"], f["value"])]
    for text in texts + facts:
        html = md.render(text)
        assert "<a " not in html and "<strong>" not in html and "<h1>" not in html and "<ol>" not in html, html
        assert "https://evil" not in html  # a bare URL is broken, so Teams does not link it
    assert any("re-enter your password" in md.render(t) for t in texts)
    for card in (teams_cards.alert_card("INGEST_FAILED", "IO", A, evil, evil, None),
                 teams_cards.line_card(evil, evil, A, None),
                 teams_cards.digest_card(evil, 3, {evil: 3}, [evil], 1)):
        rendered = [md.render(v) for v in _strings(card)]
        assert not any("<a " in h or "<strong>" in h for h in rendered)


def _strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("text", "title", "value") and isinstance(v, str):
                yield v
            else:
                yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


# ---- 7. secrets read from Key Vault are normalised like local ones ---------------------------------

def test_vault_secret_pasted_with_a_trailing_newline_still_verifies(keyvault):
    keyvault.set_secret("preservica-webhook-secret", "vault-secret\n")
    body = encode(delivery(refs=["a"]))
    assert post(body, secret="vault-secret").status_code == 200


def test_whitespace_only_vault_secret_counts_as_not_configured(keyvault, monkeypatch):
    from handlers.clients import secrets
    from handlers.pipeline import registry
    keyvault.set_secret("teams-webhook-url", "  \n")
    assert "teams-webhook-url" in registry.missing("teams", secrets.default())


def test_teams_url_with_a_newline_is_a_classified_failure(app_env, monkeypatch):
    from handlers.actions import teams as action_teams
    with pytest.raises(SafeError) as err:
        action_teams.post("https://prod.example/workflows/x?sig=SECRETSIG\nmore", {"type": "message"})
    assert "SECRETSIG" not in str(err.value) and "TEAMS_WEBHOOK_URL" in str(err.value)


# ---- 8. a Key Vault outage does not serialise every request ----------------------------------------

def test_vault_outage_after_the_ttl_is_not_asked_once_per_request(keyvault, monkeypatch):
    import concurrent.futures as cf

    from handlers.clients import secrets
    now = [1000.0]
    source = secrets.SecretSource(clock=lambda: now[0])
    assert source.webhook_secrets() == ["vault-secret"]
    keyvault.set_available(False)
    keyvault.requests.clear()
    now[0] += source.ttl + 1
    with cf.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: source.webhook_secrets(), range(8)))
    assert results == [["vault-secret"]] * 8
    reads = len(keyvault.requests)
    with cf.ThreadPoolExecutor(8) as pool:          # within the back-off: the vault is not asked at all
        list(pool.map(lambda _: source.webhook_secrets(), range(8)))
    assert len(keyvault.requests) == reads
    # One read attempt (with the SDK's own retries) for the current secret and one for `-previous`,
    # not one per request: 8 requests used to make 16 reads and wait on each other.
    assert reads <= 2 * 3, keyvault.requests


def test_unreadable_previous_secret_does_not_refuse_the_current_one(keyvault):
    from handlers.clients import secrets
    source = secrets.SecretSource()
    assert source.get("preservica-webhook-secret", "PRESERVICA_WEBHOOK_SECRET") == "vault-secret"
    keyvault.set_available(False)                   # `-previous` was never read, so nothing is cached for it
    assert source.webhook_secrets() == ["vault-secret"]


# ---- 10. storage connections are kept, not thrown away ---------------------------------------------

def test_sixteen_concurrent_senders_do_not_overflow_the_connection_pool(app_env, caplog):
    from handlers.clients.storage import Storage
    caplog.set_level("WARNING", logger="urllib3.connectionpool")
    store = Storage()
    assert store.send_many(("burst", f"m{i}") for i in range(200)) == 200
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


# ---- 11. acknowledged work does not expire --------------------------------------------------------

def test_queued_deliveries_and_action_messages_never_expire(app_env):
    from handlers.clients.storage import default
    assert post(encode(delivery(refs=["a"]))).status_code == 200
    [m] = default().queue(settings.DELIVERY_QUEUE).peek_messages()
    assert m.expires_on.year == 9999
    dispatch.dispatch(intake_msg(delivery(refs=["b"])))
    [a] = default().queue(settings.action_queue("journal")).peek_messages()
    assert a.expires_on.year == 9999


@pytest.mark.parametrize("url", ["https://h.example/x?sig=SECRETSIG\nmore", "https://h.example:99999/x?sig=SECRETSIG",
                                 "not a url ?sig=SECRETSIG"])
def test_a_malformed_receiver_url_is_classified_without_quoting_it(url):
    """Teams, the catalogue and the relay all send through clients.http.send: a URL pasted badly
    (it may be a credential) fails as a SafeError that names the setting, never the URL."""
    from handlers.clients import http
    for call in (lambda: http.send("POST", url, peer="the relay receiver", where="RELAY_URL"),
                 lambda: http.get_bounded(url, 10, peer="the relay receiver", where="RELAY_URL")):   # the catalogue's
        with pytest.raises(SafeError) as err:
            call()
        message = str(err.value)
        assert "SECRETSIG" not in message and ("RELAY_URL" in message or "could not be reached" in message)
