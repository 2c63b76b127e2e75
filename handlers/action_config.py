"""Whether each action has what it needs to run. An action routed but not configured is skipped.

Reads settings and (cached) secret presence only: cheap enough for every dispatch, and no
action library is imported.
"""
from __future__ import annotations

from . import settings
from .secrets import SecretSource


def _unset(env, *names: str) -> list[str]:
    return [n for n in names if not settings.get(n, env)]


def _secret_unset(secrets: SecretSource, vault_name: str, local_setting: str) -> list[str]:
    if secrets.get(vault_name, local_setting):
        return []
    return [f"Key Vault secret {vault_name}" if secrets.vault_uri else local_setting]


def preservica_missing(secrets: SecretSource, env=None) -> list[str]:
    """What the Preservica client lacks (setting names, never values)."""
    return (_unset(env, "PRESERVICA_SERVER", "PRESERVICA_USERNAME")
            + _secret_unset(secrets, settings.KV_PRESERVICA_PASSWORD, "PRESERVICA_PASSWORD"))


def missing(action: str, secrets: SecretSource, env=None) -> str | None:
    """None when `action` can run, else what is missing (setting names, never values)."""
    need: list[str] = []
    if action in ("thumbnail", "catalogue"):
        need += preservica_missing(secrets, env)
    if action == "catalogue":
        need += _unset(env, "CATALOGUE_URL_TEMPLATE", "CATALOGUE_SCHEMA")
    if action == "teams":
        need += _secret_unset(secrets, settings.KV_TEAMS_WEBHOOK_URL, "TEAMS_WEBHOOK_URL")
    if action == "relay":
        need += _unset(env, "RELAY_URL") + _secret_unset(secrets, settings.KV_RELAY_SECRET, "RELAY_SECRET")
    return ", ".join(need) or None
