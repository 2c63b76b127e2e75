"""The console's pages and their JSON variants (`.json`): read (data.py), shape (views.py), render."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from ..core import settings
from . import auth, data, render, views
from .context import BASE, Ctx

HTML, JSON = "text/html", "application/json"
_EVENT = re.compile(r"events/([^/]+)/([^/]+?)(\.json)?")
_REJECTED = re.compile(r"rejected/([0-9a-f]{32})")
_DRAFT = re.compile(r"drafts/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(/accept|/reject)?")


def _actions() -> list[str]:
    from ..pipeline import registry
    return registry.names()


def _stores():
    from ..clients import journal, storage
    return journal.default(), storage.default()


def _asset_template() -> str | None:
    return settings.get("ASSET_URL_TEMPLATE")


def dispatch(ctx: Ctx) -> tuple[int, bytes, str, dict]:
    path = ctx.path
    if ctx.method == "POST":
        if path == "poison/replay":
            return poison_replay(ctx)
        if (m := _DRAFT.fullmatch(path)) and m[2]:
            from . import review
            return review.decide(ctx, m[1], m[2][1:])
        raise auth.Refused(405, "Not a form of the console.")
    if path in ("", "overview", "overview.json"):
        return overview(ctx, path.endswith(".json"))
    if path in ("events", "events.json"):
        return events(ctx, path.endswith(".json"))
    if path in ("poison", "poison.json"):
        return poison(ctx, path.endswith(".json"))
    if m := _EVENT.fullmatch(path):
        return event(ctx, m[1], m[2], bool(m[3]))
    if m := _REJECTED.fullmatch(path):
        return rejected(ctx, m[1])
    if path == "drafts" or ((m := _DRAFT.fullmatch(path)) and not m[2]):
        from . import review
        return review.drafts(ctx) if path == "drafts" else review.draft(ctx, m[1])
    raise auth.Refused(404, "No such page.")


def _page(ctx: Ctx, template: str, title: str, **model) -> tuple[int, bytes, str, dict]:
    body = render.html(template, base=BASE, title=title, who=ctx.who, csrf=ctx.token, **model)
    return 200, body, HTML, {}


def _json(doc) -> tuple[int, bytes, str, dict]:
    return 200, render.as_json(doc), JSON, {}


def overview(ctx: Ctx, as_json: bool):
    from ..clients import poison as poison_queues
    book, store = _stores()
    actions, now = _actions(), dt.datetime.now(dt.UTC)
    rows, capped = data.window_rows(book, actions, now)
    counts = {q: poison_queues.count(store, q) for q in poison_queues.pipeline_queues(actions)}
    rej, rej_capped = data.rejected(store, now - dt.timedelta(hours=48))
    model = views.overview(rows, actions, now, capped, counts, rej, rej_capped, data.last_gap_report(store))
    model["sweep"] = data.last_sweep_report()
    model["custody"] = views.custody(data.custody_status())
    if as_json:
        return _json(model)
    return _page(ctx, "overview.html", "Overview", m=model, hours=views.hour_chart(model),
                 outcomes=views.outcome_chart(model), cap=data.OVERVIEW_CAP)


EARLIEST = dt.date(2000, 1, 1)  # before any journal; keeps day arithmetic (a week back) off date.min


def _date(value: str | None, today: dt.date) -> dt.date | None:
    """A date from the query, clamped to [EARLIEST, tomorrow]: `0001-01-03` or `9999-12-31` would
    overflow the range's arithmetic (an OverflowError, so a 500)."""
    try:
        day = dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return min(max(day, EARLIEST), today + dt.timedelta(days=1)) if day else None


def events(ctx: Ctx, as_json: bool):
    p, actions = ctx.params, _actions()
    today = dt.datetime.now(dt.UTC).date()
    start, end, clipped = data.day_range(_date(p.get("from"), today), _date(p.get("to"), today), today)
    action = p.get("action", "") if p.get("action", "") in actions else ""
    state = p.get("state", "") if p.get("state", "") in views.STATES else ""
    filters = {"trigger": (p.get("trigger") or "").strip().upper()[:256], "action": action, "state": state,
               "ref": (p.get("ref") or "").strip()[:256]}
    undated = not p.get("from") and not p.get("to")
    book, _ = _stores()
    rows, cursor = data.events_page(book, actions, start, end, undated, p.get("after"), **filters)
    template = _asset_template()
    items = [views.event_row(r, template) for r in rows]
    shown = {**filters, "from": start.isoformat(), "to": end.isoformat()}
    query = {k: v for k, v in {**filters, "from": p.get("from", ""), "to": p.get("to", "")}.items() if v}
    next_url = f"{BASE}/events?{urlencode({**query, 'after': cursor})}" if cursor else None
    if as_json:
        return _json({"filters": shown, "events": items, "next": next_url})
    return _page(ctx, "events.html", "Events", events=items, filters=shown, actions=actions, states=views.STATES,
                 next_url=next_url, clipped=clipped, max_days=data.MAX_DAYS)


def event(ctx: Ctx, pk: str, rk: str, as_json: bool):
    book, store = _stores()
    row = data.event(book, pk, rk)
    if row is None:
        raise auth.Refused(404, "No such event in the journal.")
    body = data.delivery_body(store, str(row.get("deliveryId") or ""))
    model = views.event_detail(row, _asset_template(), body, _actions())
    if as_json:
        return _json(model)
    return _page(ctx, "event.html", "Event", e=model, limit=data.MAX_BODY_SHOWN)


def rejected(ctx: Ctx, did: str):
    _, store = _stores()
    found = data.rejected_body(store, did)
    if found is None:
        raise auth.Refused(404, "No such rejected delivery (they are deleted after their retention).")
    return _page(ctx, "rejected.html", "Rejected delivery", did=did, body=views.text_of(found[0]), size=found[1],
                 limit=data.MAX_BODY_SHOWN)


def poison(ctx: Ctx, as_json: bool):
    from ..clients import poison as poison_queues
    _, store = _stores()
    queues = []
    for q in poison_queues.pipeline_queues(_actions()):
        n = poison_queues.count(store, q)
        shown = [views.poison_message(m, q) for m in poison_queues.peek(store, q)] if n else []
        queues.append({"queue": q, "count": n, "messages": shown})
    if as_json:
        return _json({"queues": queues})
    return _page(ctx, "poison.html", "Poison messages", queues=queues, done=ctx.params.get("replayed"),
                 done_queue=ctx.params.get("queue", ""))


def poison_replay(ctx: Ctx):
    from ..clients import poison as poison_queues
    queue, message = ctx.form.get("queue", ""), ctx.form.get("message", "")
    if (queue not in poison_queues.pipeline_queues(_actions())
            or not (message == "all" or re.fullmatch(r"[\w-]{1,80}", message))):
        raise auth.Refused(400, "No such queue or message.")
    if ctx.form.get("confirm") != "yes":
        _, store = _stores()
        return _page(ctx, "confirm.html", "Confirm replay", queue=queue, message=message,
                     count=poison_queues.count(store, queue))
    _, store = _stores()
    if message == "all":
        n = poison_queues.replay(store, queue)
    else:
        n = 1 if poison_queues.replay_one(store, queue, message) else 0
    where = f"{BASE}/poison?{urlencode({'replayed': n, 'queue': queue})}"
    return 303, b"", "text/plain", {"Location": where}
