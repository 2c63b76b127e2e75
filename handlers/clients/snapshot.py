"""What the actions need to know about an entity from Preservica, read once per event.

The dispatcher takes a snapshot for each event whose routed actions declare `reads` (the union of
their parts), and the action messages carry it: no action asks Preservica for the asset again.
Parts: "summary" (title, description, security tag, parent, metadata fragment schemas: the one
entity GET), "identifiers" (one more GET, unless the delivery carried them), "files" (the bitstream
walk, several GETs: only the Teams card's file list reads it, and shows the first 20), "visibility"
(an asset's `hidden`, from the same GET as the summary). What Preservica
says is kept as it is (a cut list of fragments or identifiers would make an action act on a wrong
picture); an event whose snapshot does not fit a queue message goes without one (messages.pack), and
its action reads Preservica itself.
"""
from __future__ import annotations

from ..core.errors import NotFound

PARTS = frozenset({"summary", "identifiers", "files", "visibility"})
MAX_FILES = 20  # what a card lists


def payload_identifiers(event: dict) -> list[list[str]] | None:
    """Identifiers a delivery carries (subscriptions made with includeIdentifiers=true), as [type, value]
    pairs. No public schema documents their shape: {type: value} and {"type": .., "value": ..} entries
    are read; None (ask Preservica) when there are none or any entry has another shape."""
    found = []
    for item in event.get("identifiers") or []:
        if isinstance(item, dict) and set(item) == {"type", "value"}:
            found.append([str(item["type"]), str(item["value"])])
        elif isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), (str, int)):
            found += [[str(k), str(v)] for k, v in item.items()]
        else:
            return None
    return found or None


def take(api, entity_type: str, ref: str, parts: frozenset[str], event: dict | None = None) -> dict:
    """The snapshot of one entity: {"gone": True} if Preservica no longer has it, {} for content objects."""
    from pyPreservica.common import EntityType, ReferenceNotFoundException
    kind = {"IO": EntityType.ASSET, "SO": EntityType.FOLDER}.get(entity_type)
    if kind is None or not ref:
        return {}
    try:
        e = asset_now(api, ref) if kind is EntityType.ASSET else api.entity(kind, ref)
    except (ReferenceNotFoundException, NotFound):
        return {"gone": True}
    snap = {"parts": sorted(parts | {"summary"}), "title": e.title, "description": e.description,
            "securityTag": e.security_tag, "parent": e.parent, "metadata": dict(e.metadata or {})}
    if "visibility" in parts:
        snap["hidden"] = bool(getattr(e, "hidden", False))
    if "identifiers" in parts:
        ids = payload_identifiers(event or {})
        snap["identifiers"] = ids if ids is not None else [[t, v] for t, v in sorted(api.identifiers_for_entity(e))]
    if "files" in parts and entity_type == "IO":
        files = sorted((b.filename or "?", _int(b.length)) for b in api.bitstreams_for_asset(e))
        snap["files"] = [[n, s] for n, s in files[:MAX_FILES]]
        snap["fileCount"] = len(files)
    return snap


def asset_now(api, ref: str):
    """The asset (pyPreservica's Asset) with `.hidden`, which the SDK drops: the URL and parse of its
    EntityAPI.asset() (entityAPI.py) from one same-server GET whose document is also read for visibility
    (core.iiif.is_hidden). 404: NotFound."""
    import xml.etree.ElementTree as ET

    from pyPreservica.common import Asset

    from ..core import iiif
    from .preservica_http import get_xml
    root = get_xml(api, f"{api.protocol}://{api.server}/api/entity/information-objects/{ref}")
    fields = api.entity_from_string(ET.tostring(root, encoding="unicode"))
    asset = Asset(fields["reference"], fields["title"], fields["description"], fields["security_tag"],
                  fields["parent"], fields["metadata"])
    asset.hidden = iiif.is_hidden(root)
    return asset


def entity(entity_type: str, ref: str, snap: dict):
    """A pyPreservica entity built from a snapshot, for calls that take one (thumbnail, metadata writes)
    without reading the entity again. NotFound for a snapshot of a deleted entity."""
    from pyPreservica.common import Asset, Folder
    if snap.get("gone"):
        raise NotFound()
    cls = {"IO": Asset, "SO": Folder}[entity_type]
    return cls(ref, snap.get("title"), snap.get("description"), snap.get("securityTag"), snap.get("parent"),
               dict(snap.get("metadata") or {}))


def covers(snap: dict | None, parts: frozenset[str]) -> bool:
    """Whether a snapshot answers for `parts` (a deleted entity or a content object answers for all)."""
    if snap is None:
        return False
    return bool(snap.get("gone")) or snap == {} or parts <= set(snap.get("parts") or ())


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
