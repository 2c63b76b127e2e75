"""Attacks on the operator console (issue 19, point 6 and 7), each through the real HTTP function
(handlers/console/routes.handle) against Azurite."""
import hashlib
import hmac

import pytest

from handlers.console import auth, routes
from handlers.core import settings
from tests.support.console import AZURE, LOCAL_URL, form_for, local_env, principal, request
from tests.support.paths import SECRET


def _replay(form: bytes, sid: str) -> object:
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(auth.OPERATOR), "Host": "app.example.org",
               "Origin": "https://app.example.org", "Cookie": f"console_sid={sid}",
               "Content-Type": "application/x-www-form-urlencoded"}
    return routes.handle(request("poison/replay", "POST", headers=headers, body=form), AZURE)


@pytest.mark.parametrize("csrf", ["%C3%A9", "%E2%80%AE" * 30, "%FF%FE", "%00"])
def test_non_ascii_csrf_token(app_env, csrf):
    """`csrf=%C3%A9`: compare_digest on a non-ASCII `str` raised TypeError, so a 500 for anyone."""
    sid, _ = form_for(auth.OPERATOR)
    resp = _replay(f"queue={settings.DELIVERY_QUEUE}&message=all&csrf={csrf}".encode(), sid)
    assert resp.status_code == 403 and b"expired" in resp.get_body()


def test_non_ascii_local_console_token(app_env):
    resp = routes.handle(request("poison", url=LOCAL_URL + "poison",
                                 headers={"Host": "127.0.0.1:7071", "Cookie": f"{auth.LOCAL_COOKIE}=\u00e9\u00e9"},
                                 params={"token": "\u00e9" * 32}), local_env())
    assert resp.status_code == 401


@pytest.mark.parametrize("query", [{"to": "0001-01-03"}, {"from": "0001-01-01"}, {"from": "0001-01-01", "to": "0001-01-01"},
                                   {"to": "9999-12-31"}, {"from": "9999-12-31"}, {"from": "9999-12-31", "to": "0001-01-01"}])
def test_events_dates_at_the_ends_of_the_calendar(app_env, query):
    """`events?to=0001-01-03`: a week back from it is before date.min, an OverflowError and a 500."""
    for path in ("events", "events.json"):
        resp = routes.handle(request(path, headers={"X-MS-CLIENT-PRINCIPAL": principal(auth.READER),
                                                    "Host": "app.example.org"}, params=query), AZURE)
        assert resp.status_code == 200


def test_local_console_token_from_the_webhook_secret(app_env, monkeypatch):
    """Whoever knows the webhook secret (Preservica, whoever set up the subscription) could compute the local
    console's token when it was an HMAC of that secret. Now it comes from the console's own random key."""
    from_secret = hmac.new(SECRET.encode(), b"operator console, local run", hashlib.sha256).hexdigest()[:32]
    resp = routes.handle(request("poison", url=LOCAL_URL + "poison",
                                 headers={"Host": "127.0.0.1:7071", "Cookie": "x=1"},
                                 params={"token": from_secret}), local_env())
    assert resp.status_code == 401
    token = routes.local_token()
    assert token != auth.local_token(SECRET.encode())
    monkeypatch.setenv("PRESERVICA_WEBHOOK_SECRET", "rotated-" + SECRET)  # a rotation leaves the console link alone
    assert routes.local_token() == token
