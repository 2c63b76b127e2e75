"""A custody run that stopped part way, lost an answer, or met another run of the same asset (copy.py: one run per
asset under a lease; a version whose inventory is written but not the object's is committed by the next run).

Before: a run stopped between the version's inventory and the object's (an instance stopped, a timeout, or the
blob client sending the version's inventory again after its answer was lost: 409 on its own write) left an
object no later event could change: each run met that version's inventory and failed, in WORM storage that no
one can delete. Two runs of one asset whose entity document changed between them (a MOVED right after ingest)
left a committed version whose file did not match its inventory (ocfl-py: E092)."""
from __future__ import annotations

import pytest
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from handlers.actions.custody import copy as custody_copy
from handlers.clients import custody_config as config, custody_store as store, custody_tally, publish_lock, reconcile_state
from handlers.core import ocfl
from hookops import azurite as az
from tests.actions.test_custody import ROOT, inventory, names, valid
from tests.support.actions import ASSET
from tests.support.jobs import run_one
from tests.support.lossy import LostAnswers

ROOT_INVENTORY = f"{ROOT}/{ocfl.INVENTORY}"


def stop_before_the_objects_inventory(monkeypatch):
    """The next run stops after the version's inventory and its sidecar, before the object's inventory."""
    real = store.put

    def put(client, path, data, **kw):
        if path == ROOT_INVENTORY:
            raise RuntimeError("the instance stopped here")
        return real(client, path, data, **kw)
    monkeypatch.setattr(store, "put", put)
    return lambda: monkeypatch.setattr(store, "put", real)


def written() -> int:
    return (custody_tally.coverage(reconcile_state.default()) or custody_tally.Coverage()).written


def test_a_first_version_left_by_a_stopped_run_is_committed_by_the_next(env, pres, jobs, monkeypatch, tmp_path):
    resume = stop_before_the_objects_inventory(monkeypatch)
    with pytest.raises(RuntimeError):
        run_one("custody", jobs("custody")[0])
    assert f"{ROOT}/v1/{ocfl.INVENTORY}" in names(env.connection_string)
    assert ROOT_INVENTORY not in names(env.connection_string)
    resume()
    outcome = run_one("custody", jobs("custody", trigger="MOVED")[0])
    assert (outcome.state, outcome.reason) == ("done", "v1, left by a stopped run, committed; no change since")
    assert inventory(env.connection_string)["head"] == "v1" and valid(env.connection_string, tmp_path)
    assert written() == 1   # the new object is counted once, by the run that committed it


def test_a_later_version_left_by_a_stopped_run_is_committed_and_a_change_since_follows(env, pres, jobs,
                                                                                      monkeypatch, tmp_path):
    run_one("custody", jobs("custody")[0])
    pres.set_security_tag(ASSET, "closed")             # a change the stopped run copied as v2
    resume = stop_before_the_objects_inventory(monkeypatch)
    with pytest.raises(RuntimeError):
        run_one("custody", jobs("custody", trigger="CHANGED_SECURITY_DESCRIPTOR")[0])
    resume()
    pres.set_security_tag(ASSET, "open")               # and one since: the next run adds v3 after committing v2
    outcome = run_one("custody", jobs("custody", trigger="CHANGED_SECURITY_DESCRIPTOR")[0])
    assert outcome.reason == "v2, left by a stopped run, committed; v3 written"
    made = inventory(env.connection_string)
    assert made["head"] == "v3" and made["versions"]["v2"]["message"].startswith("CHANGED_SECURITY_DESCRIPTOR")
    assert valid(env.connection_string, tmp_path)
    assert written() == 1


def test_a_version_inventory_that_does_not_extend_the_object_is_left_for_an_operator(env, pres, jobs):
    run_one("custody", jobs("custody")[0])
    container = BlobServiceClient.from_connection_string(env.connection_string).get_container_client("custody")
    v1 = container.download_blob(f"{ROOT}/v1/{ocfl.INVENTORY}").readall()
    container.upload_blob(f"{ROOT}/v2/{ocfl.INVENTORY}", v1)   # says head v1: not a next version
    pres.set_security_tag(ASSET, "closed")
    with pytest.raises(custody_copy.ActionError, match="uncommitted v2 .* does not extend the object's"):
        run_one("custody", jobs("custody", trigger="CHANGED_SECURITY_DESCRIPTOR")[0])
    assert inventory(env.connection_string)["head"] == "v1"   # nothing written over


def test_a_version_inventory_whose_answer_was_lost_is_not_taken_for_another_writers(env, jobs, monkeypatch,
                                                                                   tmp_path):
    """The blob client sends the write again (If-None-Match: *), which meets the first: 409 on its own write."""
    blob, queue, table = env.ports
    version_inventory = f"/v1/{ocfl.INVENTORY} ".encode()

    def lose(request: bytes) -> bool:
        return request.startswith(b"PUT ") and version_inventory in request.split(b"\r\n", 1)[0]
    with LostAnswers(blob, lose) as proxy:
        through = BlobServiceClient.from_connection_string(az.connection_string(proxy.port, queue, table))
        monkeypatch.setattr(config, "storage_root", lambda: through.get_container_client("custody"))
        outcome = run_one("custody", jobs("custody")[0])
    assert proxy.lost == 1 and sum(r.startswith("PUT ") and f"/v1/{ocfl.INVENTORY} " in r
                                                for r in proxy.requests) == 2   # sent again
    assert (outcome.state, outcome.reason) == ("done", "v1 written")
    assert valid(env.connection_string, tmp_path)


def test_a_second_run_of_an_asset_being_copied_waits_and_writes_nothing(env, pres, jobs, monkeypatch, tmp_path):
    """Its entity document differs from the first run's (the asset moved meanwhile): without the lease it wrote
    its own bytes over the first run's v1 file, under the first run's inventory."""
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    real, second = custody_copy._inventory, []

    def meanwhile(root, prefix, object_id):
        found = real(root, prefix, object_id)
        if not second:   # another event of the asset, while this run holds the lease
            pres.set_security_tag(ASSET, "closed")
            [raw] = jobs("custody", trigger="MOVED")
            second.append(raw)
            assert run_one("custody", raw) is None   # put back to wait (test_busy_put_back.py), nothing written
            pres.set_security_tag(ASSET, "open")
        return found
    monkeypatch.setattr(custody_copy, "_inventory", meanwhile)
    assert run_one("custody", jobs("custody")[0]).reason == "v1 written"
    assert valid(env.connection_string, tmp_path)
    pres.set_security_tag(ASSET, "closed")
    assert run_one("custody", second[0]).reason == "v2 written"   # run again, once the lease is free
    assert valid(env.connection_string, tmp_path, "after")


def test_a_run_whose_preservica_requests_wait_long_keeps_its_lease(env, pres, jobs, monkeypatch, tmp_path):
    """Every Preservica request first waits for the app's shared rate (clients/ratelimit.py: a low PRESERVICA_MAX_RPS
    that busy instances take in turns): 10 s each here, on a clock of the lease's own. Before, nothing renewed the
    lease while the run read the asset's metadata and listed its bitstreams (check() came only at a bitstream's
    download and before writes): it expired after 60 s, another event of the asset waiting for it took it, and this
    run ended with LeaseLost (the two can take it from each other to the poison queue on a larger asset)."""
    from handlers.clients import preservica
    blob, _, _ = env.ports
    clock = [1000.0]
    monkeypatch.setattr(publish_lock, "time", type("Clock", (), {
        "monotonic": staticmethod(lambda: clock[0]),
        "sleep": staticmethod(lambda s: clock.__setitem__(0, clock[0] + s))}))
    runs: list = []

    class Recorded(publish_lock.Held):
        def __init__(self, lease):
            super().__init__(lease)
            runs.append(self)
    monkeypatch.setattr(publish_lock, "Held", Recorded)
    marker = BlobServiceClient.from_connection_string(env.connection_string).get_blob_client(
        publish_lock.CONTAINER, f"custody/{ASSET.lower()}")
    taken: list = []
    real = preservica.spend_one

    def waited():
        clock[0] += 10   # the rate limiter's wait before this request
        if runs and not taken and clock[0] - runs[-1].renewed >= publish_lock.LEASE_SECONDS:
            # what Azure does then: the lease has expired, and another run of the asset, waiting, takes it
            BlobLeaseClient(marker).break_lease(lease_break_period=0)
            taken.append(marker.acquire_lease(lease_duration=15))
        real()
    monkeypatch.setattr(preservica, "spend_one", waited)
    try:
        outcome = run_one("custody", jobs("custody")[0])
    finally:
        for lease in taken:
            lease.release()
    assert not taken and (outcome.state, outcome.reason) == ("done", "v1 written")
    assert valid(env.connection_string, tmp_path)


def test_a_version_inventory_whose_manifest_does_not_extend_the_objects_is_left_for_an_operator(env, pres, jobs,
                                                                                               tmp_path):
    """Its version blocks are the object's and one more, but its new content is put at a path of an earlier
    version (there already, other bytes): before, it was committed as a stopped run's whole version, and the
    object was no longer valid (ocfl-py E101, E050). A stopped run's inventory only adds paths under its version."""
    import hashlib
    run_one("custody", jobs("custody")[0])
    container = BlobServiceClient.from_connection_string(env.connection_string).get_container_client("custody")
    v1 = ocfl.parse(container.download_blob(ROOT_INVENTORY).readall())
    entity = hashlib.sha512(b"<entity/>").hexdigest()
    state = {**ocfl.head_state(v1), "metadata/entity.xml": entity}
    v2 = ocfl.new_version(v1, v1["id"], state, {entity: "metadata/entity.xml"}, {}, "2026-12-08T00:00:00Z", "x",
                          custody_copy.USER)
    v2["manifest"][entity] = ["v1/content/metadata/entity.xml"]   # not under v2/
    container.upload_blob(f"{ROOT}/v2/{ocfl.INVENTORY}", ocfl.serialise(v2))
    with pytest.raises(custody_copy.ActionError, match="uncommitted v2 .* does not extend the object's"):
        run_one("custody", jobs("custody", trigger="MOVED")[0])
    assert inventory(env.connection_string)["head"] == "v1"   # committed, the object failed ocfl-py (E101, E050)


def test_a_version_left_by_a_stopped_run_of_an_asset_deleted_since_is_committed_and_counted(env, pres, jobs,
                                                                                          monkeypatch):
    """The asset was deleted after the stopped run: the next run commits its v1 (custody outlives the source), then
    finds the asset gone. The journal said only `skipped: not found` and the new object went uncounted (until its
    prefix's audit): the event's outcome has neither the version committed nor the count."""
    resume = stop_before_the_objects_inventory(monkeypatch)
    with pytest.raises(RuntimeError):
        run_one("custody", jobs("custody")[0])
    resume()
    [raw] = jobs("custody", trigger="MOVED")
    pres.remove_asset(ASSET)
    outcome = run_one("custody", raw)
    assert inventory(env.connection_string)["head"] == "v1"   # committed
    assert (outcome.state, outcome.reason) == ("skipped", "not found (the copy is kept); v1, left by a stopped run, "
                                                          "committed")
    assert written() == 1 and outcome.extra["custody_version"] == "v1"


def test_a_resumed_first_version_is_counted_when_the_run_then_fails(env, pres, jobs, monkeypatch):
    """The run commits the stopped run's v1, then Preservica fails it. Before, only a run that returned counted its
    new object, so this one waited for its prefix's audit; the retry finds the object and counts nothing."""
    resume = stop_before_the_objects_inventory(monkeypatch)
    with pytest.raises(RuntimeError):
        run_one("custody", jobs("custody")[0])
    resume()
    pres.fail_next(50, 500, path_prefix=f"/api/entity/information-objects/{ASSET}")   # every retry of the asset read
    with pytest.raises(Exception):  # noqa: B017 (whatever the client makes of the 500s: the count is the point)
        run_one("custody", jobs("custody", trigger="MOVED")[0])
    assert inventory(env.connection_string)["head"] == "v1" and written() == 1
    pres.clear_failures()
    assert run_one("custody", jobs("custody", trigger="MOVED")[0]).reason == "no change (v1)"
    assert written() == 1
