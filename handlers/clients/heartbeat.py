"""Which instances of the app are calling Preservica now, and at what rate: each process keeps a row of its
own fresh in the reconcile table (partition `instances`) carrying its claim (the rate it may be using) and
whether it wants any now, and reads the rows written within the last TTL seconds. ratelimit.SharedBudget divides
the budget among those that want, less what all of them claim.

Write, then read: the query runs after our own upsert has returned, and Azure Storage is strongly consistent
(a write that returned is what every later read sees: learn.microsoft.com/azure/storage/common/storage-
redundancy, "Azure Storage ... strong consistency"; the Table service promises it for entity operations,
learn.microsoft.com/azure/storage/tables/table-storage-design-guidelines). So of two processes counting at
once, at least one sees the other's claim; ratelimit.py builds its invariant on that.

Times are the Table service's own (each row's `Timestamp`, "maintained on the server side to record the
time an entity was last modified": learn.microsoft.com/rest/api/storageservices/understanding-the-table-
service-data-model), compared
with the one this process just wrote: the instances' clocks may disagree, the service's is one clock.
"""
from __future__ import annotations

import os
import uuid
from typing import NamedTuple

from ..core import settings

PARTITION = "instances"
STALE_SECONDS = 600.0   # a row not written for this long is a process gone without leaving: counting ones write
                        # within seconds, and an idle one deletes its own row
CLEAR_AT_ONCE = 5       # stale rows one count deletes, at most
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
        self.wanting = 0               # the other live rows that want a share now
        self.etag: str | None = None   # of this process's last write of its row

    def beat(self, claim: float = 0.0) -> dict[str, float]:
        """Write this process's row with `claim`, wanting a share, then read the rows written within `ttl`
        seconds of it: {row: claim} of the others. One upsert, one query (the SDK follows continuation pages
        itself). Raises what storage raises: the caller decides what an unknown count means."""
        from azure.data.tables import UpdateMode

        from .tables import table_call
        written = table_call(self.table, lambda: self.table.upsert_entity(
            {"PartitionKey": PARTITION, "RowKey": self.me, "claim": float(claim), "wants": True},
            mode=UpdateMode.REPLACE))
        # azure-data-tables _table_client.py upsert_entity returns _trim_service_metadata(...): date, etag, version.
        self.etag = (written or {}).get("etag")
        rows = _read(self.table)
        stamps = {r["RowKey"]: r.metadata["timestamp"] for r in rows}
        mine = stamps.get(self.me)
        if mine is None:  # our own write is not there to be read: the count is not known
            raise LookupError("this instance's heartbeat row was not read back")
        live = sorted(rk for rk, t in stamps.items() if (mine - t).total_seconds() < self.ttl)
        resting = {r["RowKey"] for r in rows if r.get("wants") is False}   # only as rest() writes it: else it wants
        wanting = [rk for rk in live if rk == self.me or rk not in resting]
        self.rank, self.wanting = wanting.index(self.me), len(wanting) - 1   # its place: who takes a remainder
        claims = {r["RowKey"]: _rate(r.get("claim")) for r in rows}
        self._clear([r for r in rows if (mine - r.metadata["timestamp"]).total_seconds() > STALE_SECONDS])
        return {rk: claims[rk] for rk in live if rk != self.me}

    def _clear(self, stale: list) -> None:
        """Delete rows of processes gone without leaving (killed while busy), a few per count: no count uses
        them, but every count reads them. Each only as read (If-Match on the etag the query gave: azure-data-tables
        _deserialize.py puts each entity's odata.etag in its metadata): a row written since stays."""
        from azure.core import MatchConditions
        for row in stale[:CLEAR_AT_ONCE]:
            try:
                self.table.delete_entity(PARTITION, row["RowKey"], etag=row.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)
            except Exception:   # another count deleted it first, it was written again, or storage refuses: next time
                pass

    def rest(self, claim: float, etag: str | None) -> str | None:
        """No request wanted for a while (ratelimit's watcher): the row claims only `claim` (what is still in
        this process's window) and wants none, so the others' fair shares leave it out. Only over the row as the
        write with `etag` left it (If-Match: learn.microsoft.com/rest/api/storageservices/update-entity2): a
        count since, wanting again, stays. Returns the new etag; raises what storage raises (412 included)."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode
        if etag is None:
            raise LookupError("no write of this row to rest from")
        written = self.table.update_entity(
            {"PartitionKey": PARTITION, "RowKey": self.me, "claim": float(claim), "wants": False},
            mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
        return (written or {}).get("etag")   # _table_client.py update_entity: the service's metadata, etag with it

    def leave(self, etag: str | None = None) -> None:
        """Idle (ratelimit's watcher) or on a clean stop: this process's share goes back at once rather than
        after `ttl`. With `etag`, only the row as that write left it: a row written since (this process
        registering again) stays (the service answers 412: learn.microsoft.com/rest/api/storageservices/
        delete-entity1, If-Match)."""
        if etag is None:
            self.table.delete_entity(PARTITION, self.me)
            return
        from azure.core import MatchConditions
        self.table.delete_entity(PARTITION, self.me, etag=etag, match_condition=MatchConditions.IfNotModified)


def _read(table, **kwargs) -> list:
    """Every row of the partition (the SDK follows continuation pages itself), the columns a count reads."""
    from .tables import table_call
    return table_call(table, lambda: list(table.query_entities(
        f"PartitionKey eq '{PARTITION}'", select=["RowKey", "Timestamp", "claim", "wants"], **kwargs)))


class Row(NamedTuple):
    """A process's row as `hookops budget` shows it."""
    process: str
    claim: float        # as the others read it: not a rate counts as the whole budget (_rate)
    wants: bool
    age: float | None   # seconds between its write and the service's clock at the read; None: not said
    live: bool          # written within `ttl` of the read: in the others' counts


def look(table, ttl: float) -> list[Row]:
    """Every row of the partition, oldest write last, aged by the Table service's own clock (the answer's `Date`
    header: RFC 9110, whole seconds, so to half a second), never the reader's. Read only: the reader writes no row
    and is counted by no one."""
    said: list = []

    def date(response) -> None:   # each page's PipelineResponse (azure/core/pipeline/policies/_custom_hook.py)
        said.append(response.http_response.headers.get("Date"))
    rows = _read(table, raw_response_hook=date)
    now = service_time(said[-1] if said else None)
    ages = [None if now is None else max(0.0, (now - r.metadata["timestamp"]).total_seconds()) for r in rows]
    seen = [Row(r["RowKey"], _rate(r.get("claim")), r.get("wants") is not False, age, age is not None and age < ttl)
            for r, age in zip(rows, ages, strict=True)]
    return sorted(seen, key=lambda r: (r.age is None, r.age or 0.0, r.process))


def service_time(date: str | None):
    """An answer's `Date` header as an aware datetime, or None: whole seconds (RFC 9110), so the middle of the
    second it names, off by half a second at most; "-0000" parses without a zone, and HTTP dates are GMT."""
    import datetime as dt
    from email.utils import parsedate_to_datetime
    try:
        now = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None
    if now is None:
        return None
    return (now if now.tzinfo else now.replace(tzinfo=dt.UTC)) + dt.timedelta(seconds=0.5)


def _rate(value) -> float:
    """A claim as written by beat(); anything else in the row (an older version's row has none, a careless
    hand may edit one) counts as the whole of a large budget would: the reader holds back rather than exceed."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return float("inf")
    return rate if 0 <= rate < float("inf") else float("inf")


def default(ttl: float) -> Heartbeat | None:
    """This process's heartbeat in the app's table; None where no app storage is configured (a lone process:
    the Functions host itself cannot start without AzureWebJobsStorage)."""
    from ..core.errors import StorageNotConfigured
    from . import storage
    try:
        table = storage.default().table(settings.RECONCILE_TABLE)
    except StorageNotConfigured:
        return None
    return Heartbeat(table, instance_id(), ttl)
