"""Which instances of the app are alive now: each process keeps a row of its own fresh in the reconcile
table (partition `instances`), and counts the rows written within the last TTL seconds. What shares one
budget across the app (ratelimit.SharedBudget) divides it by that count.

Times are the Table service's own (each row's `Timestamp`, "maintained on the server side to record the
time an entity was last modified": learn.microsoft.com/rest/api/storageservices/understanding-the-table-
service-data-model), compared
with the one this process just wrote: the instances' clocks may disagree, the service's is one clock.
"""
from __future__ import annotations

import os
import uuid

from ..core import settings

PARTITION = "instances"
_RANDOM = uuid.uuid4().hex[:12]


def instance_id(env=None) -> str:
    """This process. The host's own instance id: WEBSITE_INSTANCE_ID, or CONTAINER_NAME on Linux
    consumption plans (azure-functions-host src/WebJobs.Script/Environment/EnvironmentExtensions.cs,
    GetInstanceId); WEBSITE_POD_NAME is what Flex Consumption sets for the pod (the host's Flex
    container tests set it; inferred that it names the instance). Else a random id per process. The
    process id is added: an instance may run several language worker processes, each with its own bucket."""
    env = os.environ if env is None else env
    host = next((env[k] for k in ("WEBSITE_INSTANCE_ID", "WEBSITE_POD_NAME", "CONTAINER_NAME") if env.get(k)), _RANDOM)
    return f"{host[:200]}-{os.getpid()}"


class Heartbeat:
    def __init__(self, table, me: str, ttl: float):
        self.table, self.me, self.ttl = table, me, ttl
        self.rank = 0

    def beat(self) -> int:
        """Write this process's row, then count the rows written within `ttl` seconds of it (at least 1).
        Raises what storage raises: the caller decides what an unknown count means."""
        from azure.data.tables import UpdateMode

        from .journal import table_call
        table_call(self.table, lambda: self.table.upsert_entity(
            {"PartitionKey": PARTITION, "RowKey": self.me}, mode=UpdateMode.REPLACE))
        rows = table_call(self.table, lambda: list(self.table.query_entities(
            f"PartitionKey eq '{PARTITION}'", select=["RowKey", "Timestamp"])))
        stamps = {r["RowKey"]: r.metadata["timestamp"] for r in rows}
        mine = stamps.get(self.me)
        if mine is None:  # our own write is not there to be read: the count is not known
            raise LookupError("this instance's heartbeat row was not read back")
        live = sorted(rk for rk, t in stamps.items() if (mine - t).total_seconds() < self.ttl)
        self.rank = live.index(self.me)  # this process's place among the live ones: who takes a remainder
        return len(live)

    def leave(self) -> None:
        """On a clean stop: this process's share goes back at once rather than after `ttl`."""
        self.table.delete_entity(PARTITION, self.me)


def default(ttl: float) -> Heartbeat:
    from . import storage
    return Heartbeat(storage.default().table(settings.RECONCILE_TABLE), instance_id(), ttl)
