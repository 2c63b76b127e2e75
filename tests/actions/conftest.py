"""Fixtures of the actions tests: the Preservica double holding one asset, the app's settings against it and
the session Azurite, and `jobs`, the action messages a routed delivery becomes."""
from __future__ import annotations

import pytest

from handlers import dispatch
from handlers.core import envelope, messages, settings
from hookops.doubles.deliveries import delivery, encode, ref
from hookops.doubles.preservica import PreservicaDouble
from tests.support.actions import ASSET, FOLDER, PASSWORD, PNG, TENANT, USER
from tests.support.jobs import read_job
from tests.support.preservica import fresh_client, point_at

# Settings a test of this folder sets itself when it needs them.
UNSET = ("PRESERVICA_USERNAME", "PRESERVICA_PASSWORD", "PRESERVICA_TENANT", "PRESERVICA_PROTOCOL",
         "ASSET_URL_TEMPLATE", "CATALOGUE_SCHEMA", "CATALOGUE_IDENTIFIER_TYPE", "TEAMS_DIGEST_THRESHOLD",
         "THUMBNAIL_SIZE", "THUMBNAIL_CONTAINER")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No credentials.properties, no proxy, and a fresh Preservica client per test (a new "process")."""
    with fresh_client(tmp_path, monkeypatch, unset=UNSET):
        yield


@pytest.fixture
def pres():
    with PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT) as double:
        double.add_folder(FOLDER, "Accession 2024/17")
        double.add_asset(ASSET, "Café on the harbour", "Handwritten, 2 pages", security_tag="open", parent=FOLDER,
                         thumbnail=PNG, identifiers={"catalogue": "HM/1887/12", "isbn": "978-3"},
                         bitstreams=[("letter-p1.tif", 1_048_576), ("letter.pdf", 734, "Access")])
        yield double


@pytest.fixture
def env(app_env, pres, monkeypatch):
    """App settings for a local run with Preservica at the double."""
    point_at(monkeypatch, pres, USER, PASSWORD, TENANT)
    return app_env


@pytest.fixture
def jobs(monkeypatch):
    """jobs(action, refs, trigger, entity_type): dispatch a delivery routed to `action` and take the
    action messages off its queue, as the action's function would receive them: one event per message
    here (ACTION_BATCH_SIZE=1), so each event's path can be driven on its own; batches are tested below."""
    def make(action: str, refs=(ASSET,), trigger: str = "FULL_TEXT_INDEXED", entity_type: str = "IO") -> list[bytes]:
        from handlers.clients.storage import default
        monkeypatch.setenv("PRESERVICA_ROUTES", f"*={action}")
        monkeypatch.setenv("ACTION_BATCH_SIZE", "1")
        body = encode(delivery(trigger=trigger, refs=list(refs), entity_type=entity_type))
        did = envelope.delivery_id(body)
        dispatch.dispatch(messages.intake_message(did, "2026-11-29T10:00:01Z", body.decode()).encode())
        q = default().queue(settings.action_queue(action))
        out = []
        while batch := list(q.receive_messages(max_messages=32)):
            for m in batch:
                out.append(m.content)
                q.delete_message(m)
        order = [ref(r) for r in refs]   # queues keep no order: restore the refs'
        return sorted(out, key=lambda m: order.index(read_job(m).entity_ref)
                      if read_job(m).entity_ref in order else len(order))
    return make
