"""View models: what each page shows, from what data.py read. Pure (no I/O), so the rules are unit-tested.

Nothing here escapes: the templates do (Jinja2 autoescape), and the JSON variants are JSON.
Chart geometry is computed here so the SVG is drawn with no script and no inline style.
"""
from __future__ import annotations

import datetime as dt
import json

from ..core import envelope
from ..core.journal import STATES, action_states
from ..core.ocfl import PREFIXES

MAX_TRIGGER_SERIES = 6  # colours in the chart; the rest are "other"
CHART_W, CHART_H, BAR_GAP = 720, 160, 2
MAX_RAW = 16 * 1024  # characters of a poison message's body shown
_META = ("_lease", "_owner")  # claim bookkeeping, not worth showing


def _hour(ts: str | None) -> dt.datetime | None:
    parsed = envelope.parse_timestamp(ts or "")
    return parsed.replace(minute=0, second=0, microsecond=0) if parsed else None


def overview(rows: list[dict], actions: list[str], now: dt.datetime, capped: bool, poison: dict[str, int],
             rejected: list[dict], rejected_capped: bool, gap: dict | None, hours: int = 48) -> dict:
    end = now.replace(minute=0, second=0, microsecond=0)
    slots = [end - dt.timedelta(hours=hours - 1 - i) for i in range(hours)]
    index = {h: i for i, h in enumerate(slots)}
    totals: dict[str, int] = {}
    for r in rows:
        totals[r.get("trigger") or "?"] = totals.get(r.get("trigger") or "?", 0) + 1
    named = sorted(totals, key=lambda t: (-totals[t], t))[:MAX_TRIGGER_SERIES]
    series = named + (["other"] if len(totals) > len(named) else [])
    per_hour = [dict.fromkeys(series, 0) for _ in slots]
    outcomes = {a: dict.fromkeys(STATES, 0) for a in actions}
    for r in rows:
        i = index.get(_hour(r.get("timestamp")))
        if i is not None:
            t = r.get("trigger") or "?"
            per_hour[i][t if t in named else "other"] += 1
        for a in actions:
            s = r.get(f"{a}_state")
            if s in outcomes[a]:
                outcomes[a][s] += 1
    return {"generated": now.isoformat(timespec="seconds"), "hours": hours, "events": len(rows), "capped": capped,
            "triggers": [{"name": t, "count": totals.get(t, 0) if t != "other" else
                          sum(v for k, v in totals.items() if k not in named), "series": i} for i, t in enumerate(series)],
            "per_hour": [{"hour": h.isoformat(timespec="minutes"), "counts": c}
                         for h, c in zip(slots, per_hour, strict=True)],
            "outcomes": {a: c for a, c in outcomes.items() if any(c.values())},
            "poison": poison, "poison_total": sum(poison.values()),
            "rejected": rejected[:20], "rejected_count": len(rejected), "rejected_capped": rejected_capped,
            "gap": gap}


def custody(found: tuple | None) -> dict | None:
    """The overview's custody panel from custody_tally.status(): coverage and the last audit."""
    if found is None:
        return None
    cover, reports = found
    counts = None if cover is None else {
        "objects": cover.total, "verified": cover.verified, "ok": cover.ok, "written": cover.written,
        "mismatched": cover.mismatched, "missing": cover.missing, "failures": cover.failures,
        "prefixes": cover.prefixes, "of": PREFIXES, "oldest": cover.oldest, "summed": cover.summed}
    from ..clients.custody_tally import text
    audit = {**reports[0], "line": text(reports[0])} if reports else None   # the words `hookops custody status` prints
    return {"coverage": counts, "audit": audit}


def custody_outcome(row: dict) -> dict | None:
    """The event page's custody line: the action's outcome (its reason names the OCFL version: `v3 written`,
    `no change (v2)`, `fixity failure: ...; the copy stays at v2`) and the version column."""
    from ..actions.custody import VERSION
    state = row.get("custody_state")
    if not state:
        return None
    return {"state": state, "outcome": row.get("custody_reason") or state, "version": row.get(VERSION) or "",
            "files": row.get("custody_files"), "copied": row.get("custody_copied_bytes")}


def hour_chart(model: dict) -> dict:
    """Stacked bars, one per hour: rectangles with a series index (its colour is the stylesheet's)."""
    hours = model["per_hour"]
    peak = max([sum(h["counts"].values()) for h in hours] + [1])
    width = CHART_W / max(len(hours), 1)
    bars = []
    for i, h in enumerate(hours):
        y = CHART_H
        for s, t in enumerate(h["counts"]):
            n = h["counts"][t]
            if n:
                height = max(CHART_H * n / peak, 1.0)
                y -= height
                bars.append({"x": round(i * width, 2), "y": round(y, 2), "w": round(width - BAR_GAP, 2),
                             "h": round(height, 2), "series": s, "label": f"{h['hour']} {t}: {n}"})
    ticks = [{"x": round(i * width, 2), "label": h["hour"][11:16]} for i, h in enumerate(hours) if i % 6 == 0]
    return {"w": CHART_W, "h": CHART_H, "bars": bars, "peak": peak, "ticks": ticks}


def outcome_chart(model: dict) -> dict:
    """One horizontal bar per action, split by outcome (class s-<state>)."""
    rows, width, y = [], CHART_W - 140, 0
    for action, counts in model["outcomes"].items():
        total = sum(counts.values()) or 1
        x, parts = 140.0, []
        for state in STATES:
            n = counts.get(state, 0)
            if n:
                w = width * n / total
                parts.append({"x": round(x, 2), "w": round(max(w, 1.0), 2), "state": state,
                              "label": f"{action} {state}: {n}"})
                x += w
        rows.append({"action": action, "y": y, "parts": parts, "counts": counts})
        y += 28
    return {"w": CHART_W, "h": max(y, 28), "rows": rows}


def event_row(row: dict, asset_template: str | None) -> dict:
    """One line of the events page (and its JSON)."""
    states = [{"action": a, "state": s, "reason": r} for a, (s, r) in _states(row).items()]
    ref = str(row.get("entityRef") or "")
    return {"pk": row.get("PartitionKey"), "rk": row.get("RowKey"), "timestamp": row.get("timestamp") or "",
            "received": row.get("received") or "", "trigger": row.get("trigger") or "", "event": row.get("event") or "",
            "entityType": row.get("entityType") or "", "entityRef": ref, "source": row.get("source") or "webhook",
            "link": envelope.asset_link(asset_template, ref) if envelope.is_ref(ref) else None, "states": states}


def _states(row: dict) -> dict[str, tuple[str, str]]:
    return action_states(row)


def event_detail(row: dict, asset_template: str | None, body: tuple[bytes, int] | None, actions: list[str]) -> dict:
    """The event page: the row, each action's attempts, reason and time, and the delivery's body."""
    base = event_row(row, asset_template)
    per_action = []
    for s in base["states"]:
        a = s["action"]
        extra = {k[len(a) + 1:]: row[k] for k in sorted(row) if k.startswith(a + "_")
                 and k[len(a) + 1:] not in ("state", "reason", "at", "attempts") and not k.endswith(_META)}
        per_action.append({**s, "at": row.get(f"{a}_at") or "", "attempts": row.get(f"{a}_attempts"), "extra": extra})
    shown = {k: row[k] for k in ("key", "deliveryId", "received", "timestamp", "tenant", "subscriptionId",
                                 "trigger", "entityType", "entityRef", "event", "actions") if k in row}
    event_json = row.get("eventJson")
    return {**base, "row": shown, "actions": per_action, "deliveryId": row.get("deliveryId") or "",
            "custody": custody_outcome(row),
            "event_json": pretty(event_json) if event_json else None,
            "body": text_of(body[0]) if body else None, "body_size": body[1] if body else None}


def pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def text_of(data: bytes) -> str:
    """Bytes as text to show: UTF-8, anything else replaced (never interpreted)."""
    return data.decode("utf-8", errors="replace")


def poison_message(m, queue: str) -> dict:
    """One poison message: what it was for, its events' refs and the titles its snapshots carry."""
    doc = m.doc or {}
    events, pk = doc.get("events"), str(doc.get("pk") or "")
    items = []
    for e in (events if isinstance(events, list) else [])[:20]:
        if not isinstance(e, dict):
            continue
        ev, snap = e.get("event") if isinstance(e.get("event"), dict) else {}, e.get("snapshot")
        title = snap.get("title") if isinstance(snap, dict) else None
        items.append({"ref": str(ev.get("entityRef") or "")[:200], "title": str(title)[:200] if title else "",
                      "pk": pk, "rk": str(e.get("rk") or "")})
    raw = json.dumps(doc, indent=1, ensure_ascii=False) if m.doc is not None else "(not JSON)"
    return {"id": m.id, "queue": queue, "what": m.what, "events": items,
            "raw": raw if len(raw) <= MAX_RAW else raw[:MAX_RAW] + "\n…",
            "inserted": m.inserted.isoformat(timespec="seconds") if m.inserted else "",
            "expires": m.expires.isoformat(timespec="seconds") if m.expires else ""}
