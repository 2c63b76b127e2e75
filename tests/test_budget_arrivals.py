"""Preservica counts arrivals, not releases: a request occupies the budget's window from its release until a
second after its answer, so however late it arrives, no second at Preservica holds more than the rate.
Bench row 9 saw 12 in a second at the double at PRESERVICA_MAX_RPS=10 (+1) while the releases held 10."""
import threading
import time

from pyPreservica.common import EntityType

from handlers.clients import preservica, ratelimit
from handlers.clients.secrets import default as secrets
from hookops.doubles.preservica import PreservicaDouble
from tests.support.actions import ASSET, PASSWORD, TENANT, USER
from tests.support.preservica import fresh_client, point_at


def most_in_a_second(times) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if s <= t < s + 1) for s in times)


def test_with_every_request_in_flight_the_next_waits_for_an_answer_and_its_second():
    bucket = ratelimit.TokenBucket(2)
    answer, taken, answered, third = threading.Event(), [], [], []

    def in_flight():
        with bucket.sending():
            bucket.take()
            taken.append(bucket.last)
            answer.wait(60)
        answered.append(time.monotonic())
    first = [threading.Thread(target=in_flight) for _ in range(2)]
    for t in first:
        t.start()
    deadline = time.monotonic() + 60
    while len(taken) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    late = threading.Thread(target=lambda: (bucket.take(), third.append(bucket.last)))
    late.start()
    late.join(0.5)
    assert not third and bucket.in_flight == 2   # both in flight: nothing goes, however long
    answer.set()
    for t in [*first, late]:
        t.join(60)
    assert third and third[0] >= min(answered) + 1.0   # a second after the first answer, not after its release


class LateDouble(PreservicaDouble):
    """The first `late` entity reads arrive 0.6 s after they were sent (a starved machine, a slow network);
    the double stamps each arrival."""

    def __init__(self, late: int, **kw):
        super().__init__(**kw)
        self.late, self.arrivals = late, []

    def _record(self, request) -> None:
        if request.path.startswith("/api/entity/information-objects/"):
            with self._lock:
                slow, self.late = self.late > 0, self.late - 1
            if slow:
                time.sleep(0.6)   # the scenario: this request reaches Preservica late
            with self._lock:
                self.arrivals.append(time.monotonic())
        super()._record(request)


def test_the_app_holds_the_rate_at_preservica_when_requests_arrive_late(tmp_path, monkeypatch):
    """Through the real pyPreservica sessions (guarded_send): 4 threads, 24 entity reads, the first 3 late."""
    with fresh_client(tmp_path, monkeypatch), LateDouble(3, username=USER, password=PASSWORD, tenant=TENANT) as pres:
        pres.add_asset(ASSET, "Café on the harbour", security_tag="open")
        point_at(monkeypatch, pres, USER, PASSWORD, TENANT)
        monkeypatch.setattr(preservica._bucket, "_build", lambda: ratelimit.TokenBucket(5))
        preservica._bucket.reset()
        try:
            preservica.call(secrets(), lambda api: None)   # logged in: the login's requests are not in the count
            failures = []

            def reads():
                try:
                    for _ in range(6):
                        preservica.call(secrets(), lambda api: api.entity(EntityType.ASSET, ASSET))
                except Exception as exc:   # noqa: BLE001 - reported below
                    failures.append(exc)
            threads = [threading.Thread(target=reads) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not failures and len(pres.arrivals) == 24
            assert most_in_a_second(pres.arrivals) <= 5, pres.arrivals
        finally:
            preservica._bucket.reset()
