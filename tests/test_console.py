"""The operator console: who may see and change what (handlers/console/auth.py through the real HTTP
function), the view models, the bounded reads against Azurite, and that it ships and loads lazily."""
import base64
import datetime as dt
import json
import re

import pytest

from handlers.clients import journal
from handlers.console import auth, data, render, routes, views
from handlers.core import envelope, settings
from hookops.doubles.deliveries import ref
from tests.support.coldstart import cold_start_modules
from tests.support.console import AZURE, LOCAL_URL, azure_get, form_for, local_env, principal, request
from tests.support.paths import ROOT

# ---- writes: CSRF, Origin, role -------------------------------------------------------------------

def _post(role: str, sid: str | None, token: str | None, origin: str | None = "https://app.example.org"):
    headers = {"X-MS-CLIENT-PRINCIPAL": principal(role), "Host": "app.example.org",
               "Content-Type": "application/x-www-form-urlencoded"}
    if sid:
        headers["Cookie"] = f"console_sid={sid}"
    if origin:
        headers["Origin"] = origin
    form = f"queue={settings.DELIVERY_QUEUE}&message=all" + (f"&csrf={token}" if token is not None else "")
    return routes.handle(request("poison/replay", "POST", headers=headers, body=form.encode()), AZURE)


def test_operator_post_with_token_and_origin_gets_the_confirmation(app_env):
    sid, token = form_for(auth.OPERATOR)
    resp = _post(auth.OPERATOR, sid, token)
    assert resp.status_code == 200 and b"Yes, replay" in resp.get_body()


def test_csrf_missing_or_wrong_is_refused(app_env):
    sid, token = form_for(auth.OPERATOR)
    assert _post(auth.OPERATOR, sid, None).status_code == 403
    assert _post(auth.OPERATOR, sid, "0" * 64).status_code == 403
    assert _post(auth.OPERATOR, None, token).status_code == 403                   # no session cookie
    other_sid, _ = form_for(auth.OPERATOR)
    assert _post(auth.OPERATOR, other_sid, token).status_code == 403               # another session's token


def test_origin_mismatch_or_missing_is_refused(app_env):
    sid, token = form_for(auth.OPERATOR)
    assert _post(auth.OPERATOR, sid, token, origin="https://evil.example").status_code == 403
    assert _post(auth.OPERATOR, sid, token, origin=None).status_code == 403
    assert _post(auth.OPERATOR, sid, token, origin="null").status_code == 403


def test_reader_cannot_replay(app_env):
    sid, token = form_for(auth.READER)
    resp = _post(auth.READER, sid, token)
    assert resp.status_code == 403 and b"Console.Operator" in resp.get_body()
    _poison_message()
    assert b"poison/replay" not in azure_get("poison", auth.READER).get_body()   # and is offered no button
    assert b"poison/replay" in azure_get("poison", auth.OPERATOR).get_body()


def _poison_message(title: str = "A title") -> None:
    from handlers.clients.storage import default
    doc = {"v": 1, "action": "teams", "kind": "event", "deliveryId": "d" * 32, "pk": "79738870",
           "events": [{"key": "k", "rk": "r-1", "event": {"entityRef": ref("p")}, "snapshot": {"title": title}}]}
    q = default().queue(settings.action_queue("teams") + "-poison")
    try:
        q.create_queue()
    except Exception:
        pass
    q.send_message(json.dumps(doc))


def test_poison_page_escapes_a_title_from_preservica(app_env):
    _poison_message("<script>alert('t')</script>")
    body = azure_get("poison", auth.OPERATOR).get_body()
    assert b"<script>alert" not in body and b"&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in body


def test_principal_parsing_rejects_junk():
    assert auth.parse_principal(None) is None
    assert auth.parse_principal("not base64 json") is None
    assert auth.parse_principal(base64.b64encode(b"[1,2]").decode()) is None
    p = auth.parse_principal(principal(auth.READER, "Other"))
    assert p.roles == {auth.READER, "Other"} and p.can_read() and not p.can_operate() and p.id == "oid-1"


# ---- view models ------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 29, 12, 30, tzinfo=dt.UTC)


def _row(hours_ago: float, trigger: str, **states) -> dict:
    ts = (NOW - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%S")
    return {"trigger": trigger, "timestamp": ts, **{f"{a}_state": s for a, s in states.items()}}


def test_overview_counts_hours_by_trigger_and_outcomes():
    rows = [_row(0.1, "FULL_TEXT_INDEXED", journal="done", teams="failed"),
            _row(0.2, "FULL_TEXT_INDEXED", journal="done", teams="done"),
            _row(5, "MOVED", journal="skipped"), _row(60, "MOVED", journal="done")]   # outside 48 h: not in a bar
    m = views.overview(rows, ["journal", "teams"], NOW, False, {"q": 2}, [], False, None)
    assert len(m["per_hour"]) == 48 and m["per_hour"][-1]["counts"] == {"FULL_TEXT_INDEXED": 2, "MOVED": 0}
    assert m["per_hour"][-6]["counts"]["MOVED"] == 1
    assert m["outcomes"]["teams"]["failed"] == 1 and m["outcomes"]["journal"]["done"] == 3
    assert m["poison_total"] == 2
    chart = views.hour_chart(m)
    assert chart["peak"] == 2 and all(0 <= b["y"] <= chart["h"] and b["h"] > 0 for b in chart["bars"])


def test_more_triggers_than_colours_fold_into_other():
    rows = [_row(1, f"T{i}") for i in range(views.MAX_TRIGGER_SERIES + 3)]
    m = views.overview(rows, [], NOW, False, {}, [], False, None)
    names = [t["name"] for t in m["triggers"]]
    assert names[-1] == "other" and len(names) == views.MAX_TRIGGER_SERIES + 1
    assert sum(t["count"] for t in m["triggers"]) == len(rows)


@pytest.mark.parametrize("template, linked", [
    ("https://archive.example.org/explorer/{ref}", True), ("javascript:alert(1)//{ref}", False),
    ("data:text/html,{ref}", False), (None, False)])
def test_asset_link_only_for_http_templates(template, linked):
    r = views.event_row({"entityRef": ref("a"), "actions": "journal", "journal_state": "done"}, template)
    assert (r["link"] is not None) == linked
    assert r["states"] == [{"action": "journal", "state": "done", "reason": ""}]


def test_event_detail_shows_attempts_and_leaves_claim_bookkeeping_out():
    row = {"PartitionKey": "p", "RowKey": "r", "actions": "teams", "teams_state": "failed", "teams_reason": "HTTP 500",
           "teams_attempts": 2, "teams_at": "t", "teams_lease": "x", "teams_owner": "y", "teams_status": 500}
    d = views.event_detail(row, None, (b"\xff{\"a\":1}", 8), ["teams"])
    [a] = d["actions"]
    assert a["attempts"] == 2 and a["reason"] == "HTTP 500" and a["extra"] == {"status": 500}
    assert d["body"].startswith("\ufffd")                                  # bytes shown, never interpreted


# ---- bounded reads ------------------------------------------------------------------------------------

def _journal_rows(n: int, when: dt.datetime, trigger: str = "FULL_TEXT_INDEXED", event: str = "E") -> None:
    from azure.core.exceptions import ResourceExistsError
    book = journal.default()
    try:
        book.table.create_table()
    except ResourceExistsError:
        pass
    rows = []
    for i in range(n):
        ts = when - dt.timedelta(minutes=i)
        d = envelope.Delivery("s", ts.strftime("%Y-%m-%dT%H:%M:%S"), "T", "1", trigger, ())
        pk, prefix = journal.partition(d), journal.row_prefix(d, "x" * 32)
        rows.append(journal.event_row(pk, prefix + f"{i:032x}", "k", "d" * 32, "", d,
                                      {"entityRef": ref(f"r{i}"), "event": event}, ("journal",)))
        rows[-1].update(journal.state_columns("journal", "done"))
    book.merge_many(rows)


def test_overview_reads_at_most_its_cap(app_env):
    now = dt.datetime.now(dt.UTC)
    _journal_rows(30, now)
    rows, capped = data.window_rows(journal.default(), ["journal"], now, cap=25)
    assert len(rows) == 25 and capped
    rows, capped = data.window_rows(journal.default(), ["journal"], now)
    assert len(rows) == 30 and not capped and set(rows[0]) >= {"trigger", "journal_state"}


def test_events_page_pages_newest_first_and_filters(app_env):
    now = dt.datetime.now(dt.UTC)
    _journal_rows(7, now)
    _journal_rows(2, now - dt.timedelta(hours=1), trigger="MOVED")
    book, today = journal.default(), now.date()
    start, end, _ = data.day_range(None, None, today)
    first, cursor = data.events_page(book, ["journal"], start, end, True, size=5)
    second, last = data.events_page(book, ["journal"], start, end, True, after=cursor, size=5)
    keys = [r["RowKey"] for r in first + second]
    assert len(keys) == 9 and keys == sorted(keys) and last is None
    moved, _ = data.events_page(book, ["journal"], start, end, True, trigger="MOVED")
    assert {r["trigger"] for r in moved} == {"MOVED"} and len(moved) == 2
    assert len(data.events_page(book, ["journal"], start, end, True, action="journal", state="failed")[0]) == 0
    assert len(data.events_page(book, ["journal", "teams"], start, end, True, action="journal")[0]) == 9
    assert len(data.events_page(book, ["journal", "teams"], start, end, True, action="teams")[0]) == 0
    assert len(data.events_page(book, ["journal"], start, end, True, ref=ref("r3"))[0]) == 1


def test_script_in_an_event_field_is_escaped_on_the_events_page(app_env):
    _journal_rows(1, dt.datetime.now(dt.UTC), event="<script>alert(1)</script>")
    body = routes.handle(request("events", url=LOCAL_URL + "events", headers={"Host": "127.0.0.1"}), local_env()).get_body()
    assert b"<script>alert(1)" not in body and b"&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_event_page_escapes_what_preservica_and_the_journal_hold(app_env):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    _journal_rows(1, dt.datetime.now(dt.UTC), event=evil)
    book = journal.default()
    row = next(iter(book.table.list_entities()))
    pk, rk = row["PartitionKey"], row["RowKey"]
    book.merge_many([{"PartitionKey": pk, "RowKey": rk, "journal_reason": evil, "journal_detail": evil,
                      "eventJson": json.dumps({"title": evil}, ensure_ascii=False)}])
    path = f"events/{pk}/{rk}"
    body = routes.handle(request(path, url=LOCAL_URL + path, headers={"Host": "127.0.0.1"}), local_env()).get_body()
    assert b"<script>" not in body and b"<img" not in body
    assert body.count(b"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;") >= 3


def test_no_template_turns_escaping_off():
    """Jinja2's autoescape is on (render.py); `|safe`, `Markup` or an autoescape block would turn it off for a value."""
    for template in (ROOT / "handlers" / "console" / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", text), template.name
    assert render.environment().autoescape is True


def test_a_delivery_stamped_ahead_of_utc_is_in_the_overview(app_env):
    now = dt.datetime.now(dt.UTC)
    _journal_rows(1, now + dt.timedelta(hours=10))     # Preservica's local time, east of UTC
    rows, _ = data.window_rows(journal.default(), ["journal"], now)
    assert len(rows) == 1


def test_gap_report_is_the_reconcilers_last_and_shown_escaped(app_env):
    from handlers.clients import reconcile_state
    assert data.last_gap_report() is None
    at = dt.datetime.now(dt.UTC)
    reconcile_state.default().report({"found": 7, "delivered": 5, "queued": 2, "complete": False,
                                      "error": "<i>budget spent</i>", "secret": "not shown"}, at)
    gap = data.last_gap_report()
    assert (gap["found"], gap["queued"], gap["error"]) == (7, 2, "<i>budget spent</i>") and "secret" not in gap
    body = routes.handle(request("overview", url=LOCAL_URL + "overview", headers={"Host": "127.0.0.1"}), local_env()).get_body()
    assert b"&lt;i&gt;budget spent&lt;/i&gt;" in body and b"<i>budget" not in body


# ---- shipping and cold start ------------------------------------------------------------------------

def test_templates_and_stylesheet_ship_in_the_package():
    from hookops.package import IGNORE_FILE, IgnoreRules, select_files
    files = set(select_files(ROOT, IgnoreRules.from_file(ROOT / IGNORE_FILE)))
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "handlers" / "console").rglob("*")
               if p.is_file() and p.suffix in (".html", ".css")}
    assert shipped and shipped <= files and "handlers/console/templates/base.html" in shipped


def test_function_app_does_not_load_jinja2():
    # (markupsafe is not checked: azure.functions itself loads it, through werkzeug)
    assert not any(m.startswith("jinja2") for m in cold_start_modules())


def test_events_name_where_an_event_came_from():
    row = {"PartitionKey": "1", "RowKey": "2", "entityRef": "7fdea7e0-1e72-4fb1-aadb-d7f9ee6ed8c2", "actions": "journal"}
    assert views.event_row(row, None)["source"] == "webhook"          # rows from before the reconciler
    assert views.event_row({**row, "source": "reconcile"}, None)["source"] == "reconcile"
