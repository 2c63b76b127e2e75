"""local.settings.json: created from the example with a fresh secret, and loaded like `func start` does."""
from __future__ import annotations

import json
import os
import secrets
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


def load(path: Path = PATH) -> None:
    """Put Values into the environment without overriding what is already set (as `func start`)."""
    for key, value in values(path).items():
        if value != "" and key not in os.environ:
            os.environ[key] = value
