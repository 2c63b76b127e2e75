"""Appending to the IIIF Change Discovery activity stream, safely under concurrent publishes.

The stream is `activity/collection.json` plus pages `activity/page-<n>.json` of at most PAGE_SIZE
activities, oldest first. Only the last page ever changes; full pages are immutable (but for their
`next` link, added once). An append reads the last page with its ETag and writes it back only if
that ETag still holds (a new page: only if it does not exist yet); a writer that lost the race reads
again and retries. So two instances publishing at once never drop each other's activity, the order
of the pages is the order the writes took effect, and each activity's endTime is at least its
predecessor's (clocks of two instances may differ slightly), so a harvester that walks back from
the last page until an endTime older than its previous visit misses nothing.
The collection document changes only when a page is added (its `last` link).
"""
from __future__ import annotations

import json

from ..core import iiif
from ..core.errors import StorageUnavailable
from .public_store import PublicStore

PAGE_SIZE = 100
TRIES = 50


def _load(data: bytes | None) -> dict | None:
    return json.loads(data) if data else None


def append(store: PublicStore, kind: str, object_id: str, page_size: int = PAGE_SIZE) -> dict:
    """Add one Create/Update/Delete activity; returns it (with the endTime it got)."""
    for _ in range(TRIES):
        data, collection_etag = store.read(iiif.COLLECTION)
        collection = _load(data)
        index = _index(collection["last"]["id"]) if collection else 0
        page_data, etag = store.read(iiif.page_name(index))
        page = _load(page_data)
        previous: dict | None = None
        while page is not None and len(page["orderedItems"]) >= page_size:   # full: the next one (the
            previous, index = page, index + 1                                 # collection may lag behind)
            page_data, etag = store.read(iiif.page_name(index))
            page = _load(page_data)
        items = page["orderedItems"] if page else []
        last = items[-1] if items else (previous["orderedItems"][-1] if previous else None)
        end = max(iiif.now(), last["endTime"]) if last else iiif.now()
        item = iiif.activity(kind, object_id, end)
        doc = iiif.page_doc(store.base, index, items + [item], has_next=False)
        if not store.write_if(iiif.page_name(index), iiif.inert_json(doc), etag if page else None):
            continue   # another writer got there first: read again
        if previous is not None and "next" not in previous:
            _link_next(store, index - 1, page_size)
        if collection is None or _index(collection["last"]["id"]) < index:
            _advance(store, index)
        return item
    raise StorageUnavailable(f"the activity stream stayed busy for {TRIES} attempts")


def _index(page_id: str) -> int:
    return int(page_id.rsplit("page-", 1)[1].removesuffix(".json"))


def _link_next(store: PublicStore, index: int, page_size: int) -> None:
    """A full page gets its `next` link once the page after it exists (it changes in no other way)."""
    for _ in range(TRIES):
        data, etag = store.read(iiif.page_name(index))
        page = _load(data)
        if page is None or "next" in page:
            return
        doc = iiif.page_doc(store.base, index, page["orderedItems"], has_next=True)
        if store.write_if(iiif.page_name(index), iiif.inert_json(doc), etag):
            return


def _advance(store: PublicStore, index: int) -> None:
    """Point the collection's `last` at page `index`, unless another writer already moved it further."""
    for _ in range(TRIES):
        data, etag = store.read(iiif.COLLECTION)
        current = _load(data)
        if current is not None and _index(current["last"]["id"]) >= index:
            return
        if store.write_if(iiif.COLLECTION, iiif.inert_json(iiif.collection_doc(store.base, index)), etag):
            return
