"""Writing one of the app's metadata fragments on an asset: replace the fragment of its schema, or add one, never a
second (`catalogue`, `ocr`, `transcribe`).

Preservica's fragment API has no conditional write: pyPreservica's add_metadata is a plain POST and
update_metadata a PUT to each fragment URL the entity lists (entityAPI.py). So whether to add is decided from the
asset's fragments as read now, under a lease on `metadata/<ref>` (publish_lock's container), held only for the
read and the write: two runs of one asset (two events, a backfill beside the webhook, two instances) would
otherwise both see none and both add. An entity already in hand (the dispatcher's snapshot) is trusted only when
it lists the schema: its fragment URLs are Preservica's, and one deleted since (404 to the PUT) sends the write
to a new read, not to `not found`. A snapshot that lists none may be minutes old: that add is decided on a new read.
Busy (the lease held 75 s) puts the event back on its queue, as publish's and custody's do (pipeline.waits).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def write(service, secrets, ref: str, schema: str, xml: str | Callable[[Any], str], known=None) -> str:
    """"replaced" or "added". `known`: the asset as the event's snapshot has it, used when it lists the schema.
    `xml` may be made from the asset as read for the write, under the lease (never `known`): its tag and whether
    it is hidden are the ones at the write (fragment_text.py)."""
    from pyPreservica.common import HTTPException  # here: actions import this module at their import

    from . import preservica, publish_lock, snapshot

    def work(api) -> str:
        if known is not None and not callable(xml) and schema in (known.metadata or {}).values():
            try:
                return api.write_metadata(known, schema, xml)
            except HTTPException as exc:
                if exc.http_status_code != 404:
                    raise
        # pyPreservica's entity() GET, parsed as it parses it, with `hidden` besides (snapshot.asset_now).
        asset = snapshot.asset_now(api, ref)
        return api.write_metadata(asset, schema, xml(asset) if callable(xml) else xml)
    with publish_lock.held(service, f"metadata/{ref}", doing="writing a metadata fragment of"):
        return preservica.call(secrets, work)
