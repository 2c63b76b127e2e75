"""The README and local.settings.json.example follow the one settings list."""
import json
import re
from pathlib import Path

from handlers.actions import registry
from handlers.core import settings
from hookops.cli import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_table_is_current():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", readme, re.S)
    assert block, "README lacks the settings-table markers"
    assert block.group(1).strip() == settings_table(), "regenerate with: .venv/bin/hookops settings"


def test_example_local_settings_cover_every_setting_the_code_reads_locally():
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    wanted = {s.name for s in registry.all_settings() if s.where in (settings.APP, settings.LOCAL)}
    azure_only = {n for n in wanted if n.startswith("AzureWebJobsStorage__")}
    assert set(values) - {"FUNCTIONS_WORKER_RUNTIME"} == wanted - azure_only
    for s in registry.all_settings():
        if s.name in values and s.default:
            assert values[s.name] == s.default, f"{s.name}: example says {values[s.name]!r}, code default {s.default!r}"


def test_readme_has_the_two_commands_and_the_sections():
    readme = (ROOT / "README.md").read_text()
    for needle in ("make run", "make test", "```mermaid", "## Configuration", "## Operator CLI", "## Deploy to Azure",
                   "## Benchmarks"):
        assert needle in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
