"""The journal in Table Storage: claims, merges and queries of the rows core/journal.py shapes.
Its callers get the states and columns from here too (re-exported), so one import serves them."""
from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..core.errors import Conflict as Conflict, RowsExist as RowsExist
from ..core.journal import (
    BUSY as BUSY,
    CLAIMED as CLAIMED,
    DONE as DONE,
    FAILED as FAILED,
    FINISHED as FINISHED,
    GONE as GONE,
    POSITION as POSITION,
    QUEUED as QUEUED,
    RUNNING as RUNNING,
    SKIPPED as SKIPPED,
    TERMINAL as TERMINAL,
    action_states as action_states,
    clip as clip,
    day_partition as day_partition,
    event_row as event_row,
    inverted_ms as inverted_ms,
    iso,
    live_claim,
    now_iso as now_iso,
    outcome_columns as outcome_columns,
    partition as partition,
    placed_before as placed_before,
    position as position,
    row_prefix as row_prefix,
    state_columns as state_columns,
    state_of as state_of,
    time_rows,
)
from .tables import table_call as table_call  # the journal's and every other table's calls

TRANSACTION_MAX = 100  # Table Storage's limit of operations in one transaction
ETAG = "_etag"
CLAIM_TRIES = 6
# An unconditional merge is idempotent: one that got no answer (its connection reset, before or after the service
# applied it) may be sent again. azure-core retries a POST (a transaction) or a PATCH (a merge: azure-data-tables
# _generated/operations/_operations.py) only on a 500, 503 or 504 answer, not on a reset connection
# (azure/core/pipeline/policies/_retry.py, _is_method_retryable; configure_retries reads retry_on_methods per call).
# Without it an action's outcome write that got none failed the message, and when the write had not been applied,
# the retry performed the action again: tests/test_pages_e2e.py saw a relay post 50 events twice under load.
# Every unconditional upsert of the app's tables passes it (published_files, reconcile_state too): a failed one
# fails its message or run, which then asks Preservica again.
IDEMPOTENT = {"retry_on_methods": frozenset({"POST", "PATCH"})}
T = TypeVar("T")


def get_row(table, pk: str, rk: str) -> dict | None:
    """A row of any of the app's tables with its ETag under ETAG, or None."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        e = table_call(table, lambda: table.get_entity(pk, rk))
    except ResourceNotFoundError:
        return None
    return {**e, ETAG: e.metadata["etag"]}


class Journal:
    def __init__(self, table_client):
        self.table = table_client

    def _call(self, fn: Callable[[], T]) -> T:
        return table_call(self.table, fn)

    def get(self, pk: str, rk: str) -> dict | None:
        """The row with its ETag under ETAG, or None."""
        return get_row(self.table, pk, rk)

    def claim(self, pk: str, rk: str, action: str, owner: str, lease_seconds: float) -> str:
        """Take (event, action) for `owner` with a conditional write, before any external effect.

        FINISHED: a terminal state is recorded. BUSY: another owner holds a live lease (its own
        message is retried by the host if it fails, so this copy can step back). CLAIMED: state is
        `running` for `owner` until the lease ends; the caller acts, then records the outcome.
        """
        for _ in range(CLAIM_TRIES):  # lost races re-read
            got = self._claim_once(pk, [rk], action, owner, lease_seconds)
            if got is not None:
                claimed, rows = got
                if claimed:
                    return CLAIMED
                return FINISHED if state_of(rows.get(rk), action) in TERMINAL else BUSY
        return BUSY

    def claim_many(self, pk: str, rks: list[str], action: str, owner: str, lease_seconds: float,
                   span: tuple[str, str] | None = None) -> set[str]:
        """claim() for a batch of one partition: one read (of the rows in `span`, its message's: rows_for)
        and one transaction per 100 rows. Returns the RowKeys claimed for `owner` (finished ones and ones
        another live owner holds are left out)."""
        unique = list(dict.fromkeys(rks))
        # The other actions of these events merge their own columns into the same rows meanwhile, and any
        # such write fails the whole conditional transaction: re-read and try again before one by one.
        for _ in range(CLAIM_TRIES):
            got = self._claim_once(pk, unique, action, owner, lease_seconds, span)
            if got is not None:
                return got[0]
        return {rk for rk in unique if self.claim(pk, rk, action, owner, lease_seconds) == CLAIMED}

    def _claim_once(self, pk: str, rks: list[str], action: str, owner: str, lease_seconds: float,
                    span: tuple[str, str] | None = None) -> tuple[set[str], dict[str, dict]] | None:
        """One read, then the claims as conditional writes in transactions of 100: (claimed RowKeys, rows
        read), or None when a row changed or appeared between the read and the write."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode
        rows = self.rows_for(pk, rks, span)
        now = dt.datetime.now(dt.UTC)
        lease = iso(now + dt.timedelta(seconds=lease_seconds))
        ops, claimed = [], set()
        for rk in rks:
            row = rows.get(rk)
            if state_of(row, action) in TERMINAL or live_claim(row, action, owner):
                continue
            cols = {"PartitionKey": pk, "RowKey": rk, f"{action}_state": RUNNING, f"{action}_owner": owner,
                    f"{action}_lease": lease, f"{action}_at": iso(now)}
            ops.append(("update", cols, {"mode": UpdateMode.MERGE, "etag": row[ETAG],
                                         "match_condition": MatchConditions.IfNotModified}) if row else ("create", cols))
            claimed.add(rk)
        try:
            for i in range(0, len(ops), TRANSACTION_MAX):
                self._call(lambda batch=ops[i:i + TRANSACTION_MAX]: self.table.submit_transaction(batch))
        except TableTransactionError as exc:
            if exc.status_code not in (409, 412):
                raise
            return None
        return claimed, rows

    def rows_at(self, pk: str, rks: Iterable[str]) -> dict[str, dict]:
        """The rows of these RowKeys that exist, each with its ETag: a point read each, the cheapest read
        Table Storage has (learn.microsoft.com/azure/storage/tables/table-storage-design-for-query)."""
        return {rk: row for rk in sorted(rks) if (row := self.get(pk, rk)) is not None}

    def rows_with_prefix(self, pk: str, prefix: str) -> dict[str, dict]:
        """Rows whose RowKey starts with `prefix`; each carries its ETag under ETAG."""
        return self.rows_between(pk, prefix, prefix + "\uffff")

    def placed(self, pk: str, rks: Iterable[str], first: str, last: str) -> dict[str, dict]:
        """The rows of these RowKeys whose POSITION is in [first, last], each with its ETag: one query of their
        RowKey range narrowed by POSITION. RowKeys are hashes, so a page's or a batch's range spans its whole
        delivery; the POSITION condition makes the service send only their rows, so what is read per event
        stays the same however many pages went before. (The service still walks the range: a condition on a
        property that is not a key filters it, with no index: learn.microsoft.com/azure/storage/tables/
        table-storage-design-for-query. OR-ed RowKey equalities would scan the whole day's partition, 14 a
        query at most: "Querying tables and entities" allows 15 comparisons.) A query the service cuts short
        (1,000 rows, 5 s: learn.microsoft.com/rest/api/storageservices/query-timeout-and-pagination) is
        continued by the SDK's pager."""
        rks = set(rks)
        query = (f"PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi and {POSITION} ge @first "
                 f"and {POSITION} le @last")
        params = {"pk": pk, "lo": min(rks), "hi": max(rks), "first": first, "last": last}
        return self._call(lambda: {e["RowKey"]: {**e, ETAG: e.metadata["etag"]}
                                   for e in self.table.query_entities(query, parameters=params) if e["RowKey"] in rks})

    def rows_for(self, pk: str, rks: Iterable[str], span: tuple[str, str] | None = None) -> dict[str, dict]:
        """The rows of these RowKeys that exist, each with its ETag. With the POSITION `span` of their message,
        only theirs are sent (placed); a RowKey not among them (its row moved to another delivery's position,
        or is not there) gets a point read. Without one, their RowKey range (a whole delivery's rows)."""
        rks = set(rks)
        if not rks:
            return {}
        if span is None:
            rows = self.rows_between(pk, min(rks), max(rks))
            return {rk: rows[rk] for rk in rks if rk in rows}
        rows = self.placed(pk, rks, *span)
        return {**rows, **self.rows_at(pk, rks - rows.keys())}

    def rows_between(self, pk: str, lo: str, hi: str) -> dict[str, dict]:
        """Rows lo <= RowKey <= hi (a batch's events, a delivery's rows: one query); each carries its ETag."""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi"
        params = {"pk": pk, "lo": lo, "hi": hi}
        return self._call(lambda: {e["RowKey"]: {**e, ETAG: e.metadata["etag"]}
                                   for e in self.table.query_entities(query, parameters=params)})

    def rows_in_time(self, lo: dt.datetime, hi: dt.datetime) -> list[dict]:
        """Rows of the events Preservica timed in [lo, hi]: one range query a day, few columns."""

        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi"
        cols = ["PartitionKey", "RowKey", "entityRef", "trigger", "timestamp", "source"]
        return [dict(e) for pk, lo_rk, hi_rk in time_rows(lo, hi) for e in self._call(lambda pk=pk, a=lo_rk, b=hi_rk: list(
            self.table.query_entities(query, parameters={"pk": pk, "lo": a, "hi": b}, select=cols)))]

    def merge(self, pk: str, rk: str, columns: dict) -> None:
        from azure.data.tables import UpdateMode
        entity = {"PartitionKey": pk, "RowKey": rk, **columns}
        self._call(lambda: self.table.upsert_entity(entity, mode=UpdateMode.MERGE, **IDEMPOTENT))

    def merge_many(self, entities: Iterable[dict]) -> int:
        """Upsert-merge entities in transactions of up to 100 per partition (IDEMPOTENT: a lost answer is sent again)."""
        from azure.data.tables import UpdateMode
        by_pk: dict[str, list[dict]] = {}
        for e in entities:
            by_pk.setdefault(e["PartitionKey"], []).append(e)
        count = 0
        for rows in by_pk.values():
            for i in range(0, len(rows), TRANSACTION_MAX):
                ops = [("upsert", e, {"mode": UpdateMode.MERGE}) for e in rows[i:i + TRANSACTION_MAX]]
                self._call(lambda ops=ops: self.table.submit_transaction(ops, **IDEMPOTENT))
                count += len(ops)
        return count

    def merge_if_unchanged(self, entities: Iterable[dict], seen: dict[str, dict]) -> int:
        """Merge rows that are as they were read (`seen`) and create the rest, in transactions of up to 100.
        A row changed meanwhile raises Conflict and leaves that transaction unapplied, so a state an action
        just finished is never put back to queued. A row created as new that was there (one the caller did
        not read, or created meanwhile) fails its transaction with 409: the other transactions are written,
        then RowsExist names that transaction's creates. `seen` is kept as stored: each written row with the
        ETag its transaction returned (azure-data-tables `submit_transaction`: one `etag` per operation)."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode
        ops = []
        for e in entities:
            before = seen.get(e["RowKey"])
            ops.append(("update", e, {"mode": UpdateMode.MERGE, "etag": before[ETAG],
                                      "match_condition": MatchConditions.IfNotModified}) if before else ("create", e))
        there: list[str] = []
        for i in range(0, len(ops), TRANSACTION_MAX):
            batch = ops[i:i + TRANSACTION_MAX]
            try:
                stored = self._call(lambda batch=batch: self.table.submit_transaction(batch))
            except TableTransactionError as exc:
                creates = [op[1]["RowKey"] for op in batch if op[0] == "create"]
                # EntityAlreadyExists is the 409 (learn.microsoft.com/rest/api/storageservices/table-service-error-codes);
                # a failed transaction applies none of its operations (.../performing-entity-group-transactions)
                if exc.status_code == 409 and creates:
                    there += creates
                    continue
                if exc.status_code in (409, 412):
                    raise Conflict("journal rows changed while they were being written") from exc
                raise
            for op, meta in zip(batch, stored, strict=True):
                rk = op[1]["RowKey"]
                if meta.get("etag"):
                    seen[rk] = {**seen.get(rk, {}), **op[1], ETAG: meta["etag"]}
                else:   # not said (inferred: the service always says): the row is read again if needed
                    seen.pop(rk, None)
        if there:
            raise RowsExist(there)
        return len(ops)

    def set_state(self, pk: str, rk: str, action: str, state: str, reason: str = "",
                  attempts: int | None = None, extra: dict | None = None) -> None:
        """Record an outcome; it also ends any claim (the lease column is cleared)."""
        self.merge(pk, rk, outcome_columns(action, state, reason, attempts, extra))

    def prune(self, older_than: dt.date) -> int:
        """Delete the rows of days before `older_than` (Table Storage has no expiry). Returns the count.
        Partitions are inverted days, so those days are one range: PartitionKey > the cut-off's key."""
        cut = day_partition(older_than)
        rows = self._call(lambda: [(e["PartitionKey"], e["RowKey"]) for e in self.table.query_entities(
            "PartitionKey gt @cut and PartitionKey lt @undated", parameters={"cut": cut, "undated": "undated"},
            select=["PartitionKey", "RowKey"])])
        by_pk: dict[str, list[tuple[str, str]]] = {}
        for pk, rk in rows:
            by_pk.setdefault(pk, []).append((pk, rk))
        for keys in by_pk.values():
            for i in range(0, len(keys), TRANSACTION_MAX):
                self._call(lambda batch=keys[i:i + TRANSACTION_MAX]: self.table.submit_transaction(
                    [("delete", {"PartitionKey": pk, "RowKey": rk}) for pk, rk in batch]))
        return len(rows)

    def recent(self, limit: int) -> list[dict]:
        def rows() -> list[dict]:
            return [dict(e) for e in itertools.islice(self.table.list_entities(results_per_page=min(limit, 1000)), limit)]
        return self._call(rows)


def default() -> Journal:
    from ..core import settings
    from . import storage
    return Journal(storage.default().table(settings.JOURNAL_TABLE))
