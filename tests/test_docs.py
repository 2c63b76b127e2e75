"""The README and docs/ follow the code: the one settings list, the sections a reader looks for, and links that
resolve (a relative link to a missing file or heading fails)."""
import json
import re
from pathlib import Path

import pytest

from handlers.core import settings
from handlers.pipeline import registry
from hookops.cli import settings_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("architecture", "security", "configuration", "actions", "reconciliation", "operations", "deploy",
         "development", "benchmarks")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`", "", heading.strip().lstrip("#").strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    found, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            found.add(_slug(line))
    return found


def test_configuration_table_is_current():
    page = (DOCS / "configuration.md").read_text()
    block = re.search(r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", page, re.S)
    assert block, "docs/configuration.md lacks the settings-table markers"
    assert block.group(1).strip() == settings_table(), "regenerate with: .venv/bin/hookops settings"


def test_example_local_settings_cover_every_setting_the_code_reads_locally():
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    wanted = {s.name for s in registry.all_settings() if s.where in (settings.APP, settings.LOCAL)}
    azure_only = {n for n in wanted if n.startswith("AzureWebJobsStorage__")}
    assert set(values) - {"FUNCTIONS_WORKER_RUNTIME"} == wanted - azure_only
    for s in registry.all_settings():
        if s.name in values and s.default:
            assert values[s.name] == s.default, f"{s.name}: example says {values[s.name]!r}, code default {s.default!r}"


def test_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    for needle in ("make run", "make test", "```mermaid", "## The first event", "## Documentation"):
        assert needle in readme
    assert len(readme.splitlines()) <= 250
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    for page in PAGES:
        assert f"(docs/{page}.md)" in readme, f"README's index does not link docs/{page}.md"


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"{page.name} is not in the README's index"


@pytest.mark.parametrize("doc", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path):
    text, fence = [], False
    for line in doc.read_text().splitlines():   # code blocks hold examples, not links
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            text.append(line)
    for target in LINK.findall("\n".join(text)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: link to missing {target}"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{doc.name}: link to missing heading {target}"
