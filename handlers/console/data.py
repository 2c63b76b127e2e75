"""What the console reads, every read bounded.

The journal is partitioned by day (inverted, newest first) and its RowKeys start with the inverted
time of the delivery, so "the last 48 hours" is at most three partitions, each one RowKey range, and
"events, newest first" is one partition at a time from the newest. The overview reads the window
(only the columns it counts) up to OVERVIEW_CAP rows and says when it stopped there: at 3,000 events
a night that is ~6,000 rows, six pages of 1,000. No count is kept at write time, so the dispatcher
and the runner stay as they are.
"""
from __future__ import annotations

import datetime as dt
import itertools
import re

from ..core import envelope, journal, settings

OVERVIEW_CAP = 20_000     # rows the overview reads at most (~3x two busy nights)
PAGE_SIZE = 50            # events per page
MAX_DAYS = 31             # the widest date range one events page looks through
REJECTED_CAP = 1_000      # rejected-delivery blobs listed at most (the container expires them)
MAX_BODY_SHOWN = 64 * 1024
AHEAD_HOURS = 14          # the furthest a delivery's own time stamp can be ahead of UTC (UTC+14)
_PK = re.compile(r"\d{8}|undated")
_RK = re.compile(r"[0-9a-f-]{1,80}")
_DID = re.compile(r"[0-9a-f]{32}")


def valid_pk(pk: str) -> bool:
    return bool(_PK.fullmatch(pk or ""))


def valid_rk(rk: str) -> bool:
    return bool(_RK.fullmatch(rk or ""))


def valid_did(did: str) -> bool:
    return bool(_DID.fullmatch(did or ""))


def _query(book, query: str, params: dict, select: list[str] | None, limit: int) -> list[dict]:
    from azure.core.exceptions import ResourceNotFoundError
    pages = book.table.query_entities(query, parameters=params, select=select, results_per_page=min(limit, 1000))
    try:
        return [dict(e) for e in itertools.islice(pages, limit)]
    except ResourceNotFoundError:  # no journal table yet (a local run before its first delivery)
        return []


def row_prefix(when: dt.datetime) -> str:
    """The RowKey prefix of deliveries stamped `when` (the journal's own rule)."""
    return journal.row_prefix(envelope.Delivery("", when.isoformat(), "", "", "", ()), "")


def window_rows(book, actions: list[str], now: dt.datetime, hours: int = 48,
                cap: int = OVERVIEW_CAP) -> tuple[list[dict], bool]:
    """Rows of deliveries stamped in the last `hours` (only the columns the overview counts), newest
    first, at most `cap`; and whether the cap cut it short."""
    since = now - dt.timedelta(hours=hours)
    # Preservica stamps local time without a zone, read as UTC: a server east of UTC is up to 14 h "ahead".
    ahead = now + dt.timedelta(hours=AHEAD_HOURS)
    select = ["PartitionKey", "RowKey", "trigger", "timestamp"] + [f"{a}_state" for a in actions]
    days = [(ahead - dt.timedelta(days=i)).date() for i in range((ahead.date() - since.date()).days + 1)]
    rows: list[dict] = []
    for day in days:
        params = {"pk": journal.day_partition(day), "lo": row_prefix(ahead), "hi": row_prefix(since) + "\uffff"}
        rows += _query(book, "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi", params, select,
                       cap + 1 - len(rows))
        if len(rows) > cap:
            return rows[:cap], True
    return rows, False


def day_range(start: dt.date | None, end: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date, bool]:
    """The days an events page looks through: the last 7 by default, at most MAX_DAYS (clipped: True)."""
    end = min(end or today, today + dt.timedelta(days=1))
    start = start or end - dt.timedelta(days=6)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        return end - dt.timedelta(days=MAX_DAYS - 1), end, True
    return start, end, False


def events_page(book, actions: list[str], start: dt.date, end: dt.date, undated: bool, after: str | None = None,
                trigger: str = "", action: str = "", state: str = "", ref: str = "",
                size: int = PAGE_SIZE) -> tuple[list[dict], str | None]:
    """One page of events, newest first, filtered by the service; and the cursor of the next page.
    `action` and `state` must be checked by the caller (they name a column)."""
    clauses, params = [], {}
    if trigger:
        clauses.append("trigger eq @trigger")
        params["trigger"] = trigger
    if ref:
        clauses.append("entityRef eq @ref")
        params["ref"] = ref
    if state:
        params["state"] = state
        cols = [action] if action else actions
        # The SDK substitutes a parameter only as a word of its own: spaces round the brackets.
        clauses.append("( " + " or ".join(f"{a}_state eq @state" for a in cols) + " )")
    elif action:
        clauses.append(f"{action}_state gt @empty")
        params["empty"] = ""
    pks = [journal.day_partition(end - dt.timedelta(days=i)) for i in range((end - start).days + 1)]
    pks += ["undated"] if undated else []
    after_pk, _, after_rk = (after or "").partition("|")
    if after and not (valid_pk(after_pk) and valid_rk(after_rk)):
        after_pk = after_rk = ""
    if after_pk in pks:
        pks = pks[pks.index(after_pk):]
    rows: list[dict] = []
    for pk in pks:
        q = ["PartitionKey eq @pk"] + clauses
        p = {**params, "pk": pk}
        if pk == after_pk and after_rk:
            q.append("RowKey gt @after")
            p["after"] = after_rk
        rows += _query(book, " and ".join(q), p, None, size + 1 - len(rows))
        if len(rows) > size:
            last = rows[size - 1]
            return rows[:size], f"{last['PartitionKey']}|{last['RowKey']}"
    return rows, None


def event(book, pk: str, rk: str) -> dict | None:
    if not (valid_pk(pk) and valid_rk(rk)):
        return None
    return book.get(pk, rk)


def _blob(store, container: str, name: str, limit: int = MAX_BODY_SHOWN) -> tuple[bytes, int] | None:
    """The first `limit` bytes of a blob and its size, or None when it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError
    client = store.blob_service().get_blob_client(container, name)
    try:
        stream = client.download_blob(offset=0, length=limit)
        return stream.readall(), stream.properties.size
    except ResourceNotFoundError:
        return None


def delivery_body(store, did: str) -> tuple[bytes, int] | None:
    """A delivery's body from its claim-check blob (only deliveries too large for one queue message have one)."""
    return _blob(store, settings.DELIVERY_CONTAINER, f"{did}.json") if valid_did(did) else None


def rejected_body(store, did: str) -> tuple[bytes, int] | None:
    return _blob(store, settings.REJECTED_CONTAINER, f"{did}.bin") if valid_did(did) else None


def rejected(store, since: dt.datetime, cap: int = REJECTED_CAP) -> tuple[list[dict], bool]:
    """Rejected deliveries (400s) kept since `since`, newest first; listing stops after `cap` blobs."""
    from azure.core.exceptions import ResourceNotFoundError
    container = store.blob_service().get_container_client(settings.REJECTED_CONTAINER)
    found, listed = [], 0
    try:
        for b in container.list_blobs(include=["metadata"], results_per_page=min(cap, 1000)):
            listed += 1
            if listed > cap:
                break
            if b.last_modified and b.last_modified >= since:
                meta = b.metadata or {}
                found.append({"id": b.name.removesuffix(".bin"), "received": meta.get("received") or str(b.last_modified),
                              "reason": meta.get("reason", ""), "size": b.size})
    except ResourceNotFoundError:
        return [], False
    return sorted(found, key=lambda r: r["received"], reverse=True), listed > cap


GAP_FIELDS = ("at", "start", "end", "found", "delivered", "queued", "unusable", "requests", "complete", "error")


def last_gap_report(store=None) -> dict | None:
    """The reconciler's last run report (table `reconcile`, partition `runs`, newest first), or None."""
    from ..clients import reconcile_state
    reports = reconcile_state.default().reports(1)
    if not reports:
        return None
    return {k: reports[0][k] for k in GAP_FIELDS if k in reports[0]}


SWEEP_FIELDS = ("at", "checked", "withdrawn", "updated", "busy", "requests", "complete", "error")


def last_sweep_report() -> dict | None:
    """The public sweep's last run report (table `reconcile`, partition `sweep-runs`), or None."""
    from ..clients import reconcile_state
    reports = reconcile_state.default().reports(1, partition="sweep-runs")
    return {k: reports[0][k] for k in SWEEP_FIELDS if k in reports[0]} if reports else None


def custody_status() -> tuple | None:
    """The custody copy's coverage and last audit, read as `hookops custody status` reads them (two rows of
    the reconciler's table, never a listing of the copy: handlers/clients/custody_tally.py); None when no
    trigger routes the custody action."""
    from ..core.errors import SettingsError
    from ..pipeline import registry
    try:
        if "custody" not in registry.routes().all_actions():
            return None
    except SettingsError:   # PRESERVICA_ROUTES unreadable: the dispatcher says so; the overview still shows
        return None
    from ..clients import custody_tally
    return custody_tally.status(audits=1)
