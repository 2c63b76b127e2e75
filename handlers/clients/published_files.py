"""Which asset a published content object's files are under: a row per content object (partition
`published-files` of the reconcile table), written by `publish` before it copies that object's files.

Why: a deleted content object reaches the app only as its own ref. Preservica's updated-since lists it as
`<Entity ref=… deleted="true">` with no type and no parent (eventlog.py), and a GET of it is 404, so nothing
in Preservica says any more which asset held it. Its files are public under `<asset>/files/<co>-…`; without this
row only the daily sweep would find them. A row is only a pointer: `publish` then converges that asset, which
decides by what the asset says in Preservica now, so a stale or hand-edited row publishes nothing. Rows are
never deleted (a pointer to an asset that has since closed or gone converges it to nothing): one small row per
content object ever published.
"""
from __future__ import annotations

from collections.abc import Iterable

PARTITION = "published-files"


def remember(table, asset: str, content_objects: Iterable[str]) -> None:
    """Record `asset` as the holder of each content object: one transaction per 100, upserts (idempotent)."""
    from azure.data.tables import UpdateMode

    from .journal import IDEMPOTENT, TRANSACTION_MAX, table_call
    ops = [("upsert", {"PartitionKey": PARTITION, "RowKey": co, "asset": asset}, {"mode": UpdateMode.REPLACE})
           for co in sorted(set(content_objects))]
    for i in range(0, len(ops), TRANSACTION_MAX):
        table_call(table, lambda batch=ops[i:i + TRANSACTION_MAX]: table.submit_transaction(batch, **IDEMPOTENT))


def holder(table, content_object: str) -> str | None:
    """The asset last recorded for this content object (None: none). Not checked here: callers build no name from
    it before iiif.blob_ref says it is a UUID."""
    from .journal import get_row
    row = get_row(table, PARTITION, content_object)
    value = (row or {}).get("asset")
    return value if isinstance(value, str) else None


def table(storage):
    """The rows' table, on the app's storage (`storage.default()` or an action's `ctx.storage`)."""
    from ..core import settings
    return storage.table(settings.RECONCILE_TABLE)
