"""The four asset actions, run through the real runner against Azurite, the real pyPreservica and
httpx clients, and the HTTP doubles: success, idempotent retry, each classified error, the journal."""
from __future__ import annotations

import html
import json
import logging
import re
import socket
import time
import types

import pytest
from azure.storage.blob import BlobServiceClient

from handlers.clients import journal, preservica
from handlers.core import settings
from handlers.core.errors import SafeError
from handlers.pipeline.contract import Context
from hookops.doubles.deliveries import ref
from hookops.doubles.preservica import make_png
from hookops.doubles.receivers import CatalogueDouble, TeamsDouble
from tests.support.actions import ASSET, FOLDER, JPEG, OTHER, PASSWORD, PNG, RECORD, SCHEMA, TENANT, USER
from tests.support.coldstart import cold_start_modules
from tests.support.jobs import read_job, row, run_one


def blobs(conn: str, container: str = "thumbnails") -> dict:
    from azure.core.exceptions import ResourceNotFoundError
    client = BlobServiceClient.from_connection_string(conn).get_container_client(container)
    try:
        return {b.name: b for b in client.list_blobs(include=["metadata"])}
    except ResourceNotFoundError:
        return {}


def all_log_text(caplog) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- cold start ------------------------------------------------------------------------------

def test_importing_function_app_loads_no_action_library():
    loaded = cold_start_modules()
    assert sorted(m for m in ('pyPreservica', 'httpx', 'standardwebhooks', 'requests', 'handlers.clients.preservica',
                              'azure.ai.documentintelligence', 'openai', 'handlers.clients.docintel',
                              'handlers.clients.aoai') if m in loaded) == []


# ---- thumbnail -------------------------------------------------------------------------------

def test_thumbnail_stored_with_content_type_and_metadata(env, pres, jobs):
    pres.add_asset(OTHER, "Plain title", thumbnail=JPEG)
    first, second = jobs("thumbnail", refs=[ASSET, OTHER])
    assert run_one("thumbnail", first).state == journal.DONE
    assert run_one("thumbnail", second).state == journal.DONE
    stored = blobs(env.connection_string)
    assert set(stored) == {f"{ASSET}.png", f"{OTHER}.jpg"}
    png = stored[f"{ASSET}.png"]
    assert png.content_settings.content_type == "image/png"
    assert png.metadata == {"title": "Caf%C3%A9 on the harbour", "ref": ASSET}   # ASCII-safe, reversible
    assert stored[f"{OTHER}.jpg"].content_settings.content_type == "image/jpeg"
    data = BlobServiceClient.from_connection_string(env.connection_string).get_blob_client(
        "thumbnails", f"{ASSET}.png").download_blob().readall()
    assert data == PNG
    assert ("GET", f"/api/content/thumbnail?id=sdb:IO|{ASSET}&size=large") in pres.requests
    r = row(first)
    assert r["thumbnail_state"] == "done" and r["thumbnail_blob"] == f"thumbnails/{ASSET}.png"
    assert r["thumbnail_bytes"] == len(PNG) and r["thumbnail_attempts"] == 1


def test_thumbnail_retry_overwrites_and_finished_job_is_not_redone(env, pres, monkeypatch, jobs):
    monkeypatch.setenv("THUMBNAIL_SIZE", "small")
    monkeypatch.setenv("THUMBNAIL_CONTAINER", "thumbs")
    [raw] = jobs("thumbnail")
    job = read_job(raw)
    from handlers.actions import thumbnail as action_thumbnail
    action_thumbnail.perform(job, Context())               # a first attempt whose journal write was lost
    newer = make_png(rgb=(1, 2, 3))
    pres.add_asset(ASSET, "Café on the harbour", thumbnail=newer)
    assert run_one("thumbnail", raw, attempt=2).state == journal.DONE
    stored = blobs(env.connection_string, "thumbs")
    assert list(stored) == [f"{ASSET}.png"]                # overwritten, not a second blob
    assert BlobServiceClient.from_connection_string(env.connection_string).get_blob_client(
        "thumbs", f"{ASSET}.png").download_blob().readall() == newer
    requests_before = len(pres.requests)
    assert run_one("thumbnail", raw, attempt=3) is None     # a duplicate message: nothing done
    assert len(pres.requests) == requests_before
    assert ("GET", f"/api/content/thumbnail?id=sdb:IO|{ASSET}&size=small") in pres.requests


def test_thumbnail_skips_what_it_cannot_keep(env, pres, jobs):
    pres.add_asset(OTHER, "No thumbnail")
    gone, no_thumb = jobs("thumbnail", refs=["deleted-since", OTHER])
    assert (run_one("thumbnail", gone).reason, row(gone)["thumbnail_state"]) == ("not found", "skipped")
    assert run_one("thumbnail", no_thumb).reason == "no thumbnail"
    assert row(no_thumb)["thumbnail_state"] == "skipped"
    [folder] = jobs("thumbnail", refs=[FOLDER], entity_type="SO")
    assert run_one("thumbnail", folder).reason == "not an asset"
    assert blobs(env.connection_string) == {}


def test_a_thumbnail_over_the_bound_is_skipped_and_nothing_kept(env, pres, monkeypatch, jobs):
    """Read into memory now, not written to a file by pyPreservica: bounded. A retry would get the same image."""
    from handlers.actions import thumbnail as action_thumbnail
    monkeypatch.setattr(action_thumbnail, "MAX_BYTES", len(PNG) - 1)
    [raw] = jobs("thumbnail")
    outcome = run_one("thumbnail", raw)
    assert (outcome.state, outcome.reason) == ("skipped", f"thumbnail too large (more than {len(PNG) - 1} bytes arrived)")
    assert blobs(env.connection_string) == {}


def test_preservica_5xx_raises_journals_failed_and_a_retry_succeeds(env, pres, jobs):
    [raw] = jobs("thumbnail")
    pres.fail_next(1, status=500)
    with pytest.raises(SafeError, match="HTTP 500"):
        run_one("thumbnail", raw, attempt=1)
    r = row(raw)
    assert r["thumbnail_state"] == "failed" and r["thumbnail_attempts"] == 1
    assert r["thumbnail_reason"] == f"PreservicaError: Preservica answered HTTP 500 to GET {pres.base_url}/api/content/thumbnail"
    assert run_one("thumbnail", raw, attempt=2).state == journal.DONE


def test_preservica_retry_after_is_capped(env, pres, monkeypatch, jobs):
    """urllib3 would sleep a 503's Retry-After (up to 6 h) inside the function; the client caps it."""
    import urllib3.util.retry as retry_mod
    slept = []
    monkeypatch.setattr(retry_mod, "time", types.SimpleNamespace(sleep=slept.append, time=time.time, monotonic=time.monotonic))
    [raw] = jobs("thumbnail")
    pres.fail_next(1, status=503, headers={"Retry-After": "3600"})
    assert run_one("thumbnail", raw).state == journal.DONE
    assert slept == [preservica.RETRY_AFTER_MAX]


def test_every_request_preservica_sees_takes_a_token_retries_included(env, pres, monkeypatch, jobs):
    """The budget holds for urllib3's own re-sends too: they happen inside the adapter, below the bucket's
    Session.send; before, two 503s answered and retried cost one token for three requests."""
    import urllib3.util.retry as retry_mod
    monkeypatch.setattr(retry_mod, "time", types.SimpleNamespace(sleep=lambda s: None, time=time.time,
                                                                 monotonic=time.monotonic))
    [raw] = jobs("thumbnail")
    taken = []
    monkeypatch.setattr(preservica._bucket.get(), "take", lambda: taken.append(1))
    before = len(pres.requests)
    pres.fail_next(2, status=503, headers={"Retry-After": "0"})
    assert run_one("thumbnail", raw).state == journal.DONE
    seen = len(pres.requests) - before
    assert seen >= 3 and len(taken) == seen, (seen, len(taken))


def test_preservica_unreachable_raises_and_journals_failed(env, monkeypatch, jobs):
    [raw] = jobs("thumbnail")
    monkeypatch.setenv("PRESERVICA_SERVER", f"127.0.0.1:{closed_port()}")
    with pytest.raises(SafeError, match="could not be reached: ConnectionError"):
        run_one("thumbnail", raw)
    assert row(raw)["thumbnail_state"] == "failed"


def test_rejected_credentials_name_the_settings_and_never_the_password(env, pres, monkeypatch, caplog, jobs):
    caplog.set_level(logging.DEBUG)
    wrong = "Tr0ub4dor&3-wrong"
    monkeypatch.setenv("PRESERVICA_PASSWORD", wrong)
    [raw] = jobs("thumbnail")
    with pytest.raises(preservica.CredentialsRejected):
        run_one("thumbnail", raw)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("handlers")]
    assert any("PRESERVICA_USERNAME" in m and "PRESERVICA_PASSWORD" in m and "PRESERVICA_TENANT" in m for m in errors)
    r = row(raw)
    assert r["thumbnail_state"] == "failed" and "PRESERVICA_PASSWORD" in r["thumbnail_reason"]
    # Every queued message failing would try to log in again: pause instead of locking the account.
    logins = pres.login_count
    with pytest.raises(preservica.CredentialsRejected):
        run_one("thumbnail", raw, attempt=2)
    assert pres.login_count == logins
    assert wrong not in all_log_text(caplog) and wrong not in json.dumps(row(raw), default=str)


def test_one_client_per_process_reused_across_invocations(env, pres, jobs):
    a, b = jobs("thumbnail", refs=[ASSET, "other-ref"])
    run_one("thumbnail", a)
    run_one("thumbnail", b)
    assert pres.login_count == 1


def test_the_process_signs_in_with_two_requests_and_the_webhook_client_still_reads_roles(env, pres, jobs):
    # The roles request (/api/user/details) is skipped for the actions' EntityAPI, which never checks a role;
    # the operator's WebHooksAPI checks one before subscribing (pyPreservica webHooksAPI.py), so it still asks.
    [raw] = jobs("thumbnail")
    run_one("thumbnail", raw)
    sign_in = [(m, p.split("?")[0]) for m, p in pres.requests if p.startswith(("/api/accesstoken", "/api/user",
                                                                                "/api/entity/versiondetails"))]
    assert sign_in == [("POST", "/api/accesstoken/login"), ("GET", "/api/entity/versiondetails/version")]
    [client] = preservica._client.get().values()
    assert client.roles == []
    pres.received.clear()
    assert "ROLE_SDB_MANAGER_USER" in preservica.webhooks_api().roles
    assert ("GET", "/api/user/details") in pres.requests


def test_pypreservica_entity_api_reads_no_role():
    """The actions' EntityAPI skips the roles request (_find_user_roles_ returns []): held to pyPreservica's own
    code, no EntityAPI or shared AuthenticatedAPI method reads the roles but the role checks, and none calls them."""
    import inspect

    from pyPreservica import common, entityAPI
    assert "self.roles" not in inspect.getsource(entityAPI) and "_check_if_user_has" not in inspect.getsource(entityAPI)
    readers = [name for name, fn in inspect.getmembers(common.AuthenticatedAPI, inspect.isfunction)
               if ("self.roles" in inspect.getsource(fn) or "_check_if_user_has" in inspect.getsource(fn))
               and not name.startswith("_check_if_user_has") and name != "__init__"]
    assert readers == []


def test_password_comes_from_key_vault_when_configured(keyvault, pres, monkeypatch, jobs):
    for name, value in {"PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_TENANT": TENANT,
                        "PRESERVICA_PROTOCOL": "http", "PRESERVICA_PASSWORD": "app-setting-is-ignored"}.items():
        monkeypatch.setenv(name, value)
    keyvault.set_secret(settings.KV_PRESERVICA_PASSWORD, PASSWORD)
    [raw] = jobs("thumbnail")
    assert run_one("thumbnail", raw).state == journal.DONE


def test_routed_thumbnail_without_password_is_skipped_by_the_dispatcher(env, monkeypatch, jobs):
    monkeypatch.delenv("PRESERVICA_PASSWORD")
    assert jobs("thumbnail") == []
    [r] = journal.default().recent(1)
    assert r["thumbnail_state"] == "skipped" and "PRESERVICA_PASSWORD" in r["thumbnail_reason"]


# ---- teams -----------------------------------------------------------------------------------

@pytest.fixture
def teams(env, monkeypatch):
    with TeamsDouble() as double:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", double.url)
        yield double


def card_text(card: dict) -> str:
    """What a person reads: every text and fact rendered as markdown (CommonMark, as Adaptive Cards'
    renderer does), tags stripped; the rest of the card as JSON."""
    from markdown_it import MarkdownIt
    md = MarkdownIt("commonmark")

    def shown(node):
        if isinstance(node, dict):
            return {k: (html.unescape(re.sub(r"<[^>]+>", "", md.render(v))).strip()
                        if k in ("text", "title", "value") and isinstance(v, str) else shown(v)) for k, v in node.items()}
        return [shown(v) for v in node] if isinstance(node, list) else node
    return json.dumps(shown(card), ensure_ascii=False).replace("\\n", " ")


def test_teams_indexed_card_names_title_files_sizes_and_links(teams, monkeypatch, jobs):
    monkeypatch.setenv("ASSET_URL_TEMPLATE", "https://archive.example/explorer/{ref}")
    monkeypatch.setenv("TEAMS_LIST_FILES", "true")
    [raw] = jobs("teams")
    outcome = run_one("teams", raw)
    assert outcome.state == journal.DONE
    [card] = teams.cards
    text = card_text(card)
    for expected in ("Café on the harbour", "Handwritten, 2 pages", "letter-p1.tif", "1.0 MiB", "letter.pdf", "734 B"):
        assert expected in text
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Preservica",
                                "url": f"https://archive.example/explorer/{ASSET}"}]
    r = row(raw)
    assert (r["teams_state"], r["teams_status"], r["teams_card"]) == ("done", 202, "indexed")
    assert run_one("teams", raw, attempt=2) is None     # a duplicate message: no second card
    assert len(teams.received) == 1


def test_teams_cards_stay_under_the_documented_28_kb_whatever_the_text():
    # Microsoft: "The message size limit is 28 KB. When the size exceeds 28 KB, you receive an error"
    # (microsoftteams/platform webhooks-and-connectors/how-to/add-incoming-webhook), counted in the body httpx
    # sends for json= (the teams action's client).
    import httpx

    from handlers.actions.teams import cards
    wide = "\U0001F4DC"
    built = [cards.indexed_card(wide * 300, wide * 5000, ASSET, [(wide * 300, 10**12)] * 40,
                                f"https://archive.example/{ASSET}", 40),
             cards.digest_card("FULL_TEXT_INDEXED", 900, {f"T{i}": 1 for i in range(900)}, [wide * 300] * 5, 5)]
    for card in built:
        assert len(httpx.Request("POST", "https://teams.example/", json=card).content) <= 28_000
    assert ASSET in json.dumps(built[0]) and "900 events" in json.dumps(built[1])


def test_teams_alert_and_one_line_cards(teams, jobs):
    [failed] = jobs("teams", refs=["ingest-1"], trigger="INGEST_FAILED", entity_type="SO")
    [moved] = jobs("teams", refs=[ASSET], trigger="MOVED")
    run_one("teams", failed)
    run_one("teams", moved)
    alert, line = teams.cards
    assert "Ingest failed" in card_text(alert) and f"SO {ref('ingest-1')}" in card_text(alert) and "actions" not in alert
    assert line["body"] == [{"type": "TextBlock", "text": f"Preservica MOVED: IO {ASSET}", "wrap": True}]
    assert row(failed)["teams_card"] == "alert" and row(moved)["teams_card"] == "line"


def test_teams_digest_card_for_a_large_delivery_settles_every_row(teams, pres, monkeypatch, jobs):
    monkeypatch.setenv("TEAMS_DIGEST_THRESHOLD", "2")
    pres.add_asset(OTHER, "Second letter")
    [raw] = jobs("teams", refs=[ASSET, OTHER, "gone-ref"])
    assert read_job(raw).kind == "digest"
    assert run_one("teams", raw).state == journal.DONE
    [card] = teams.cards
    text = card_text(card)
    assert "3 events" in text and "Assets (IO)" in text
    assert "Café on the harbour" in text and "Second letter" in text and f"{ref('gone-ref')} (deleted)" in text
    rows = [r for r in journal.default().recent(10) if r["RowKey"] != read_job(raw).rk]
    assert len(rows) == 3 and all(r["teams_state"] == "done" for r in rows)


def test_teams_429_with_retry_after_waits_once_then_posts(teams, monkeypatch, jobs):
    from handlers.actions import teams as action_teams
    waits = []
    monkeypatch.setattr(action_teams, "_sleep", waits.append)   # record the wait instead of waiting
    teams.respond_with(429, {"Retry-After": "1"})
    [raw] = jobs("teams")
    assert run_one("teams", raw).state == journal.DONE
    assert waits == [1.0] and len(teams.received) == 2 and len(teams.cards) == 1


def test_teams_long_retry_after_or_5xx_leave_the_retry_to_the_queue(teams, monkeypatch, jobs):
    from handlers.actions import teams as action_teams
    waits = []
    monkeypatch.setattr(action_teams, "_sleep", waits.append)
    [raw] = jobs("teams")
    teams.respond_with(429, {"Retry-After": "3600"})
    with pytest.raises(SafeError, match="HTTP 429"):
        run_one("teams", raw, attempt=1)
    teams.respond_with(502)
    with pytest.raises(SafeError, match="HTTP 502"):
        run_one("teams", raw, attempt=2)
    assert waits == [] and row(raw)["teams_state"] == "failed" and row(raw)["teams_attempts"] == 2
    assert run_one("teams", raw, attempt=3).state == journal.DONE


def test_teams_400_fails_with_a_reason_but_never_the_url(teams, caplog, jobs):
    caplog.set_level(logging.DEBUG)
    teams.respond_with(400, {"Content-Type": "application/json"},
                       json.dumps({"error": {"code": "InvalidRequestContent", "message": "echo " + teams.url}}))
    [raw] = jobs("teams")
    with pytest.raises(SafeError) as raised:
        run_one("teams", raw)
    assert str(raised.value) == "Teams refused the card: HTTP 400 (InvalidRequestContent)"
    assert raised.value.__cause__ is None and raised.value.__context__ is None   # no httpx error chained to it
    reason = row(raw)["teams_reason"]
    assert "HTTP 400" in reason
    run_one("teams", raw, attempt=2)          # a successful post is not logged with its URL either
    for text in (reason, all_log_text(caplog)):
        assert teams.sig not in text and "sig=" not in text and str(teams.port) not in text


def test_teams_skips_an_asset_deleted_since_the_event(teams, jobs):
    [raw] = jobs("teams", refs=["deleted-since"])
    assert run_one("teams", raw).reason == "not found" and teams.cards == []


# ---- catalogue -------------------------------------------------------------------------------

@pytest.fixture
def catalogue(env, monkeypatch):
    with CatalogueDouble() as double:
        monkeypatch.setenv("CATALOGUE_URL_TEMPLATE", double.url_template)
        monkeypatch.setenv("CATALOGUE_SCHEMA", SCHEMA)
        double.add_record("HM/1887/12", '<?xml version="1.0" encoding="UTF-8"?>' + RECORD.format("Harbour"))
        yield double


def test_catalogue_record_attached_as_fragment(catalogue, pres, jobs):
    [raw] = jobs("catalogue")
    assert run_one("catalogue", raw).state == journal.DONE
    [(schema, xml)] = pres.metadata(ASSET)
    assert schema == SCHEMA and "Harbour" in xml and "HM/1887/12" in xml
    assert [r.path for r in catalogue.received] == ["/records/HM%2F1887%2F12"]
    r = row(raw)
    assert (r["catalogue_state"], r["catalogue_identifier"], r["catalogue_fragment"]) == ("done", "HM/1887/12", "added")


def test_catalogue_replaces_an_existing_fragment_and_retries_add_nothing(catalogue, pres, jobs):
    from handlers.clients import fragments
    pres.add_metadata(ASSET, "urn:other", "<x xmlns='urn:other'/>")
    ctx = Context()   # the app wrote the old record (an earlier catalogue run): recorded, so it may replace it
    fragments.write(ctx.storage.blob_service(), ctx.secrets, ASSET, SCHEMA, RECORD.format("Old title"))
    [raw] = jobs("catalogue")
    from handlers.actions import catalogue as action_catalogue
    action_catalogue.perform(read_job(raw), Context())   # an attempt whose journal write was lost
    assert run_one("catalogue", raw, attempt=2).reason == ""
    fragments = pres.metadata(ASSET)
    assert [s for s, _ in fragments] == ["urn:other", SCHEMA]
    assert "Harbour" in fragments[1][1] and "Old title" not in fragments[1][1]
    assert row(raw)["catalogue_fragment"] == "unchanged"
    assert run_one("catalogue", raw, attempt=3) is None


def test_catalogue_retry_after_a_lost_outcome_replaces_its_own_fragment(catalogue, pres, jobs):
    """The first try added the fragment, then its outcome was lost (the instance stopped): the message's
    snapshot still says "no fragment", so the retry must ask Preservica, not add a second one."""
    [raw] = jobs("catalogue")
    from handlers.actions import catalogue as action_catalogue
    assert action_catalogue.perform(read_job(raw), Context()).extra["catalogue_fragment"] == "added"
    assert run_one("catalogue", raw, attempt=2).extra["catalogue_fragment"] == "unchanged"
    assert [s for s, _ in pres.metadata(ASSET)] == [SCHEMA]


def test_catalogue_skips(catalogue, pres, jobs):
    pres.add_asset(OTHER, "No catalogue id", identifiers={"isbn": "1"})
    pres.add_asset(ref("unknown"), "Unknown to the catalogue", identifiers={"catalogue": "NOPE/1"})
    no_id, unknown, gone = jobs("catalogue", refs=[OTHER, "unknown", "deleted-since"])
    assert run_one("catalogue", no_id).reason == "no 'catalogue' identifier"
    assert run_one("catalogue", unknown).reason == "no catalogue record"    # catalogue 404
    assert run_one("catalogue", gone).reason == "not found"                 # Preservica 404
    assert [row(r)["catalogue_state"] for r in (no_id, unknown, gone)] == ["skipped"] * 3
    assert pres.metadata(OTHER) == [] and pres.metadata(ref("unknown")) == []


def test_catalogue_5xx_and_non_xml_raise(catalogue, pres, jobs):
    [raw] = jobs("catalogue")
    catalogue.respond_with(503)
    with pytest.raises(SafeError, match="the catalogue answered HTTP 503"):
        run_one("catalogue", raw)
    assert row(raw)["catalogue_state"] == "failed"
    catalogue.respond_with(200, {"Content-Type": "application/xml"}, "<record><unclosed></record>")
    with pytest.raises(SafeError, match="not well-formed XML"):
        run_one("catalogue", raw, attempt=2)
    catalogue.respond_with(200, {"Content-Type": "text/html"}, "<html/>")
    with pytest.raises(SafeError, match="not XML"):
        run_one("catalogue", raw, attempt=3)
    assert pres.metadata(ASSET) == []
    assert run_one("catalogue", raw, attempt=4).state == journal.DONE


# ---- relay -----------------------------------------------------------------------------------

def test_relay_posts_a_signed_event_with_the_asset_summary(relay, jobs):
    [raw] = jobs("relay")
    job = read_job(raw)
    assert run_one("relay", raw).state == journal.DONE
    [got] = relay.wait_for_deliveries(1)                  # verified by svix and by the spec's own reading
    assert relay.disagreements == [] and got.headers["webhook-id"] == job.key
    doc = got.json()
    assert doc["asset"] == {"ref": ASSET, "type": "IO", "title": "Café on the harbour",
                            "description": "Handwritten, 2 pages", "securityTag": "open", "parent": FOLDER}
    assert doc["event"] == job.event and doc["trigger"] == "FULL_TEXT_INDEXED"
    assert (doc["tenant"], doc["timestamp"], doc["deliveryId"]) == (job.tenant, job.timestamp, job.delivery_id)
    assert row(raw)["relay_state"] == "done" and row(raw)["relay_status"] == 204
    assert run_one("relay", raw, attempt=2) is None and len(relay.received) == 1


def test_relay_summary_is_null_when_the_entity_is_gone_or_not_looked_up(relay, jobs, monkeypatch):
    [gone] = jobs("relay", refs=["deleted-since"])
    [content] = jobs("relay", refs=["co-1"], entity_type="CO")
    run_one("relay", gone)
    run_one("relay", content)
    monkeypatch.delenv("PRESERVICA_SERVER")               # Preservica is optional for the relay
    [unlooked] = jobs("relay", refs=[ASSET], trigger="MOVED")
    run_one("relay", unlooked)
    docs = [d.json() for d in relay.wait_for_deliveries(3)]
    assert [d["asset"] for d in docs] == [None, None, None]
    assert [d["event"]["entityRef"] for d in docs] == [ref("deleted-since"), ref("co-1"), ASSET]


@pytest.mark.parametrize("how", ["closed", "hidden"])
def test_relay_names_what_is_not_public_by_ref_and_tag_only(relay, pres, jobs, how):
    """The receiver is a discovery platform: a closed or hidden asset's title and description never reach it (it is
    told the asset is withdrawn, and may read Preservica with its own rights); a closed folder's neither."""
    pres.add_asset(OTHER, "Minutes of the closed meeting", "Names the informant", security_tag=(
        "closed" if how == "closed" else "open"), parent=FOLDER)
    if how == "hidden":
        pres.set_hidden(OTHER)
    pres.add_folder(ref("closed-folder"), "Closed accession: the informant's letters", security_tag="closed")
    [asset] = jobs("relay", refs=[OTHER])
    [folder] = jobs("relay", refs=[ref("closed-folder")], trigger="MOVED", entity_type="SO")
    run_one("relay", asset)
    run_one("relay", folder)
    raw = [d.body for d in relay.wait_for_deliveries(2)]
    assert not [b for b in raw if b"informant" in b or b"closed meeting" in b]
    docs = [json.loads(b) for b in raw]
    assert docs[0]["asset"] == {"ref": OTHER, "type": "IO", "title": None, "description": None,
                                "securityTag": "closed" if how == "closed" else "open", "parent": FOLDER}
    assert docs[1]["asset"]["title"] is None and docs[1]["asset"]["securityTag"] == "closed"


def test_relay_summary_of_a_folder(relay, jobs):
    [raw] = jobs("relay", refs=[FOLDER], trigger="MOVED", entity_type="SO")
    run_one("relay", raw)
    [got] = relay.wait_for_deliveries(1)
    assert got.json()["asset"]["title"] == "Accession 2024/17" and got.json()["asset"]["type"] == "SO"


def test_relay_410_is_gone_and_not_retried(relay, caplog, jobs):
    relay.gone()
    [raw] = jobs("relay")
    outcome = run_one("relay", raw)
    assert (outcome.state, outcome.reason) == (journal.GONE, "receiver gone")
    assert row(raw)["relay_state"] == "gone"
    assert run_one("relay", raw, attempt=2) is None
    assert len(relay.received) == 1
    assert any("410" in r.getMessage() and "PRESERVICA_ROUTES" in r.getMessage() for r in caplog.records)


def test_relay_failure_raises_for_the_queue_to_retry(relay, jobs):
    [raw] = jobs("relay")
    relay.respond_with(503)
    with pytest.raises(SafeError, match="HTTP 503"):
        run_one("relay", raw)
    assert row(raw)["relay_state"] == "failed"
    assert run_one("relay", raw, attempt=2).state == journal.DONE
    assert len(relay.wait_for_deliveries(1)) == 1


def test_relay_bad_secret_is_reported_without_its_value(relay, monkeypatch, jobs):
    monkeypatch.setenv("RELAY_SECRET", "whsec_!!not-base64!!")
    [raw] = jobs("relay")
    with pytest.raises(SafeError) as raised:
        run_one("relay", raw)
    assert "not-base64" not in str(raised.value) and "RELAY_SECRET" in str(raised.value)
