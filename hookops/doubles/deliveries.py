"""Build Preservica-shaped deliveries for tests and benchmarks."""
from __future__ import annotations

import json
import uuid

from handlers.core.envelope import is_ref


def ref(name: str) -> str:
    """A Preservica reference (a UUID) for a readable test name; a UUID is kept as it is."""
    return name if is_ref(name) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-asset:{name}"))


def delivery(trigger: str = "FULL_TEXT_INDEXED", refs=("ref-1",), entity_type: str = "IO",
             timestamp: str = "2026-11-29T10:00:00.000", subscription: str | None = None) -> dict:
    return {"subscriptionId": subscription or uuid.uuid4().hex, "timestamp": timestamp, "tenant": "TEST",
            "version": "7.7", "trigger": trigger,
            "events": [{"event": "FullTextIndexed", "entityType": entity_type, "entityRef": ref(r), "identifiers": []}
                       for r in refs]}


def encode(doc: dict) -> bytes:
    return json.dumps(doc).encode("utf-8")
