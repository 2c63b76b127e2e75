"""What Preservica's own records say happened: its event log and the entities updated since a time.

The event list is read with pyPreservica's own page call (`_all_events_page`: `GET /api/entity/events`
with `types`, `from`, `to`). The two other calls are made here as pyPreservica makes them, because
its versions cannot be used as they are: `entity_from_event` sends bare `requests.get` (outside the
client's session, so outside PRESERVICA_MAX_RPS, the retry policy and the timeouts), and
`updated_entities` takes whole days, not a time. Every request counts against a Budget.
"""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import quote

from ..core.errors import ActionError
from ..core.envelope import is_ref, parse_timestamp
from ..core.reconcile import Found

PAGE = 100  # results per page (Preservica's maximum for these lists)


class BudgetSpent(ActionError):
    """The run's request budget toward Preservica is used up; the rest waits for the next run."""


class Budget:
    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def spend(self) -> None:
        if self.used >= self.limit:
            raise BudgetSpent(f"request budget of {self.limit} spent (RECONCILE_MAX_REQUESTS)")
        self.used += 1


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def _get(api, url: str, params: dict | None, budget: Budget) -> ET.Element:
    from pyPreservica.common import HTTPException
    budget.spend()
    resp = api.session.get(url, params=params, headers={"Preservica-Access-Token": api.token})
    if resp.status_code == 401:   # the token expired: log in again once, as pyPreservica does
        api.token = api.__token__()
        budget.spend()
        resp = api.session.get(url, params=params, headers={"Preservica-Access-Token": api.token})
    if resp.status_code != 200:
        raise HTTPException("", resp.status_code, "", url.rsplit("/api/", 1)[-1].split("?")[0], "")
    return ET.fromstring(resp.content)


def _next(api, doc: ET.Element) -> str | None:
    node = doc.find(f".//{{{api.entity_ns}}}Next")
    return _same_server(api, node.text) if node is not None and node.text else None


def _same_server(api, url: str | None) -> str | None:
    """A next-page link is followed with the access token: only to the server it came from."""
    if url and not url.startswith(f"{api.protocol}://{api.server}/"):
        raise ActionError("Preservica's next-page link points to another server; not followed")
    return url


def events(api, log_type: str, start: dt.datetime, end: dt.datetime, budget: Budget) -> list[dict]:
    """The events of one type Preservica recorded in [start, end): {"Ref", "Date", "eventType", ...}."""
    from pyPreservica.common import HTTPException
    out, page = [], None
    while True:
        def fetch():
            budget.spend()
            return api._all_events_page(maximum=PAGE, next_page=page, type=log_type,
                                        from_date=_iso(start), to_date=_iso(end))
        try:
            paged = fetch()
        except HTTPException as exc:
            if exc.http_status_code != 401:
                raise
            api.token = api.__token__()   # the token expired: log in again once, as pyPreservica does
            paged = fetch()
        out += [e for e in paged.results if e.get("eventType") == log_type]
        if not paged.has_more or not paged.next_page:
            return out
        page = _same_server(api, paged.next_page)


def touched(api, event_ref: str, budget: Budget) -> list[tuple[str, str | None]]:
    """The entities one event acted on, with the time of each action: [(ref, date)]."""
    from pyPreservica.common import HTTPException
    url = f"{api.protocol}://{api.server}/api/entity/events/{quote(event_ref, safe='')}/event-actions"
    params: dict | None = {"start": 0, "max": PAGE}
    out = []
    while url:
        try:
            doc = _get(api, url, params, budget)
        except HTTPException as exc:
            if exc.http_status_code == 404 and not out:
                return []   # the event was purged since it was listed
            raise
        for action in doc.iter(f"{{{api.xip_ns}}}EventAction"):
            ref, date = action.find(f".//{{{api.xip_ns}}}Entity"), action.find(f".//{{{api.xip_ns}}}Date")
            if ref is not None and ref.text:
                out.append((ref.text.strip(), date.text if date is not None else None))
        url, params = _next(api, doc), None
    return out


def updated_since(api, since: dt.datetime, budget: Budget, kinds=("IO", "SO")) -> dict[str, str]:
    """ref -> entity type (IO, SO) of every entity updated since `since`: the event-action lists name
    entities without their type, and this list gives it, a page for a hundred entities."""
    names = {"IO": "IO", "SO": "SO", "CO": "CO"}
    url = f"{api.protocol}://{api.server}/api/entity/entities/updated-since"
    params: dict | None = {"date": _iso(since), "start": 0, "max": PAGE}
    out: dict[str, str] = {}
    while url:
        doc = _get(api, url, params, budget)
        for e in doc.iter(f"{{{api.entity_ns}}}Entity"):
            kind, ref = names.get(e.get("type", "")), (e.get("ref") or "").strip()
            if kind in kinds and is_ref(ref):
                out[ref.lower()] = kind
        url, params = _next(api, doc), None
    return out


class Kinds:
    """ref -> entity type from updated_since(since), read on first need: a run that finds no event
    spends nothing on it, and a run's slices share one read."""

    def __init__(self, since: dt.datetime, budget: Budget):
        self.since, self.budget, self.known = since, budget, None

    def get(self, api, ref: str) -> str | None:
        if self.known is None:
            self.known = updated_since(api, self.since, self.budget)
        return self.known.get(ref.lower())


def find(api, types: dict[str, str], start: dt.datetime, end: dt.datetime, kinds: Kinds,
         budget: Budget) -> tuple[list[Found], dict[str, int]]:
    """The events of the mapped types in [start, end), one Found per entity they touched whose type
    `kinds` knows, and counts of what could not be used."""
    found, skipped = [], {"unknown entity": 0, "undated": 0}
    for log_type, trigger in types.items():
        for event in events(api, log_type, start, end, budget):
            event_time = parse_timestamp(event.get("Date") or "")
            for ref, date in touched(api, event.get("Ref") or "", budget) if event.get("Ref") else ():
                when = parse_timestamp(date or "") or event_time
                kind = kinds.get(api, ref)
                if when is None:
                    skipped["undated"] += 1
                elif kind is None:
                    skipped["unknown entity"] += 1   # a content object, or gone since
                else:
                    found.append(Found(ref.lower(), kind, trigger, when, log_type))
    return found, skipped
