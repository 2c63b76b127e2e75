"""Preservica's access token goes to PRESERVICA_SERVER and nowhere else (issue 19, point 6).

requests follows redirects and keeps custom headers such as `Preservica-Access-Token` across hosts;
pyPreservica follows absolute URLs from Preservica's XML. Here a Preservica double answers with a
redirect, or hands back links, to a second server that records what reaches it: real pyPreservica,
through the app's client, must send that server nothing."""
from __future__ import annotations

import pytest
from pyPreservica.common import EntityType

from handlers.actions import transcribe as action
from handlers.clients import http, preservica
from handlers.clients.secrets import default as secrets
from handlers.core.errors import SafeError
from handlers.pipeline.contract import Context
from hookops.doubles.preservica import PreservicaDouble
from tests.support.jobs import read_job
from tests.support.transcribe import AV, PASSWORD, TENANT, USER, job_for

ENTITY = f"/api/entity/information-objects/{AV}"


@pytest.fixture
def elsewhere():
    """Another server, which records every request (and would happily take a token)."""
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as other:
        yield other


def tokens_seen(server) -> list[str]:
    return [r.headers["preservica-access-token"] for r in server.received if "preservica-access-token" in r.headers]


def failure(work) -> BaseException | None:
    """What `work()` raised (None if nothing): looked at after what reached the other server."""
    try:
        work()
    except Exception as exc:
        return exc
    return None


def test_a_redirect_to_another_host_does_not_carry_the_access_token(env, pres, elsewhere):
    preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, AV))   # logged in
    pres.fail_next(1, 302, {"Location": f"{elsewhere.base_url}/steal/here?token=abc#frag"}, path_prefix=ENTITY)
    raised = failure(lambda: preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, AV)))
    assert tokens_seen(elsewhere) == [] and elsewhere.received == []
    assert isinstance(raised, preservica.Redirected)
    message = str(raised)
    assert f"HTTP 302, a redirect to http://127.0.0.1:{elsewhere.port}/steal/here;" in message
    assert "token=abc" not in message and "frag" not in message


def test_a_redirect_after_the_token_expired_does_not_carry_the_new_token(env, pres, elsewhere):
    """pyPreservica's 401 hook logs in again and re-sends with session.send, which follows redirects by default."""
    preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, AV))
    pres.expire_tokens()
    pres.fail_next(1, 307, {"Location": f"{elsewhere.base_url}/api/entity/information-objects/{AV}"},
                   path_prefix=ENTITY)
    raised = failure(lambda: preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, AV)))
    assert tokens_seen(elsewhere) == [] and elsewhere.received == []
    assert isinstance(raised, preservica.Redirected)


def test_links_in_preservicas_xml_to_another_server_are_not_followed_by_transcribe(env, pres, elsewhere):
    raw = job_for(AV)
    pres.link_to(elsewhere.base_url)   # representation, content object, generation and content URLs
    raised = failure(lambda: action.perform(read_job(raw), Context()))
    assert tokens_seen(elsewhere) == [] and elsewhere.received == []
    assert isinstance(raised, preservica.OtherServer)
    assert f"another server (http://127.0.0.1:{elsewhere.port})" in str(raised)


def test_a_representation_link_to_another_server_is_not_read_by_the_files_walk(env, pres, elsewhere):
    """publish, transcribe and custody reach an asset's files through preservica.files and its content_refs."""
    def content_refs(api):
        asset = api.asset(AV)
        [rep] = [r for r in api.representations(asset) if r.rep_type.value == "Access"]
        assert rep.url.startswith(elsewhere.base_url)   # the link Preservica handed back
        return preservica.content_refs(api, rep)
    pres.link_to(elsewhere.base_url)
    raised = failure(lambda: preservica.call(secrets(), content_refs))
    assert tokens_seen(elsewhere) == [] and elsewhere.received == []
    assert isinstance(raised, SafeError) and "another server" in str(raised)
    pres.link_to(None)   # the same call on the configured server reads the access representation's one file
    [ref] = preservica.call(secrets(), lambda api: preservica.content_refs(
        api, next(r for r in api.representations(api.asset(AV)) if r.rep_type.value == "Access")))
    assert api_co(pres, "talk.wav") == ref


def api_co(pres, filename: str) -> str:
    return pres._co(AV, filename)


@pytest.mark.parametrize("url,same", [
    ("http://127.0.0.1:8080/api/x", True),
    ("HTTP://127.0.0.1:8080/api/x", True),             # scheme and host compare case-insensitively
    ("http://127.0.0.1:8081/api/x", False),            # another port
    ("https://127.0.0.1:8080/api/x", False),           # another scheme
    ("http://127.0.0.1.evil.example:8080/api/", False),
    ("http://127.0.0.1:8080@evil.example/api/", False),
    ("http://evil.example@127.0.0.1:8080/api/", False),  # user information: nothing we follow has one
    ("//127.0.0.1:8080/api/x", False), ("/api/x", False), ("http://127.0.0.1:99999/", False), ("", False),
])
def test_a_url_is_on_the_server_only_by_scheme_host_and_effective_port(url, same):
    assert http.same_server(url, "http://127.0.0.1:8080/") is same


def test_an_omitted_port_is_the_schemes_default():
    assert http.same_server("https://EU.Preservica.com:443/api/entity/x", "https://eu.preservica.com/")
    assert http.same_server("http://host/api", "http://host:80/")
    assert not http.same_server("https://eu.preservica.com:8443/api", "https://eu.preservica.com/")


# ---- get_xml: the one way our code reads a URL Preservica hands back ---------------------------------

def entity_url(api) -> str:
    return f"{api.protocol}://{api.server}{ENTITY}"


def test_get_xml_logs_in_again_once_when_the_token_expired(env, pres):
    preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, AV))
    logins = pres.login_count
    pres.expire_tokens()
    root = preservica.call(secrets(), lambda api: preservica.get_xml(api, entity_url(api)))
    assert root.tag.endswith("EntityResponse") and pres.login_count == logins + 1


def test_get_xml_says_not_found_and_names_other_statuses_without_the_query(env, pres):
    with pytest.raises(preservica.NotFound):
        preservica.call(secrets(), lambda api: preservica.get_xml(api, entity_url(api) + "0"))
    pres.fail_next(1, 500, path_prefix=ENTITY)
    with pytest.raises(SafeError) as caught:
        preservica.call(secrets(), lambda api: preservica.get_xml(api, entity_url(api), {"secret": "q"}))
    assert f"HTTP 500 to GET http://{pres.server}{ENTITY}" in str(caught.value) and "secret" not in str(caught.value)


def test_an_entity_expansion_bomb_from_preservica_is_not_parsed(env, pres):
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;&c;&c;&c;</r>')
    preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, AV))
    pres.respond_with(200, {"Content-Type": "application/xml"}, bomb)
    with pytest.raises(SafeError, match="declares a DTD; not parsed"):
        preservica.call(secrets(), lambda api: preservica.get_xml(api, entity_url(api)))


def test_an_answer_too_large_to_be_preservicas_is_not_read_whole(env, pres, monkeypatch):
    from handlers.clients import preservica_http
    monkeypatch.setattr(preservica_http, "MAX_XML_BYTES", 64)
    with pytest.raises(SafeError, match="larger than 64 bytes"):
        preservica.call(secrets(), lambda api: preservica.get_xml(api, entity_url(api)))
