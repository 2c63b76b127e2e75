"""What requests reads from the environment (trust_env: .netrc, the proxy variables, REQUESTS_CA_BUNDLE) is
read once per client, not on every request, by every client that sends through requests: the app's storage
clients, the local runner's queue clients and pyPreservica's sessions (issue 22; docs/benchmarks.md).
A proxy and a CA bundle set in the environment still take effect; .netrc never does: its entry for a host
would replace the storage clients' Authorization header (refused) or add Basic auth to every Preservica
request. Real clients against real Azurite and the Preservica double (over TLS where the CA bundle is tested).
"""
from __future__ import annotations

import pytest
import trustme
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from handlers.clients import http, preservica
from handlers.clients.secrets import default as secrets
from handlers.clients.storage import AZURITE_ACCOUNT, AZURITE_KEY, Storage
from handlers.core.errors import PreservicaError
from hookops.azurite import free_port
from hookops.doubles.preservica import PreservicaDouble
from hookops.doubles.tls import Certificates
from hookops.host import queues

USER, PASSWORD, TENANT = "env-user", "env-password", "ENV"
ASSET = "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
BINDING = {"connection": "AzureWebJobsStorage", "queueName": "environment-test"}


@pytest.fixture
def environ(monkeypatch):
    """No proxy, CA bundle or .netrc from the machine running the tests: each test sets its own."""
    for name in (*http.ENVIRONMENT_VARIABLES, "NETRC"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def netrc(environ, tmp_path):
    """A .netrc entry for the host every double and Azurite listen on (requests reads NETRC first)."""
    path = tmp_path / ".netrc"
    path.write_text("machine 127.0.0.1 login someone password something\n")
    path.chmod(0o600)
    environ.setenv("NETRC", str(path))
    return path


@pytest.fixture
def certs():
    c = Certificates(trustme.CA(), "environment-ca-")
    yield c
    c.cleanup()


def pres_double(tls=None) -> PreservicaDouble:
    double = PreservicaDouble(username=USER, password=PASSWORD, tenant=TENANT, tls=tls).start()
    double.add_asset(ASSET, "Harbour, 1887")
    return double


def use_preservica(monkeypatch, double: PreservicaDouble) -> None:
    for name, value in {"PRESERVICA_SERVER": double.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_PASSWORD": PASSWORD,
                        "PRESERVICA_TENANT": TENANT, "PRESERVICA_PROTOCOL": double.scheme,
                        "PRESERVICA_MAX_RPS": "1000"}.items():
        monkeypatch.setenv(name, value)


def asset_title() -> str:
    return preservica.call(secrets(), lambda api: api.asset(ASSET).title)


# ---- .netrc: never read ----------------------------------------------------------------------------

def test_a_netrc_entry_does_not_replace_the_runner_queue_clients_authorization(app_env, netrc):
    """With trust_env on, requests sent Basic auth from .netrc in place of the shared-key Authorization header:
    Azurite refused the runner's create, put and receive."""
    q = queues.ensure(queues.client(BINDING))
    q.send_message("aGVsbG8=")
    assert [m.content for m in q.receive_messages()] == ["aGVsbG8="]


def test_a_netrc_entry_adds_no_authorization_to_preservica_requests(app_env, environ, netrc):
    with pres_double() as double:
        use_preservica(environ, double)
        assert asset_title() == "Harbour, 1887"
        assert double.received and not [r.path for r in double.received if "authorization" in r.headers]


# ---- proxies: still honoured, NO_PROXY too ---------------------------------------------------------------

@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_a_proxy_variable_still_reaches_the_runner_queue_clients(app_env, environ, variable):
    """Nothing listens on the proxy, so the request fails; NO_PROXY still exempts the host."""
    environ.setenv(variable, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceRequestError):
        queues.client(BINDING, retries=0).get_queue_properties()
    environ.setenv("NO_PROXY", "127.0.0.1")
    queues.ensure(queues.client(BINDING, retries=0)).get_queue_properties()


def test_a_proxy_variable_still_reaches_preservica_and_a_change_makes_a_new_client(app_env, environ):
    with pres_double() as double:
        use_preservica(environ, double)
        environ.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        with pytest.raises(PreservicaError):
            asset_title()
        assert double.received == []   # it went to the proxy
        environ.setenv("NO_PROXY", "127.0.0.1,localhost")
        assert asset_title() == "Harbour, 1887"


# ---- the CA bundle: still honoured ----------------------------------------------------------------------

def https_storage(double: PreservicaDouble) -> str:
    """A connection string whose queue endpoint is the HTTPS double (it answers 404 to storage requests: enough
    to show that the TLS handshake, with the bundle's CA, succeeded)."""
    return (f"DefaultEndpointsProtocol=https;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"QueueEndpoint={double.base_url}/{AZURITE_ACCOUNT};")


def storage_queue(conn: str):
    return Storage({"AzureWebJobsStorage": conn}).queue("environment-test")


def runner_queue(conn: str):
    return queues.client({"connection": "HttpsStorage", "queueName": "environment-test"}, retries=0)


@pytest.mark.parametrize("make", [storage_queue, runner_queue], ids=["app storage", "runner queues"])
def test_a_ca_bundle_variable_still_reaches_the_storage_clients(environ, certs, make):
    with pres_double(tls=certs.context) as double:
        environ.setenv("HttpsStorage", https_storage(double))
        with pytest.raises(ServiceRequestError):   # the double's CA is not trusted without the bundle
            make(https_storage(double)).get_queue_properties()
        assert double.received == []
        environ.setenv("REQUESTS_CA_BUNDLE", certs.ca_pem_path)
        with pytest.raises(HttpResponseError):    # through TLS: the double's 404
            make(https_storage(double)).get_queue_properties()
        assert [r.method for r in double.received] == ["GET"]


def test_a_ca_bundle_variable_still_reaches_preservica(app_env, environ, certs):
    with pres_double(tls=certs.context) as double:
        use_preservica(environ, double)
        with pytest.raises(PreservicaError, match="TLS certificate verification failed"):
            asset_title()
        environ.setenv("REQUESTS_CA_BUNDLE", certs.ca_pem_path)   # a new client: the variable changed
        assert asset_title() == "Harbour, 1887"


def test_a_plain_http_url_without_a_proxy_is_given_no_bundle_to_look_at(environ):
    """requests stats a verify path on every request (adapters._urllib3_request_context), https or not: for
    http:// with no proxy there is nothing to verify, so the session gets True; a proxy may be https."""
    import requests
    environ.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/local-ca.pem")
    assert http.environment_read_once(requests.Session(), "http://127.0.0.1:10001/devstoreaccount1") is True
    assert http.environment_read_once(requests.Session(), "https://acct.queue.core.windows.net") == "/etc/ssl/local-ca.pem"
    environ.setenv("HTTP_PROXY", "https://proxy.example:3128")
    session = requests.Session()
    assert http.environment_read_once(session, "http://127.0.0.1:10001/devstoreaccount1") == "/etc/ssl/local-ca.pem"
    assert session.proxies["http"] == "https://proxy.example:3128" and session.trust_env is False

