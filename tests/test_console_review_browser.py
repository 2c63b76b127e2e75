"""The review of describe's drafts in a real browser (Debian's chromium through Playwright) against the local
runner, Azurite and the Preservica double: a draft listed, edited, accepted and written once with provenance, and
the public manifest's summary then refreshed by publish (queued by the accept); a rejected draft never written;
an asset whose description changed since its draft shows the conflict instead; a draft describe replaced while its
page was open is not accepted from the old page: the new draft is shown and what the reviewer typed is kept."""
import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from handlers.console import routes
from handlers.core import hosting
from hookops import azurite as az
from hookops.runner import Runner
from tests.support.e2e import FAST_HOST, wait_until
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
if CHROMIUM is None:
    pytest.skip("chromium is not installed (.ci/run installs Debian's package)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

ACCEPTED, REJECTED, CHANGED = ("0d9d4a4e-0000-4000-8000-00000000f101", "0d9d4a4e-0000-4000-8000-00000000f102",
                               "0d9d4a4e-0000-4000-8000-00000000f103")
REPLACED = "0d9d4a4e-0000-4000-8000-00000000f104"
NEW = "A letter of 1921 about the harbour wall, with a plan of the breach."
SCHEMA = "urn:example:reviewed"
DRAFT = "A letter of 1921 about the harbour wall."
SMUGGLED = "<script>window.__pwned = 1</script>"


def _draft(ref: str, description: str, text: str = DRAFT, draft_id: str = "") -> None:
    from handlers.clients.storage import default
    record = {"ref": ref, "draftId": draft_id, "status": "pending", "reason": "", "draft": text,
              "title": f"Letter {ref[-3:]}",
              "description": description, "sources": ["ocr"], "inputCut": False,
              "provenance": {"service": "Azure OpenAI", "deployment": "describer", "model": "gpt-4o-2024-11-20",
                             "apiVersion": "2024-10-21", "promptSha256": "ab" * 32, "date": "2026-12-07T03:00:00Z",
                             "promptTokens": 100, "completionTokens": 20}}
    default().put_blob("drafts", f"{ref}.json", json.dumps(record).encode(), "application/json",
                       {"ref": ref, "status": "pending"})


@pytest.fixture
def console(app_env, tmp_path, monkeypatch):
    from handlers.clients import preservica
    from hookops.doubles.preservica import PreservicaDouble, make_png
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(FAST_HOST))
    monkeypatch.chdir(tmp_path)
    preservica.forget_client()
    with PreservicaDouble(username="u", password="p", tenant="T") as pres:
        pres.add_asset(ACCEPTED, "Letter 101", description=SMUGGLED, bitstreams=[("page.png", make_png(), "Access")])
        pres.add_asset(REJECTED, "Letter 102")
        pres.add_asset(CHANGED, "Letter 103", description="Written by a person after the draft.")
        _draft(ACCEPTED, SMUGGLED)
        _draft(REJECTED, "")
        _draft(CHANGED, "")
        pres.add_asset(REPLACED, "Letter 104")
        _draft(REPLACED, "", draft_id="1")
        for name, value in {"PRESERVICA_ROUTES": "CHANGED_SECURITY_DESCRIPTOR=journal,publish;*=journal",
                            "PRESERVICA_SERVER": pres.server,
                            "PRESERVICA_USERNAME": "u", "PRESERVICA_PASSWORD": "p", "PRESERVICA_TENANT": "T",
                            "PRESERVICA_PROTOCOL": "http", "NO_PROXY": "127.0.0.1,localhost",
                            "DESCRIBE_SCHEMA": SCHEMA, hosting.LOCAL_CONSOLE: "1"}.items():
            monkeypatch.setenv(name, value)
        for name in hosting.HOSTED:
            monkeypatch.delenv(name, raising=False)
        with Runner(ROOT, port=az.free_port(), host_json=host_json) as runner:
            yield runner, pres
    preservica.forget_client()


def _summary(env, ref: str) -> dict | None:
    from azure.storage.blob import BlobServiceClient
    blob = BlobServiceClient.from_connection_string(env.connection_string).get_blob_client("iiif", f"{ref}/manifest.json")
    return json.loads(blob.download_blob().readall()).get("summary") if blob.exists() else None


def test_review_in_the_browser(console, app_env):
    runner, pres = console
    base = f"{runner.url}/api/console"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("dialog", lambda d: (errors.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/drafts?token={routes.local_token()}")
            assert page.locator(f"a:has-text('{ACCEPTED}')").count() == 1

            page.click(f"a:has-text('{ACCEPTED}')")              # listed beside the current description
            assert SMUGGLED in page.inner_text("main") and DRAFT in page.input_value("textarea")
            page.fill("textarea", DRAFT + " Edited by hand.")
            page.click("button:has-text('Accept')")
            assert "Draft accepted" in page.inner_text("main")
            assert pres.saved == [(ACCEPTED, "Letter 101", DRAFT + " Edited by hand.")]   # written once
            [(schema, xml)] = pres.metadata(ACCEPTED)
            assert schema == SCHEMA and "machine-drafted, reviewed by" in ET.fromstring(xml).findtext(
                f"{{{SCHEMA}}}provenance")

            page.goto(f"{base}/drafts/{REJECTED}")
            page.click("button:has-text('Reject')")
            assert "Draft rejected" in page.inner_text("main")
            page.goto(f"{base}/drafts/{CHANGED}")
            assert "changed since this draft was made" in page.inner_text("main")
            assert page.locator("button:has-text('Accept')").count() == 0
            assert [r for r, _, _ in pres.saved] == [ACCEPTED] and pres.metadata(REJECTED) == []
            assert page.evaluate("window.__pwned") is None and not errors, errors
            # No webhook stands for the description written: the accept queued publish, which refreshed the summary.
            wait_until(lambda: _summary(app_env, ACCEPTED) == {"none": [DRAFT + " Edited by hand."]}, timeout=60)
            assert _summary(app_env, REJECTED) is None and _summary(app_env, CHANGED) is None

            page.goto(f"{base}/drafts/{REPLACED}")            # opened, edited; describe drafts again meanwhile
            page.fill("textarea", DRAFT + " Typed by the reviewer.")
            _draft(REPLACED, "", NEW, draft_id="2")
            page.click("button:has-text('Accept')")
            assert "replaced since the page was shown" in page.inner_text("main")
            assert page.inner_text("#new-draft") == NEW
            assert page.input_value("textarea") == DRAFT + " Typed by the reviewer."
            assert not [r for r, _, _ in pres.saved if r == REPLACED] and pres.metadata(REPLACED) == []
            page.click("button:has-text('Accept')")           # decided again, on the new draft's page
            assert "Draft accepted" in page.inner_text("main")
            assert (REPLACED, "Letter 104", DRAFT + " Typed by the reviewer.") in pres.saved
        finally:
            browser.close()
