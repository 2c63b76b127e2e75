"""Property-based: whatever arrives, the intake never answers 5xx while storage is up, and
never queues anything that is not validly signed."""
import azure.functions as func
from azure.storage.queue import QueueClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from handlers import intake
from handlers.core import settings, signature
from tests.support.paths import SECRET

header_names = st.sampled_from(["Preservica-Signature", "preservica-signature", "PRESERVICA-SIGNATURE",
                                "Content-Type", "X-Other"])
header_values = st.one_of(st.text(max_size=80), st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64))
json_like = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                         lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                         max_leaves=12).map(lambda v: __import__("json").dumps(v).encode())
bodies = st.one_of(st.binary(max_size=512), json_like,
                   st.just(b'{"events": []}'), st.just(b'{"events": [{"entityRef": "x"}]}'))
params = st.dictionaries(st.sampled_from(["challengeCode", "code", "x"]), st.text(max_size=600), max_size=2)


def queue_length(conn: str) -> int:
    q = QueueClient.from_connection_string(conn, settings.DELIVERY_QUEUE)
    try:
        return q.get_queue_properties().approximate_message_count
    except Exception:
        return 0


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, headers=st.dictionaries(header_names, header_values, max_size=3), query=params)
def test_unsigned_input_never_5xx_never_queued(app_env, body, headers, query):
    resp = intake.handle(func.HttpRequest("POST", "http://h/api/preservica/webhook", headers=headers,
                                          params=query, body=body))
    assert resp.status_code < 500
    if "challengeCode" not in query:
        assert resp.status_code in (400, 401, 413)
    assert queue_length(app_env.connection_string) == 0


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_signed_input_is_200_or_400_and_only_200_is_queued(app_env, body):
    before = queue_length(app_env.connection_string)
    resp = intake.handle(func.HttpRequest("POST", "http://h/api/preservica/webhook", body=body,
                                          headers={"Preservica-Signature": signature.sign(SECRET, body)}))
    assert resp.status_code in (200, 400)
    assert queue_length(app_env.connection_string) == before + (resp.status_code == 200)
