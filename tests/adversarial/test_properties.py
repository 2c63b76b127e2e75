"""Properties of the trust boundary over arbitrary input, with real Azurite and the real dispatcher:

(a) no challenge answer verifies as a delivery signature;
(b) every delivery answered 200 is dispatched without error;
(c) no input produces a 5xx while storage and secrets are up.
(d), the dispatcher's memory for the largest admitted delivery, is measured in test_trust_boundary.py.
"""
import json
import uuid

import azure.functions as func
from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st

from handlers import dispatch, intake
from handlers.core import settings, signature
from tests.support.paths import SECRET

PREFIX = "preservica-webhook-auth"
FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\ud800", "\udfff", "\x1f", "\x00", "\x1b[2K\r", "..", "x?ref=other&", "[a](https://e.x)",
                     "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "", " ", "\u202e", "💾" * 20]),
    st.text(min_size=250, max_size=300))
refs = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: f"sdb:IO|{u}"),
                 st.uuids().map(lambda u: f"https://h/api/entity/information-objects/{u}"), nasty_text, st.none())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), nasty_text)
nested = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                      max_leaves=20)
events = st.fixed_dictionaries({"entityRef": refs}, optional={
    "event": nasty_text, "entityType": st.one_of(st.sampled_from(["IO", "SO", "CO", "io"]), nasty_text),
    "identifiers": nested})
deliveries = st.fixed_dictionaries({"events": st.lists(events, max_size=4)}, optional={
    "subscriptionId": st.one_of(nasty_text, nested), "timestamp": nasty_text, "tenant": nasty_text,
    "version": nasty_text, "trigger": st.one_of(st.sampled_from(["FULL_TEXT_INDEXED", "MOVED", "moved"]), nasty_text),
    "extra": nested})


def as_body(doc) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes: valid JSON text, as a sender could send it
    return json.dumps(doc).encode()


def call(body: bytes, params=None, headers=None) -> func.HttpResponse:
    return intake.handle(func.HttpRequest("POST", "http://h/api/preservica/webhook", headers=headers or {},
                                          params=params or {}, body=body))


@hsettings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
@given(code=st.one_of(st.text(max_size=300), st.text(alphabet="abcdef0123456789-", max_size=60),
                      st.text(max_size=200).map(lambda t: PREFIX + t), st.just(PREFIX)),
       body=st.binary(max_size=200))
def test_a_no_challenge_answer_verifies_as_a_delivery_signature(app_env, code, body):
    resp = call(b"", params={"challengeCode": code})
    assert resp.status_code in (200, 400)
    if resp.status_code != 200:
        return
    answer = json.loads(resp.get_body())["challengeResponse"]
    # The only body the answer could sign is the code minus the prefix; and no other body either.
    candidates = [body, code.encode("utf-8", "surrogatepass")[len(PREFIX):]]
    assert not any(signature.verify([SECRET], b, answer) for b in candidates)


@hsettings(max_examples=120, deadline=None, suppress_health_check=FIXTURES)
@given(doc=deliveries)
def test_b_every_acknowledged_delivery_is_dispatched(app_env, doc):
    from handlers.clients.storage import default
    body = as_body(doc)
    resp = call(body, headers={"Preservica-Signature": signature.sign(SECRET, body)})
    assert resp.status_code in (200, 400), resp.get_body()
    event(f"status {resp.status_code}")
    if resp.status_code != 200:
        return
    q = default().queue(settings.DELIVERY_QUEUE)
    for msg in q.receive_messages(max_messages=32):
        dispatch.dispatch(msg.content)     # raises on any failure: the property is that it does not
        q.delete_message(msg)


@hsettings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(body=st.one_of(st.binary(max_size=300), deliveries.map(as_body)),
       sign=st.booleans(),
       query=st.dictionaries(st.sampled_from(["challengeCode", "code"]), st.text(max_size=300), max_size=2),
       header=st.one_of(st.none(), st.text(max_size=80)))
def test_c_no_input_is_answered_with_a_5xx(app_env, body, sign, query, header):
    headers = {"Preservica-Signature": signature.sign(SECRET, body) if sign else header} \
        if (sign or header is not None) else {}
    assert call(body, params=query, headers=headers).status_code < 500


def test_strategies_reach_both_outcomes(app_env):
    """The properties above are only meaningful if the generators produce accepted deliveries too."""
    ok = as_body({"events": [{"entityRef": str(uuid.uuid4()), "event": "x\x1f", "entityType": "IO"}],
                  "timestamp": "0001-01-01T00:00:00+14:00", "tenant": "[a](https://e.x)"})
    assert call(ok, headers={"Preservica-Signature": signature.sign(SECRET, ok)}).status_code == 200
