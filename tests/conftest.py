"""Shared fixtures. Servers started here are stopped at the end of the session."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hookops import azurite as _azurite  # noqa: E402
from tests.support.paths import SECRET  # noqa: E402
from tests.support.storage import clear_storage  # noqa: E402

# Fixtures shared by several test modules live in these plugins, helpers in tests/support/ modules;
# no test module imports from another.
pytest_plugins = ["tests.support.e2e", "tests.support.toys"]

# Under `make test`'s two workers (pytest-xdist: a file at a time, in the order collected; see the Makefile) the
# files that take minutes start first, so that no worker is left running one alone at the end. Measured on the
# 2-core machine (docs/development.md); a file missing here costs only balance, never a result.
FIRST = ("tests/actions/test_custody_large.py",   # a 2 GiB copy: about 50 s alone
         "tests/test_bicep.py", "tests/test_host_contract.py", "tests/test_bench.py",  # checkov's and the worker's
         "tests/adversarial/test_trust_boundary.py", "tests/publish/test_public_invariant.py",  # venvs; bench --quick
         "tests/reconcile/test_reconcile.py", "tests/test_pages.py", "tests/test_pages_e2e.py",
         "tests/adversarial/test_storage_stall.py", "tests/test_order_e2e.py")


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):   # an xdist worker; in one process the usual order stays
        rank = {name: i for i, name in enumerate(FIRST)}
        items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(FIRST)))   # stable: files stay whole


@pytest.fixture(scope="session", autouse=True)
def no_network_beyond_this_machine():
    """Tests never reach the internet: resolving any name but this machine's fails the call at once."""
    import socket
    real = socket.getaddrinfo
    local = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")

    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name not in local and not name.startswith("127."):
            raise socket.gaierror(socket.EAI_NONAME, f"tests do not resolve {name!r}: use 127.0.0.1")
        return real(host, *args, **kwargs)
    socket.getaddrinfo = guarded
    yield
    socket.getaddrinfo = real


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A real Azurite on free ports for the whole session."""
    with _azurite.start_on_free_ports(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def storage_env(azurite, monkeypatch):
    """Point the app's settings at the session Azurite."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite.connection_string


@pytest.fixture
def app_env(azurite, monkeypatch):
    """The app's settings for a local run against the session Azurite, storage emptied first."""
    clear_storage(azurite.connection_string)
    for name in ("KEY_VAULT_URI", "PRESERVICA_WEBHOOK_SECRET_PREVIOUS", "PRESERVICA_ROUTES", "TEAMS_WEBHOOK_URL",
                 "RELAY_URL", "RELAY_SECRET", "PRESERVICA_SERVER", "CATALOGUE_URL_TEMPLATE", "MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("PRESERVICA_WEBHOOK_SECRET", SECRET)
    # The doubles need no protecting: at the default 10 a second a test spent most of its time waiting for slots.
    # The budget's own tests set theirs (tests/test_budget*.py; test_cost and bench build their buckets).
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")
    from handlers.clients import shared
    shared.reset_all()  # each test starts a new "process": no cached secret or client
    return azurite


@pytest.fixture(scope="session")
def _keyvault_server():
    from hookops.doubles.keyvault import KeyVaultDouble
    with KeyVaultDouble() as kv:
        yield kv


@pytest.fixture
def keyvault(_keyvault_server, app_env, monkeypatch):
    """The app reading its secrets from a local Key Vault through managed identity, as in Azure."""
    kv = _keyvault_server
    kv.set_available(True)
    kv.patch_env(monkeypatch)
    monkeypatch.setenv("KEY_VAULT_URI", kv.vault_url)
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("PRESERVICA_WEBHOOK_SECRET", "app-setting-value-must-be-ignored")
    for name in list(kv.secret_reads):
        kv.delete_secret(name)
    kv.secret_reads.clear()
    kv.set_secret("preservica-webhook-secret", "vault-secret")
    yield kv
    kv.set_available(True)


@pytest.fixture
def relay(env, monkeypatch):
    """A relay receiver the app posts to (`env`: the app settings of the test's folder, in its conftest.py)."""
    from hookops.doubles.receivers import RelayReceiver
    with RelayReceiver() as receiver:
        monkeypatch.setenv("RELAY_URL", receiver.url)
        monkeypatch.setenv("RELAY_SECRET", receiver.secret)
        yield receiver
