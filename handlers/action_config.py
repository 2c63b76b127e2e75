"""Whether each action has what it needs to run. An action routed but not configured is skipped.

Reads settings and (cached) secret presence only: cheap enough for every dispatch.
"""
from __future__ import annotations

from . import settings
from .secrets import SecretSource


def missing(action: str, secrets: SecretSource, env=None) -> str | None:
    """None when `action` can run, else what is missing (setting names, never values)."""
    def unset(*names: str) -> list[str]:
        return [n for n in names if not settings.get(n, env)]

    need: list[str] = []
    if action in ("thumbnail", "catalogue"):
        need += unset("PRESERVICA_SERVER", "PRESERVICA_USERNAME")
        if not secrets.get(settings.KV_PRESERVICA_PASSWORD, "PRESERVICA_PASSWORD"):
            need.append("PRESERVICA_PASSWORD" if not secrets.vault_uri
                        else f"Key Vault secret {settings.KV_PRESERVICA_PASSWORD}")
    if action == "catalogue":
        need += unset("CATALOGUE_URL_TEMPLATE", "CATALOGUE_SCHEMA")
    if action == "teams" and not secrets.get(settings.KV_TEAMS_WEBHOOK_URL, "TEAMS_WEBHOOK_URL"):
        need.append("TEAMS_WEBHOOK_URL" if not secrets.vault_uri else f"Key Vault secret {settings.KV_TEAMS_WEBHOOK_URL}")
    if action == "relay":
        need += unset("RELAY_URL")
        if not secrets.get(settings.KV_RELAY_SECRET, "RELAY_SECRET"):
            need.append("RELAY_SECRET" if not secrets.vault_uri else f"Key Vault secret {settings.KV_RELAY_SECRET}")
    return ", ".join(need) or None
