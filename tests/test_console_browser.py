"""The console in a real browser (Debian's chromium, driven by Playwright's Python client) against the
local runner, Azurite and the doubles: deliveries in, events listed and filtered, an event opened, a
poison message replayed by clicking, and a script in a Preservica title that never runs; the custody
copy's coverage, last audit and an event's OCFL version, with markup in a file name that stays text.

`CONSOLE_SCREENSHOTS=1` also writes docs/console-overview.png and docs/console-events.png (docs/operations.md shows them).
"""
import contextlib
import json
import os
import shutil

import pytest

from handlers.console import routes
from handlers.core import hosting, settings
from hookops.doubles.deliveries import ref
from hookops.runner import Runner
from tests.support.e2e import FAST_HOST, hookops, queue_count, rows_done, wait_until, webhook
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
EVIL = "<script>window.__pwned = 1; alert('xss')</script><img src=x onerror=alert(2)>Minute book"

if CHROMIUM is None:
    pytest.skip("chromium is not installed (.ci/run installs Debian's package)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def _running(tmp_path, monkeypatch, pres, routes_setting: str, **more):
    """The local runner with Preservica at the double, routed as given, as `hookops run` starts it."""
    from handlers.clients import preservica
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(FAST_HOST))
    monkeypatch.chdir(tmp_path)  # no stray credentials.properties for pyPreservica
    preservica.forget_client()
    for name, value in {"PRESERVICA_ROUTES": routes_setting,
                        "PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p",
                        "PRESERVICA_TENANT": "T", "PRESERVICA_PROTOCOL": "http",
                        "ASSET_URL_TEMPLATE": "https://archive.invalid/explorer/{ref}",
                        "NO_PROXY": "127.0.0.1,localhost",
                        hosting.LOCAL_CONSOLE: "1", **more}.items():   # what `hookops run` sets
        monkeypatch.setenv(name, value)
    for name in hosting.HOSTED:  # e.g. a CI container's CONTAINER_NAME: the host would read it as Azure
        monkeypatch.delenv(name, raising=False)
    try:
        with Runner(ROOT, port=0, host_json=host_json) as runner:
            yield runner
    finally:
        preservica.forget_client()


@pytest.fixture
def console(app_env, tmp_path, monkeypatch):
    """The runner with Preservica (a title carrying a script) and a Teams channel that fails at first."""
    from hookops.doubles.preservica import PreservicaDouble
    from hookops.doubles.receivers import TeamsDouble
    with PreservicaDouble(username="u", password="p", tenant="T") as pres, TeamsDouble() as teams, \
            _running(tmp_path, monkeypatch, pres, "FULL_TEXT_INDEXED=journal,teams;*=journal",
                     TEAMS_WEBHOOK_URL=teams.url) as runner:
        yield runner, pres, teams


def _watch(page) -> list[str]:
    """Every dialog and console message the page raises: a script that ran would show up here."""
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("console", lambda m: None if (m.location or {}).get("url", "").endswith("/favicon.ico")  # the browser's own
            else seen.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: seen.append(f"error: {e}"))
    return seen


def test_console_end_to_end(console, browser, app_env):
    runner, pres, teams = console
    base = f"{runner.url}/api/console"
    evil, plain = ref("console-evil"), [ref(f"console-{i}") for i in range(3)]
    pres.add_asset(evil, EVIL)
    for r in plain:
        pres.add_asset(r, f"Harbour map {r[:4]}")
    attempts = FAST_HOST["extensions"]["queues"]["maxDequeueCount"]
    teams.respond_with(500, times=attempts)          # the evil asset's Teams card fails into poison
    hookops("send-test-event", "--url", webhook(runner), "--ref", evil)
    poison = settings.action_queue("teams") + "-poison"
    wait_until(lambda: queue_count(app_env.connection_string, poison) == 1, timeout=60)
    hookops("send-test-event", "--url", webhook(runner), *[a for r in plain for a in ("--ref", r)])
    hookops("send-test-event", "--url", webhook(runner), "--trigger", "MOVED", "--ref", plain[0])
    wait_until(lambda: set(plain) <= set(rows_done("teams")), timeout=60)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    assert page.goto(f"{base}/overview").status == 401           # a local run's console wants its link
    seen = _watch(page)
    page.goto(f"{base}/overview?token={routes.local_token()}")  # the link `hookops run` prints
    assert page.url == f"{base}/overview"                         # the token went into a cookie
    assert page.locator("svg.chart rect").count() > 0 and "action-teams-poison" in page.content()
    _screenshot(page, "console-overview.png")

    page.goto(f"{base}/events")
    assert page.locator("table.events tr").count() == 1 + 5        # header + 5 events
    assert page.locator(".state.s-failed").count() == 1
    _screenshot(page, "console-events.png")
    page.select_option("select[name=action]", "teams")
    page.select_option("select[name=state]", "failed")
    page.click("button[type=submit]")
    rows = page.locator("table.events tr")
    assert rows.count() == 2 and evil in rows.nth(1).inner_text()
    assert page.locator("a", has_text="open in Preservica").first.get_attribute("href").endswith(evil)

    page.locator("table.events tr").nth(1).locator("a").first.click()   # the event page
    assert "Journal row" in page.content() and evil in page.inner_text("main")
    assert "failed" in page.inner_text("main")

    page.goto(f"{base}/poison")
    assert EVIL in page.inner_text("main")                 # the title is shown as text...
    page.click("button:has-text('Replay…')")               # ...and replayed, after a confirmation
    assert "Yes, replay" in page.content()
    page.click("button:has-text('Yes, replay')")
    assert "Replayed 1 message(s)" in page.inner_text("main")
    wait_until(lambda: evil in rows_done("teams"), timeout=60)
    page.goto(f"{base}/events?ref={evil}")
    assert page.locator(".state.s-done", has_text="teams").count() == 1
    assert page.evaluate("window.__pwned") is None and not seen, seen   # no script of the title ran


def test_a_cross_site_form_post_is_refused(console, browser):
    runner, _, _ = console
    page = browser.new_page()
    page.goto(f"{runner.url}/api/console/poison?token={routes.local_token()}")  # a session, no form token
    resp = page.request.post(f"{runner.url}/api/console/poison/replay",
                             form={"queue": settings.DELIVERY_QUEUE, "message": "all", "confirm": "yes"},
                             headers={"Origin": "http://127.0.0.1:1"})
    assert resp.status == 403


SCAN = '<img src=x onerror="window.__pwned = 1">scan.tif'   # a file name Preservica holds, as Preservica gives it


@pytest.fixture
def custody_console(app_env, tmp_path, monkeypatch):
    """The runner routing custody; Preservica with one good asset and one whose recorded fixity is wrong."""
    from hookops.doubles.preservica import PreservicaDouble
    with PreservicaDouble(username="u", password="p", tenant="T") as pres, \
            _running(tmp_path, monkeypatch, pres, "FULL_TEXT_INDEXED=journal,custody;*=journal") as runner:
        yield runner, pres


def _custody_state(ref_: str) -> str | None:
    from handlers.clients import journal
    return next((r.get("custody_state") for r in journal.default().recent(100) if r.get("entityRef") == ref_), None)


def test_custody_in_the_console(custody_console, browser):
    from handlers import custody_audit
    runner, pres = custody_console
    base = f"{runner.url}/api/console"
    good, bad = ref("custody-good"), ref("custody-bad")
    pres.add_asset(good, "Harbour map", bitstreams=[("map.tif", 4096)])
    pres.add_asset(bad, "Minute book", bitstreams=[(SCAN, 2048)])
    pres.set_fixity(bad, SCAN, "SHA1", "0" * 40)
    hookops("send-test-event", "--url", webhook(runner), "--ref", good, "--ref", bad)
    wait_until(lambda: _custody_state(good) == "done" and _custody_state(bad) == "failed", timeout=60)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = _watch(page)
    page.goto(f"{base}/overview?token={routes.local_token()}")
    panel = page.locator("section.custody")
    assert "Assets with a copy\t1\nVerified\t1" in panel.inner_text() and "No audit report yet." in panel.inner_text()
    custody_audit.run(prefixes=custody_audit.PREFIXES)          # the timer's run, in this process
    page.reload()
    assert "audited 1, ok 1, mismatched 0, missing 0" in page.locator("section.custody p.audit").inner_text()

    page.goto(f"{base}/events?ref={good}")
    page.locator("table.events tr").nth(1).locator("a").first.click()
    assert page.locator("section.custody .outcome").inner_text() == "v1 written"
    assert "OCFL version v1" in page.locator("section.custody").inner_text()
    page.goto(f"{base}/events?ref={bad}")
    page.locator("table.events tr").nth(1).locator("a").first.click()
    outcome = page.locator("section.custody .outcome").inner_text()
    assert f"fixity failure: {SCAN}: sha1" in outcome and outcome.endswith("no copy yet")   # the name, as text
    assert page.locator("section.custody img").count() == 0 and page.locator("main img").count() == 0
    assert page.evaluate("window.__pwned") is None and not seen, seen


def _screenshot(page, name: str) -> None:
    if os.environ.get("CONSOLE_SCREENSHOTS"):
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / name), full_page=True)
