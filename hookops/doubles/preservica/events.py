"""The Preservica double's records of what happened: the event log, each event's actions, the
entities updated since a time, and folder children (for the reconciler and backfill).

Shapes as pyPreservica 4.2 reads them (`_all_events_page`, `_entity_from_event_page`,
`_updated_entities_page`, `children`); every list is paged with `start`/`max` and a `Next` link.
Event types are free text; the ones public code shows from real servers are `Ingest` (action
commandType `command_create`), `Modified` (e.g. `AddIdentifier`) and `Moved` (TNA dr2-preservica-client
`DataProcessorTest` "getEventActions", `MockPreservicaAPI` event-action pages).
"""
from __future__ import annotations

import datetime as dt
import uuid
from xml.sax.saxutils import escape, quoteattr

from .model import not_found, text_reply

UTC = dt.UTC
COMMANDS = {"Ingest": "command_create", "Modified": "AddIdentifier", "Moved": "Moved"}   # TNA fixtures


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventsApi:
    """Mixin for PreservicaDouble (which provides _lock, _entities, _url base, _doc)."""

    def _init_events(self) -> None:
        self._events: list[dict] = []
        self._updated: dict[str, dt.datetime] = {}
        self._deleted: dict[str, dt.datetime] = {}   # ref -> when it was deleted (listed by updated-since)
        self.page_limit = 100   # Preservica caps `max`
        self.next_base: str | None = None   # a test's hostile next-page host

    def event_routes(self) -> list:
        return [
            ("GET", r"/api/entity/events", self._list_events),
            ("GET", r"/api/entity/events/([^/]+)/event-actions", self._event_actions),
            ("GET", r"/api/entity/entities/updated-since", self._updated_since),
            ("GET", r"/api/entity/root/children", self._root_children),
            ("GET", r"/api/entity/structural-objects/([^/]+)/children", self._children),
        ]

    # -- test controls -------------------------------------------------------------------------
    def record_event(self, log_type: str, refs, when: dt.datetime | None = None, user: str = "test-user") -> str:
        """Record an event of `log_type` (e.g. "Ingest", "Move") acting on `refs` at `when` (UTC now by
        default); the entities count as updated then. Returns the event's ref."""
        when = when or dt.datetime.now(UTC)
        event_id = str(uuid.uuid4())
        with self._lock:
            self._events.append({"id": event_id, "type": log_type, "date": when, "user": user, "refs": list(refs)})
            for ref in refs:   # an ingest creates the entity then (add_asset's own time is set-up time)
                self._updated[ref] = when if log_type == "Ingest" else max(when, self._updated.get(ref, when))
        return event_id

    def clear_events(self) -> None:
        """Forget the event log, the update times and the deletions (a new archive's history)."""
        with self._lock:
            self._events.clear()
            self._updated.clear()
            self._deleted.clear()

    def touch(self, ref: str, when: dt.datetime | None = None) -> None:
        with self._lock:
            self._updated[ref] = when or dt.datetime.now(UTC)

    def delete_entity(self, ref: str, when: dt.datetime | None = None) -> None:
        """Delete an entity (and an asset's content objects) as Preservica does: it is gone (404), a content
        object is gone from its asset's representation too, and updated-since lists it as deleted from `when`."""
        with self._lock:
            entity = self._entities.pop(ref, None)
            for co_ref in entity.content_objects if entity else ():
                self._entities.pop(co_ref, None)
            holder = self._entities.get(entity.parent or "") if entity and entity.kind == "CO" else None
            if holder is not None and ref in holder.content_objects:
                holder.content_objects.remove(ref)
            self._updated.pop(ref, None)
            self._deleted[ref] = when or dt.datetime.now(UTC)

    # -- handlers ----------------------------------------------------------------------------------
    def _page(self, query: dict, items: list, path: str, extra: dict) -> tuple[list, str]:
        start = int(query.get("start", 0) or 0)
        size = max(1, min(int(query.get("max", 25) or 25), self.page_limit))
        chunk = items[start:start + size]
        paging = f"<TotalResults>{len(items)}</TotalResults>"
        if start + size < len(items):
            params = "&".join(f"{k}={v}" for k, v in {**extra, "start": start + size, "max": size}.items())
            paging = f"<Next>{escape((self.next_base or self._base) + path + '?' + params)}</Next>" + paging
        return chunk, f"<Paging>{paging}</Paging>"

    def _list_events(self, request, query):
        # pyPreservica entityAPI.py `_all_events_page`: `types`, `from`, `to`, `start`, `max`; XIP `Event`
        # elements with `@type`, `Ref`, `Date`, `User`; `Next` and `TotalResults` in the EntityAPI namespace.
        types = {t for t in (query.get("types") or "").split(",") if t}
        lo, hi = _time(query.get("from")), _time(query.get("to"))
        chosen = [e for e in sorted(self._events, key=lambda e: e["date"])
                  if (not types or e["type"] in types) and (lo is None or e["date"] >= lo)
                  and (hi is None or e["date"] < hi)]
        keep = {k: query[k] for k in ("types", "from", "to") if k in query}
        chunk, paging = self._page(query, chosen, "/api/entity/events", keep)
        body = "".join(f'<xip:Event type={quoteattr(e["type"])}><xip:Ref>{e["id"]}</xip:Ref>'
                       f'<xip:Date>{_stamp(e["date"])}</xip:Date><xip:User>{escape(e["user"])}</xip:User>'
                       f"</xip:Event>" for e in chunk)
        return self._doc("EventsResponse", f"<Events>{body}</Events>{paging}")

    def _event_actions(self, request, query, event_id):
        # pyPreservica `_entity_from_event_page` (`EventAction` > `Event@type`, `Date`, `Entity`) and TNA
        # dr2-preservica-client `MockPreservicaAPI` event-action pages (`start`/`max`, `Next`).
        event = next((e for e in self._events if e["id"] == event_id), None)
        if event is None:
            return not_found(event_id)
        chunk, paging = self._page(query, event["refs"], f"/api/entity/events/{event_id}/event-actions", {})
        # TNA MockPreservicaAPI / DataProcessorTest: the action's own Date follows its Event element,
        # whose Date pyPreservica reads first (`.//Date`); commandType as TNA's fixtures show it.
        command = COMMANDS.get(event["type"], f'{event["type"]}Command')   # others: inferred
        body = "".join(f'<xip:EventAction commandType={quoteattr(command)}>'
                       f'<xip:Event type={quoteattr(event["type"])}><xip:Ref>{event["id"]}</xip:Ref>'
                       f'<xip:Date>{_stamp(event["date"])}</xip:Date></xip:Event>'
                       f'<xip:Date>{_stamp(event["date"])}</xip:Date><xip:Entity>{escape(ref)}</xip:Entity>'
                       f"</xip:EventAction>" for ref in chunk)
        return self._doc("EventActionsResponse", f"<EventActions>{body}</EventActions>{paging}")

    def _updated_since(self, request, query):
        # Parameters `date`, `start`, `max` and optional `endDate` as TNA's EntityClient sends them
        # (`entitiesUpdatedSince`); a deleted entity is `<Entity ref=… deleted="true">` with no type or
        # title (TNA DataProcessorTest "getEntities"). Whether endDate bounds by the last update (as
        # here) or any update is not documented: inferred; the reconciler works either way.
        since, until = _time(query.get("date")), _time(query.get("endDate"))
        if since is None:
            return text_reply(400, "date is required")
        live = [(t, r, False) for r, t in self._updated.items() if r in self._entities]
        gone = [(t, r, True) for r, t in self._deleted.items()]
        rows = sorted((t, r, d) for t, r, d in live + gone if t >= since and (until is None or t <= until))
        keep = {k: query[k] for k in ("date", "endDate") if k in query}
        chunk, paging = self._page(query, rows, "/api/entity/entities/updated-since", keep)
        body = "".join(f'<Entity ref={quoteattr(r)} deleted="true">'
                       f'{escape(self._base)}/api/entity/entities/{escape(r)}</Entity>'
                       if d else self._entity_element(self._entities[r], "Entity") for _, r, d in chunk)
        return self._doc("EntitiesResponse", f"<Entities>{body}</Entities>{paging}")

    def _entity_element(self, e, tag: str) -> str:
        return (f"<{tag} title={quoteattr(e.title)} ref={quoteattr(e.ref)} type={quoteattr(e.kind)}>"
                f"{escape(self._url(e))}</{tag}>")

    def _children_of(self, parent: str | None, query, path: str):
        # pyPreservica `children` (`Child` elements with `@ref`, `@type`, `@title`); TNA MockPreservicaAPI
        # root/children pages.
        kids = sorted((e for e in self._entities.values() if e.parent == parent and e.kind in ("IO", "SO")),
                      key=lambda e: e.ref)
        chunk, paging = self._page(query, kids, path, {})
        body = "".join(self._entity_element(e, "Child") for e in chunk)
        return self._doc("ChildrenResponse", f"<Children>{body}</Children>{paging}")

    def _root_children(self, request, query):
        return self._children_of(None, query, "/api/entity/root/children")

    def _children(self, request, query, ref):
        folder = self._entities.get(ref)
        if folder is None or folder.kind != "SO":
            return not_found(ref)
        return self._children_of(ref, query, f"/api/entity/structural-objects/{ref}/children")

