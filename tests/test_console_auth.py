"""The console's authorisation through the real HTTP function (handlers/console/auth.py, routes.py): who is
served in Azure (App Service and Flex Consumption, as the host tells them apart: core/hosting.py) and on a
developer's machine (only when `hookops run` turned local mode on, with development storage)."""
import pytest

from handlers.console import auth, routes
from handlers.core import hosting
from tests.support.console import LOCAL_URL, azure_get, local_env, principal, request

# ---- authorisation ---------------------------------------------------------------------------------

def test_no_header_in_azure_is_401(app_env):
    assert azure_get("overview").status_code == 401


def test_a_role_that_is_not_a_console_role_is_403(app_env):
    assert azure_get("overview", "Something.Else").status_code == 403


def test_reader_and_operator_both_see_the_pages(app_env):
    for role in (auth.READER, auth.OPERATOR):
        resp = azure_get("events", role)
        assert resp.status_code == 200 and b"<table class=\"events\">" in resp.get_body()


def test_auth_off_in_azure_refuses_even_a_valid_looking_header(app_env):
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(auth.OPERATOR)}
    for off in ({"WEBSITE_INSTANCE_ID": "abc"}, {"WEBSITE_INSTANCE_ID": "abc", "WEBSITE_AUTH_ENABLED": "False"}):
        resp = routes.handle(request("overview", headers=headers), off)
        assert resp.status_code == 503 and b"built-in authentication" in resp.get_body()


# Flex Consumption as the host sees it once specialised: azure-functions-host EnvironmentExtensionsTests,
# IsFlexConsumptionSku ("expected state when specialized": SKU, CONTAINER_NAME, LEGION_SERVICE_HOST, no
# WEBSITE_INSTANCE_ID); GetInstanceId reads WEBSITE_POD_NAME there. Built-in authentication on.
FLEX = {"WEBSITE_SKU": "FlexConsumption", "WEBSITE_INSTANCE_ID": "", "CONTAINER_NAME": "app-7f9c-container",
        "WEBSITE_POD_NAME": "app-7f9c-pod", "LEGION_SERVICE_HOST": "10.0.0.1", "WEBSITE_AUTH_ENABLED": "True",
        "WEBSITE_HOSTNAME": "app.azurewebsites.net"}


def test_on_flex_a_signed_in_operator_is_served_and_an_anonymous_request_is_refused(app_env):
    signed_in = {"X-MS-CLIENT-PRINCIPAL": principal(auth.OPERATOR), "Host": "app.example.org"}
    resp = routes.handle(request("poison", headers=signed_in), FLEX)
    assert resp.status_code == 200 and b"archivist@example.org" in resp.get_body()
    assert routes.handle(request("poison", headers={"Host": "app.example.org"}), FLEX).status_code == 401


def test_on_flex_local_mode_cannot_be_on_even_with_a_loopback_url_and_host(app_env):
    """Even with the variable `hookops run` sets and development storage: the host's rules say Azure."""
    env = {**FLEX, **local_env()}
    assert hosting.in_azure(env) and not hosting.local_console(env)
    resp = routes.handle(request("poison", url=LOCAL_URL + "poison", headers={"Host": "127.0.0.1:7071"}), env)
    assert resp.status_code == 401                                   # asked to sign in, not served as local
    assert b"operator" not in resp.get_body()


def test_on_flex_with_built_in_auth_off_the_console_answers_the_503_guard(app_env):
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(auth.OPERATOR), "Host": "app.example.org"}
    for off in ({**FLEX, "WEBSITE_AUTH_ENABLED": ""}, {**FLEX, "WEBSITE_AUTH_ENABLED": "False"}):
        resp = routes.handle(request("overview", headers=headers), off)
        assert resp.status_code == 503 and b"built-in authentication" in resp.get_body()


@pytest.mark.parametrize("env", [{}, {hosting.LOCAL_CONSOLE: "1"},
                                 {hosting.LOCAL_CONSOLE: "1", "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;"
                                  "AccountName=prodacct;AccountKey=eA==;EndpointSuffix=core.windows.net"}])
def test_local_mode_is_off_unless_hookops_run_turned_it_on_with_development_storage(app_env, env):
    """`func start` on its own, or a run against a real storage account: the console is not served as local."""
    resp = routes.handle(request("poison", url=LOCAL_URL + "poison", headers={"Host": "127.0.0.1:7071"}), env)
    assert resp.status_code == 403


@pytest.mark.parametrize("url, headers", [
    ("http://10.1.2.3:7071/api/console/overview", {}),                                   # not loopback
    ("http://192.168.0.9/api/console/overview", {"Host": "127.0.0.1"}),                  # forged Host does not help
    ("http://127.0.0.1:7071/api/console/overview", {"Host": "attacker.example"}),        # DNS rebinding
    ("http://127.0.0.1:7071/api/console/overview", {"X-Forwarded-For": "203.0.113.9"}),  # proxied to a local port
])
def test_forged_principal_from_a_non_local_caller_is_refused(app_env, url, headers):
    forged = {"X-MS-CLIENT-PRINCIPAL": principal(auth.OPERATOR), **headers}
    resp = routes.handle(request("overview", url=url, headers=forged), local_env())
    assert resp.status_code == 403


@pytest.mark.parametrize("path, where", [("events", "/api/console/events"), ("poison", "/api/console/poison"),
                                         ("a/../..//evil.example", "/api/console/overview"),
                                         ("x/..", "/api/console/overview")])
def test_local_console_wants_the_link_with_its_token(app_env, path, where):
    """`func start` listens on every interface and the Host header is the caller's: "local" alone is not enough."""
    local = {"Host": "127.0.0.1:7071"}
    assert routes.handle(request(path, url=LOCAL_URL + path, headers={**local, "Cookie": "x=1"}), local_env()).status_code == 401
    wrong = routes.handle(request(path, url=LOCAL_URL + path, headers={**local, "Cookie": "x=1"},
                                  params={"token": "0" * 32}), local_env())
    assert wrong.status_code == 401 and b"hookops" in wrong.get_body()
    ok = routes.handle(request(path, url=LOCAL_URL + path, headers={**local, "Cookie": "x=1"},
                               params={"token": routes.local_token()}), local_env())
    assert ok.status_code == 303 and ok.headers["Location"] == where
    assert f"{auth.LOCAL_COOKIE}={routes.local_token()}" in ok.headers["Set-Cookie"]
    assert "HttpOnly" in ok.headers["Set-Cookie"] and "SameSite=Strict" in ok.headers["Set-Cookie"]


def test_local_run_serves_the_local_user_as_operator(app_env):
    resp = routes.handle(request("poison", url=LOCAL_URL + "poison", headers={"Host": "127.0.0.1:7071"}), local_env())
    assert resp.status_code == 200 and b"operator" in resp.get_body()
    assert "console_sid=" in resp.headers["Set-Cookie"] and "HttpOnly" in resp.headers["Set-Cookie"]


def test_every_answer_carries_a_strict_policy(app_env):
    resp = azure_get("overview", auth.READER)
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert "unsafe-inline" not in csp and resp.headers["X-Content-Type-Options"] == "nosniff"
    body = resp.get_body().decode()
    assert "<script" not in body and " style=" not in body and "<style" not in body
