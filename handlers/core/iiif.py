"""IIIF documents for the `publish` action: the Presentation 3 Manifest (built with iiif-prezi3) and the
Change Discovery 1.0 activity stream pages. Pure, no I/O: the action streams, this describes.

Everything textual comes from Preservica and is untrusted: it only ever goes into JSON values (never a
blob path or an id), is cut to a bounded length, and a value that a IIIF client would read as HTML
(it starts with `<` and ends with `>`) is escaped inside a <span>, so it shows as the text it is.
The JSON is written with <, > and & as \\u escapes, so it is inert even if a page inlines it in a <script>.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .envelope import is_ref
from .media import Media

MAX_LABEL, MAX_SUMMARY, MAX_VALUE, MAX_METADATA = 1000, 10_000, 1000, 50
PRESENTATION_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
DISCOVERY_CONTEXT = "http://iiif.io/api/discovery/1/context.json"
MANIFEST_TYPE = f'application/ld+json;profile="{PRESENTATION_CONTEXT}"'


def blob_ref(ref: str) -> str | None:
    """The reference as it names blobs (lower case, so one asset has one prefix), or None if it is no UUID."""
    ref = (ref or "").strip()
    return ref.lower() if is_ref(ref) else None


def is_public(security_tag: str | None, public_tags: str | None, hidden: bool = False) -> bool:
    """Whether an asset may be published: its security tag is in PUBLIC_SECURITY_TAGS (comma separated)
    and it is not hidden."""
    allowed = {t.strip() for t in (public_tags or "").split(",") if t.strip()}
    return not hidden and security_tag is not None and security_tag.strip() in allowed


_HIDDEN_NAMES = {"hidden", "ishidden"}
_VISIBLE_NAMES = {"visible", "isvisible", "visibility"}


def is_hidden(entity: Any) -> bool:
    """Whether Preservica's entity document (its parsed ElementTree root) marks the asset hidden
    (CHANGE_ASSET_VISIBILITY). Inferred: no public source (pyPreservica, XIP schemas v6.0/6.2) shows how
    visibility appears in the entity document, so the rule is: an element (any namespace) named
    Hidden/IsHidden whose text is not `false`, or Visible/IsVisible/Visibility whose text is `false`,
    `hidden` or `private`, hides it."""
    for e in entity.iter():
        name, value = str(e.tag).rsplit("}", 1)[-1].lower(), (e.text or "").strip().lower()
        if name in _HIDDEN_NAMES and value != "false":
            return True
        if name in _VISIBLE_NAMES and value in ("false", "hidden", "private"):
            return True
    return False


def manifest_url(base: str, ref: str) -> str:
    return f"{base.rstrip('/')}/{ref}/manifest.json"


@dataclass(frozen=True)
class File:
    """A published file: its blob name under the asset's prefix (e.g. `files/<co>-1`) and what it is."""
    name: str
    media: Media
    label: str = ""


@dataclass
class Asset:
    ref: str
    title: str | None
    description: str | None                                # the summary's text
    identifiers: list[Any] = field(default_factory=list)      # [(type, value)]
    files: list[File] = field(default_factory=list)       # in the access representation's order
    thumbnail: File | None = None
    captions: str | None = None                            # blob name of a WebVTT file
    captions_on: str | None = None                         # the name of the file (its canvas) they caption
    rights: str | None = None
    required_statement: str | None = None
    summary_language: str = "none"                         # a BCP 47 tag, or "none" (Presentation 3.0 §4.3)


# Control characters and the bidirectional controls (Unicode TR9: embeddings, overrides, isolates, marks) of a
# Preservica title or description: a public page would show text other than what it says, or a terminal obey it.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def text(value: object, limit: int) -> str:
    out = _UNSAFE.sub("", str(value or "")).strip()[:limit]
    if out.startswith("<") and out.endswith(">"):
        return f"<span>{html.escape(out)}</span>"
    return out


def _lang(value: object, limit: int) -> dict[str, Any]:
    return {"none": [text(value, limit)]}


def manifest(asset: Asset, base: str) -> bytes:
    """The Manifest as bytes: one Canvas per image (its size) or audio/video file (its duration), the
    other files as `rendering`, captions as a supplementing annotation on the Canvas of the file they were made
    from (`captions_on`), and nowhere else."""
    from iiif_prezi3 import Annotation, AnnotationBody, AnnotationPage, KeyValueString, Manifest
    root = f"{base.rstrip('/')}/{asset.ref}"
    kw: dict[str, Any] = {"id": f"{root}/manifest.json", "label": _lang(asset.title or asset.ref, MAX_LABEL)}
    if asset.description:   # Presentation 3.0 §3.1 `summary`: a language map (§4.3), plain text unless it is HTML (§4.4)
        kw["summary"] = {asset.summary_language or "none": [text(asset.description, MAX_SUMMARY)]}
    pairs = [(t, v) for t, v in asset.identifiers if t and v][:MAX_METADATA]
    if pairs:
        kw["metadata"] = [KeyValueString(label=_lang(t, MAX_VALUE), value=_lang(v, MAX_VALUE)) for t, v in pairs]
    if asset.required_statement:
        kw["requiredStatement"] = KeyValueString(label={"en": ["Attribution"]},
                                                 value=_lang(asset.required_statement, MAX_SUMMARY))
    if asset.rights:
        kw["rights"] = asset.rights
    others = [f for f in asset.files if not f.media.paintable]
    if others:
        kw["rendering"] = [{"id": f"{root}/{f.name}", "type": f.media.kind, "format": f.media.content_type,
                            "label": _lang(f.label or f.name, MAX_LABEL)} for f in others]
    thumb = asset.thumbnail or next((f for f in asset.files if f.media.kind == "Image" and f.media.paintable), None)
    if thumb:
        kw["thumbnail"] = [_body(AnnotationBody, f"{root}/{thumb.name}", thumb.media)]
    doc = Manifest(**kw, items=[])
    for i, f in enumerate((f for f in asset.files if f.media.paintable), start=1):
        canvas_id = f"{root}/canvas/{i}"
        size = {"width": f.media.width, "height": f.media.height} if f.media.kind == "Image" \
            else {"duration": f.media.duration}
        painting = Annotation(id=f"{canvas_id}/painting", motivation="painting", target=canvas_id,
                              body=_body(AnnotationBody, f"{root}/{f.name}", f.media))
        canvas = doc.make_canvas(id=canvas_id, label=_lang(f.label or str(i), MAX_LABEL), **size,
                                 items=[AnnotationPage(id=f"{canvas_id}/page", items=[painting])])
        if asset.captions and f.name == asset.captions_on and f.media.kind in ("Sound", "Video"):
            canvas.annotations = [AnnotationPage(id=f"{canvas_id}/annotations", items=[Annotation(
                id=f"{canvas_id}/annotations/captions", motivation="supplementing", target=canvas_id,
                body=AnnotationBody(id=f"{root}/{asset.captions}", type="Text", format="text/vtt",
                                    label={"en": ["Captions"]}))])]
    return inert_json(json.loads(doc.json()))


def _body(cls: Any, url: str, media: Media) -> Any:
    kw = {k: v for k, v in (("width", media.width), ("height", media.height), ("duration", media.duration)) if v}
    return cls(id=url, type=media.kind, format=media.content_type, **kw)


def inert_json(doc: dict[str, Any]) -> bytes:
    """JSON with <, > and & escaped: the same document to a JSON parser, inert text to an HTML one; and U+2028/2029,
    which end a line inside a JavaScript string literal before ES2019, so a page may inline it in a script."""
    out = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        out = out.replace(char, escaped)
    return out.encode("utf-8")


# ---- IIIF Change Discovery 1.0 -------------------------------------------------------------------

COLLECTION = "activity/collection.json"


def page_name(index: int) -> str:
    return f"activity/page-{index}.json"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def activity(kind: str, object_id: str, end_time: str) -> dict[str, Any]:
    """One Create/Update/Delete of a Manifest; endTime is when it was published (UTC, sortable text)."""
    assert kind in ("Create", "Update", "Delete")
    return {"type": kind, "object": {"id": object_id, "type": "Manifest"}, "endTime": end_time}


def collection_doc(base: str, last: int) -> dict[str, Any]:
    base = base.rstrip("/")
    return {"@context": DISCOVERY_CONTEXT, "id": f"{base}/{COLLECTION}", "type": "OrderedCollection",
            "first": {"id": f"{base}/{page_name(0)}", "type": "OrderedCollectionPage"},
            "last": {"id": f"{base}/{page_name(last)}", "type": "OrderedCollectionPage"}}


def page_doc(base: str, index: int, items: list[dict[str, Any]], has_next: bool) -> dict[str, Any]:
    base = base.rstrip("/")
    doc: dict[str, Any] = {"@context": DISCOVERY_CONTEXT, "id": f"{base}/{page_name(index)}",
                           "type": "OrderedCollectionPage",
                           "partOf": {"id": f"{base}/{COLLECTION}", "type": "OrderedCollection"}}
    if index > 0:
        doc["prev"] = {"id": f"{base}/{page_name(index - 1)}", "type": "OrderedCollectionPage"}
    if has_next:
        doc["next"] = {"id": f"{base}/{page_name(index + 1)}", "type": "OrderedCollectionPage"}
    doc["orderedItems"] = items
    return doc
