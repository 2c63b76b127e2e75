"""local.settings.json: created from the example with a fresh secret, and loaded like `func start` does."""
from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "local.settings.json"
EXAMPLE = ROOT / "local.settings.json.example"
SECRET_SETTING = "PRESERVICA_WEBHOOK_SECRET"


def ensure(path: Path = PATH, example: Path = EXAMPLE) -> bool:
    """Create local.settings.json with a generated secret if it is missing. True if created."""
    if path.exists():
        return False
    doc = json.loads(example.read_text())
    doc["Values"][SECRET_SETTING] = secrets.token_urlsafe(32)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    path.chmod(0o600)  # it holds a secret
    return True


def values(path: Path = PATH) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise SystemExit(f"{path} is not valid JSON: {exc}") from None
    return {k: str(v) for k, v in (doc.get("Values") or {}).items() if v is not None}


def merge(values: Mapping[str, str], environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What local settings add to `environ`, and the names they may not set, by Core Tools' rules
    (azure-functions-core-tools `src/Cli/func/Actions/HostActions/StartHostAction.cs`,
    `UpdateEnvironmentVariables`): a variable already set to a non-empty value wins over the file;
    an empty or unset one takes the file's value, an empty value included."""
    applied, skipped = {}, []
    for key, value in values.items():
        if not key:
            continue
        if environ.get(key):
            skipped.append(key)
        else:
            applied[key] = value
    return applied, skipped


def skipped_line(key: str) -> str:
    """Core Tools' words for a setting the environment overrides (same file as merge())."""
    return f"Skipping '{key}' from local settings as it's already defined in current environment variables."


# What load() put into this process's environment: not "already defined" for a later load (the CLI group
# loads before `hookops run` does), and left out of the environment a child `func start` is given.
LOADED: dict[str, str] = {}


def load(path: Path = PATH, say: Callable[[str], None] | None = None) -> dict[str, str]:
    """Put Values into the environment without overriding what is already set (as `func start`), and
    `say` one line per setting the environment overrides. Returns what it set."""
    applied, skipped = merge(values(path), inherited(os.environ))
    for key in skipped:
        if say:
            say(skipped_line(key))
    applied = {k: v for k, v in applied.items() if os.environ.get(k) != v}
    os.environ.update(applied)
    LOADED.update(applied)
    return applied


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment as this process was given it: without what load() added."""
    return {k: v for k, v in environ.items() if not (k in LOADED and LOADED[k] == v)}
