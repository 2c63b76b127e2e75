"""Delivery parsing, its rules, event keys and journal coordinates. Pure, no I/O.

Everything the dispatcher derives from a delivery is derived here (the queue messages in
messages.py), and checked at intake by `delivery_from_doc` before the delivery is acknowledged:
a 200 is never given to a delivery the dispatcher would then fail on.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import InvalidDelivery  # noqa: F401 (part of this module's interface)

# Limits every signed delivery is held to at intake, so that what is acknowledged can be dispatched:
MAX_EVENT_BYTES = 16 * 1024   # one event as JSON: an action message (event, snapshot, envelope) fits 48 KiB
MAX_FIELD_CHARS = 256         # subscriptionId, timestamp, tenant, version, trigger, event, entityType
MAX_DEPTH = 32                # JSON nesting; real deliveries nest 5 deep (events -> identifiers -> entry)
_BOM = b"\xef\xbb\xbf"
_YEARS = (1970, 4999)  # timestamps outside this range are treated as absent ("undated")
# Preservica references are UUIDs, sometimes with a type prefix (`sdb:IO|<uuid>`) or as the last
# segment of an entity URL. Anything else could change a REST path or a blob name: refused.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TYPE_PREFIX = re.compile(r"(?:sdb:)?(?:IO|SO|CO)\|", re.IGNORECASE)
_HEADER_FIELDS = ("subscriptionId", "timestamp", "tenant", "version", "trigger")
_EVENT_FIELDS = ("event", "entityType")




@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    timestamp: str
    tenant: str
    version: str
    trigger: str
    events: tuple[dict[str, Any], ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def delivery_id(body: bytes) -> str:
    """Same body, same id: a re-sent delivery maps onto the same claim-check blob and journal rows."""
    return hashlib.sha256(body).hexdigest()[:32]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _body_text(body: bytes) -> str:
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDelivery("body is not UTF-8") from None


def parse_delivery(body: bytes) -> tuple[Delivery, str]:
    """Parse and check a signed body. Returns the delivery and the body as text."""
    text = _body_text(body)
    try:
        doc = json.loads(text)
    except RecursionError:
        raise InvalidDelivery(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise InvalidDelivery("body is not JSON") from None
    return delivery_from_doc(doc), text


def parse_page(body: bytes, offset: int, size: int) -> tuple[Delivery, int]:
    """The delivery with only events[offset:offset + size], checked by the same rules, and how many events
    the whole delivery holds. The body is walked value by value (the events outside the page are parsed one
    at a time and dropped), so memory is the body's text plus one page, whatever the number of events.
    Agrees with json.loads, which intake used: the last of repeated keys wins, nothing may follow the object."""
    text = _body_text(body)
    dec = json.JSONDecoder()
    try:
        head, events, total = {}, None, 0
        i = _skip(text, 0, "{")
        while text[i] != "}":
            if text[i] != '"':
                raise ValueError("key is not a string")
            key, i = dec.raw_decode(text, i)
            i = _skip(text, i, ":")
            if key == "events" and text[i] == "[":
                events, total, i = [], 0, _skip(text, i, "[")
                while text[i] != "]":
                    value, i = dec.raw_decode(text, i)
                    if offset <= total < offset + size:
                        events.append(value)
                    total += 1
                    i = _next(text, i, "]")
                i += 1
            else:
                value, i = dec.raw_decode(text, i)
                if key == "events":
                    events, total = value, 0
                else:
                    head[key] = value
            i = _next(text, i, "}")
        if text[i + 1:].strip(_WS):
            raise ValueError("extra data")
    except RecursionError:
        raise InvalidDelivery(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, IndexError):
        raise InvalidDelivery("body is not JSON") from None
    return delivery_from_doc({**head, "events": events}), total


_WS = " \t\n\r"  # JSON's whitespace


def _skip(text: str, i: int, expect: str) -> int:
    """Past whitespace, `expect` (one character) and whitespace again: the index of what follows."""
    while text[i] in _WS:
        i += 1
    if text[i] != expect:
        raise ValueError(f"expected {expect!r}")
    i += 1
    while text[i] in _WS:
        i += 1
    return i


def _next(text: str, i: int, close: str) -> int:
    """After a member: the index of `close`, or of the next member past a comma (not of a trailing one)."""
    while text[i] in _WS:
        i += 1
    if text[i] == close:
        return i
    i = _skip(text, i, ",")
    if text[i] == close:
        raise ValueError("trailing comma")
    return i


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a recursive walk is what the bound protects against)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _utf8_len(value: Any, what: str) -> int:
    """Size as UTF-8 JSON; a lone surrogate (`"\\ud800"` is valid JSON) cannot be stored or sent anywhere."""
    try:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidDelivery(f"{what} holds text that is not valid Unicode (a lone surrogate)") from None


def _field(doc: dict[str, Any], name: str, where: str) -> str:
    raw = doc.get(name)
    if isinstance(raw, (dict, list)):
        raise InvalidDelivery(f"{where}{name} is not text")
    value = _text(raw)
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidDelivery(f"{where}{name} is longer than {MAX_FIELD_CHARS} characters")
    return value


def delivery_from_doc(doc: Any) -> Delivery:
    """Check a parsed body against every rule the pipeline relies on (see the limits above).
    Intake runs this before it acknowledges; the dispatcher runs the same code on what it reads."""
    if not isinstance(doc, dict):
        raise InvalidDelivery("body is not a JSON object")
    events = doc.get("events")
    if not isinstance(events, list):
        raise InvalidDelivery("no 'events' list")
    if _depth(doc) > MAX_DEPTH:
        raise InvalidDelivery(f"JSON nested deeper than {MAX_DEPTH} levels")
    header = {name: _field(doc, name, "") for name in _HEADER_FIELDS}
    _utf8_len(header, "a delivery field")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidDelivery(f"events[{i}] is not an object")
        if _utf8_len(event, f"events[{i}]") > MAX_EVENT_BYTES:
            raise InvalidDelivery(f"events[{i}] is larger than {MAX_EVENT_BYTES} bytes")
        for name in _EVENT_FIELDS:
            _field(event, name, f"events[{i}].")
        check_ref(event, i)
    known = {"subscriptionId", "timestamp", "tenant", "version", "trigger", "events"}
    return Delivery(
        subscription_id=_text(doc.get("subscriptionId")),
        timestamp=_text(doc.get("timestamp")),
        tenant=_text(doc.get("tenant")),
        version=_text(doc.get("version")),
        trigger=_text(doc.get("trigger")).upper(),
        events=tuple(events),
        extra={k: v for k, v in doc.items() if k not in known},
    )


# ---- events and keys ------------------------------------------------------

def entity_ref(event: dict[str, Any]) -> str:
    """The bare reference: the last segment of a path or URL, without an `sdb:IO|` type prefix."""
    tail = _text(event.get("entityRef")).strip().rstrip("/").rsplit("/", 1)[-1]
    return _TYPE_PREFIX.sub("", tail, count=1) if _TYPE_PREFIX.match(tail) else tail


def is_ref(value: str) -> bool:
    """Whether `value` is a Preservica reference: a UUID, any case (the one pattern the app checks refs with)."""
    return bool(_UUID.fullmatch(value))


def asset_link(template: str | None, ref: str) -> str | None:
    """ASSET_URL_TEMPLATE with {ref} filled in; None when unset or not an http(s) link."""
    if not template or not ref:
        return None
    try:
        url = template.format(ref=quote(ref, safe=""))
    except (KeyError, IndexError, ValueError):
        return None
    return url if url.startswith(("https://", "http://")) else None


def check_ref(event: dict[str, Any], index: int = 0) -> None:
    """An event names no entity, or one by its UUID reference; nothing else reaches a URL or a blob name."""
    ref = entity_ref(event)
    if ref and not is_ref(ref):
        raise InvalidDelivery(f"events[{index}].entityRef is not a Preservica reference (a UUID)")


def event_key(delivery: Delivery, event: dict[str, Any]) -> str:
    """Deterministic per event: a re-sent delivery yields the same keys, so no double work.
    The fields are hashed as a JSON list, so no field's content can shift another's boundary."""
    parts = [delivery.subscription_id, delivery.timestamp, delivery.trigger,
             _text(event.get("entityType")).upper(), entity_ref(event), _text(event.get("event"))]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


def parse_timestamp(value: str) -> dt.datetime | None:
    """Preservica sends local ISO times without a zone; read them as UTC. None when absent, not a
    time, or outside _YEARS (the edges of the calendar overflow on conversion)."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if _YEARS[0] <= parsed.year <= _YEARS[1] else None
