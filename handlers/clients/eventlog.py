"""What Preservica's own records say happened: its event log, each event's entities, and the entities
updated (or deleted) in a span.

Shapes as public code that reads real servers reads them: pyPreservica `entityAPI.py` (`_all_events_page`:
`GET /api/entity/events` with `types`, `from`, `to`, `start`, `max`, XIP `Event` elements with `@type`,
`Ref`, `Date`; `_entity_from_event_page`: `EventAction` elements whose first `Date` is the event's, and
`Entity`), The National Archives' dr2-preservica-client (`EntityClient.entitiesUpdatedSince`:
`updated-since` with `date`, `start`, `max` and an optional `endDate`; `DataProcessorTest` "getEntities":
a deleted entity is `<Entity ref=… deleted="true">` with no `type`). Every list is paged by `start`,
which is what a checkpoint stores with the slice's dates (TNA lost pages paging by moving the date).
Every request goes through preservica_http (a `Next` link only to the configured server, never a
redirect, a re-login once on 401) and counts against a Budget.
"""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import quote, urlencode

from ..core.envelope import is_ref, parse_timestamp
from ..core.errors import BudgetSpent, NotFound
from ..core.reconcile import ALWAYS, DELETED, DELETED_TRIGGER, Found
from . import preservica_http

PAGE = 100          # events per page, as pyPreservica pages them
ENTITY_PAGE = 1000  # updated-since and event actions per page: TNA's EntityClient and its MockPreservicaAPI
                    # ask for 1000 (maxEntries); a server that caps lower pages on (start counts what came)
KIND_PAGES = 5      # updated-since pages a slice reads to learn entity types; the rest are asked one by one
PATHS = {"IO": "information-objects", "SO": "structural-objects", "CO": "content-objects"}


class Budget:
    def __init__(self, limit: int, setting: str = "RECONCILE_MAX_REQUESTS"):
        self.limit, self.used, self.setting = limit, 0, setting

    @property
    def left(self) -> int:
        return self.limit - self.used

    def spend(self) -> None:
        if self.used >= self.limit:
            raise BudgetSpent(f"request budget of {self.limit} spent ({self.setting})")
        self.used += 1


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _base(api) -> str:
    return f"{api.protocol}://{api.server}"


def _get(api, url: str, budget: Budget, missing_ok: bool = False) -> ET.Element | None:
    """An XML document through the one Preservica boundary (same server, no redirect, re-login once),
    each request sent counted against the run's budget; None for a 404 when `missing_ok`."""
    try:
        return preservica_http.get_xml(api, url, spend=budget.spend)
    except NotFound:
        if missing_ok:
            return None
        raise


def _pages(api, path: str, params: dict, start: int, item: str, budget: Budget, missing_ok: bool = False
           ) -> Iterator[tuple[list[ET.Element], int]]:
    """The `item` elements of each page of a list from `start`, with the `start` of what follows them."""
    url: str | None = f"{_base(api)}{path}?{urlencode({**params, 'start': start})}"
    while url:
        doc = _get(api, url, budget, missing_ok=missing_ok and start == 0)
        if doc is None:
            return
        items = doc.findall(f".//{item}")
        start += len(items)
        node = doc.find(f".//{{{api.entity_ns}}}Next")
        url = node.text.strip() if node is not None and node.text and items else None
        yield items, start


def events(api, log_type: str | None, lo: dt.datetime, hi: dt.datetime, start: int, budget: Budget
           ) -> Iterator[tuple[list[dict], int]]:
    """Pages of the events Preservica logged in [lo, hi) ({"Ref", "Date", "eventType"}), from `start`;
    every type when `log_type` is None."""
    params = {**({"types": log_type} if log_type else {}), "from": iso(lo), "to": iso(hi), "max": PAGE}
    for page, after in _pages(api, "/api/entity/events", params, start, f"{{{api.xip_ns}}}Event", budget):
        out = []
        for e in page:
            ref, date = e.find(f"{{{api.xip_ns}}}Ref"), e.find(f"{{{api.xip_ns}}}Date")
            out.append({"eventType": e.get("type") or "", "Ref": (ref.text or "").strip() if ref is not None else "",
                        "Date": date.text if date is not None else None})
        yield out, after


def touched(api, event_ref: str, start: int, budget: Budget, size: int = ENTITY_PAGE
            ) -> Iterator[tuple[list[tuple[str, str | None]], int]]:
    """Pages of the entities one event acted on, with the time of each action: [(ref, date)]. Nothing
    when the event was purged since it was listed (404)."""
    path = f"/api/entity/events/{quote(event_ref, safe='')}/event-actions"
    for page, after in _pages(api, path, {"max": size}, start, f"{{{api.xip_ns}}}EventAction", budget,
                              missing_ok=True):
        out = []
        for action in page:
            ref, date = action.find(f".//{{{api.xip_ns}}}Entity"), action.find(f".//{{{api.xip_ns}}}Date")
            if ref is not None and ref.text:
                out.append((ref.text.strip(), date.text if date is not None else None))
        yield out, after


def updated(api, lo: dt.datetime, hi: dt.datetime, start: int, budget: Budget
            ) -> Iterator[tuple[list[tuple[str, str]], int]]:
    """Pages of the entities updated in [lo, hi]: [(ref, type)], type "" for a deleted entity."""
    params = {"date": iso(lo), "endDate": iso(hi), "max": ENTITY_PAGE}
    for page, after in _pages(api, "/api/entity/entities/updated-since", params, start,
                              f"{{{api.entity_ns}}}Entity", budget):
        out = []
        for e in page:
            ref = (e.get("ref") or "").strip()
            out.append((ref, "" if e.get("deleted") == "true" else (e.get("type") or "?")))
        yield out, after


GONE = "gone"


class Kinds:
    """ref -> IO, SO, CO or GONE for one slice: from the slice's updated-since list (its first
    KIND_PAGES pages, fewer when the budget is low), else asked per entity (one request for an asset)."""

    def __init__(self, lo: dt.datetime, hi: dt.datetime, budget: Budget):
        self.lo, self.hi, self.budget, self.known = lo, hi, budget, None

    def get(self, api, ref: str) -> str | None:
        if self.known is None:
            self.known = {}
            for page, _ in _first(updated(api, self.lo, self.hi, 0, self.budget), min(KIND_PAGES, self.budget.left // 4)):
                for r, kind in page:
                    self.known[r.lower()] = kind or GONE
        ref = ref.lower()
        if ref not in self.known and is_ref(ref):
            self.known[ref] = _kind_of(api, ref, self.budget)
        return self.known.get(ref)


def _first(pages, n: int):
    for i, page in enumerate(pages):
        if i >= n:
            return
        yield page


def _kind_of(api, ref: str, budget: Budget) -> str:
    """IO, SO or CO by asking for the entity under each path (assets first); GONE when none has it."""
    for kind, path in PATHS.items():
        if _get(api, f"{_base(api)}/api/entity/{path}/{ref}", budget, missing_ok=True) is not None:
            return kind
    return GONE


def scan(api, types: dict[str, str], lo: dt.datetime, hi: dt.datetime, where: dict, budget: Budget,
         deleted_since: dt.datetime | None = None) -> Iterator[tuple[list[Found], dict[str, int], dict]]:
    """The slice [lo, hi) as pages of work from checkpoint `where`: the entities the logged events of
    the mapped types touched (stage "events"), then the entities deleted in [deleted_since, hi] (stage
    "deleted"; none when that is empty: an overlap already scanned). Yields (found, unusable counts,
    the checkpoint after this page)."""
    kinds = Kinds(lo, hi, budget)
    order = sorted(types)
    if where.get("stage", "events") == "events":
        first = where.get("type") if where.get("type") in types else (order[0] if order else None)
        for log_type in order[order.index(first):] if first else ():
            resume = where.get("type") == log_type
            n = int(where.get("event", 0)) if resume else 0
            for page, _ in events(api, log_type, lo, hi, n, budget):
                for event in page:
                    a = int(where.get("action", 0)) if resume and n == int(where.get("event", 0)) else 0
                    for found, unusable, at in _actions(api, types[log_type], log_type, event, a, kinds, budget):
                        yield found, unusable, {"stage": "events", "type": log_type, "event": n, "action": at}
                    n += 1
                    yield [], {}, {"stage": "events", "type": log_type, "event": n, "action": 0}
        where = {"stage": "deleted", "start": 0}
        yield [], {}, where
    since = deleted_since or lo
    for page, after in updated(api, since, hi, int(where.get("start", 0)), budget) if since < hi else ():
        gone = [Found(r.lower(), "IO", DELETED_TRIGGER, hi, DELETED) for r, kind in page if kind == "" and is_ref(r)]
        bad = sum(1 for r, kind in page if kind == "" and not is_ref(r))
        yield gone, ({"unknown entity": bad} if bad else {}), {"stage": "deleted", "start": after}


def _actions(api, trigger: str, log_type: str, event: dict, start: int, kinds: Kinds, budget: Budget):
    event_time = parse_timestamp(event.get("Date") or "")
    if not event.get("Ref") or event.get("eventType") != log_type:
        return
    # A page no bigger than half the budget left: its entities' types can be asked one by one within
    # this run, so every run gets at least one page further (a run that could not would stall).
    for page, after in touched(api, event["Ref"], start, budget, max(1, min(ENTITY_PAGE, budget.left // 2))):
        found, skipped = [], {"unknown entity": 0, "undated": 0}
        for ref, date in page:
            when = parse_timestamp(date or "") or event_time
            kind = kinds.get(api, ref) if is_ref(ref) else None
            if when is None:
                skipped["undated"] += 1
            elif kind not in ("IO", "SO", GONE) and not (kind == "CO" and trigger in ALWAYS):
                skipped["unknown entity"] += 1   # not a reference at all, or a content object's other change
            else:   # a deleted one goes as an asset: its snapshot says gone, and publish withdraws;
                # a content object's security change goes as itself (that the log names the content object, not
                # its asset, is inferred; updated-since types one `CO`: pyPreservica _updated_entities_page):
                # publish converges its asset (actions/publish/content_object.py), asset-only actions skip it
                found.append(Found(ref.lower(), "IO" if kind == GONE else kind, trigger, when, log_type))
        yield found, skipped, after
