"""Every app setting the app, the CLI and the local runner read: name, default, meaning.

This module is the single list. The README configuration table, `local.settings.json.example`
and `bicep/main.bicep` are tested against it, so a setting renamed on one side only fails CI.
Pure: reads a mapping (os.environ by default), imports nothing from Azure.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

# Where a setting is set:
#   "app"   - read by our code; main.bicep sets it as an app setting.
#   "local" - read by our code only on a developer machine; in Azure the value comes from Key Vault
#             (or the identity-based settings replace it).
#   "host"  - read by the Functions host, not by our code; listed so the contract tests see all names.
APP, LOCAL, HOST = "app", "local", "host"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    where: str
    meaning: str

    @property
    def numeric(self) -> bool:
        """A whole-number setting (its default is one): checked by problems()."""
        return bool(self.default and self.default.isdigit())


SETTINGS: tuple[Setting, ...] = (
    # Storage: a connection string locally, identity-based URIs in Azure.
    Setting("AzureWebJobsStorage", None, LOCAL,
            "Storage connection string (local: `UseDevelopmentStorage=true`, i.e. Azurite). "
            "In Azure the identity-based `AzureWebJobsStorage__*` settings replace it."),
    Setting("AzureWebJobsStorage__credential", None, APP, "`managedidentity`: storage is reached with the app's identity."),
    Setting("AzureWebJobsStorage__clientId", None, APP, "Client ID of the user-assigned identity used for storage."),
    Setting("AzureWebJobsStorage__blobServiceUri", None, APP, "Blob endpoint, e.g. `https://<account>.blob.core.windows.net`."),
    Setting("AzureWebJobsStorage__queueServiceUri", None, APP, "Queue endpoint, e.g. `https://<account>.queue.core.windows.net`."),
    Setting("AzureWebJobsStorage__tableServiceUri", None, APP, "Table endpoint, e.g. `https://<account>.table.core.windows.net`."),
    Setting("AZURE_CLIENT_ID", None, APP, "Client ID of the user-assigned identity for `DefaultAzureCredential` (Key Vault)."),
    # Secrets.
    Setting("KEY_VAULT_URI", None, APP,
            "Key Vault URI. When set, every secret is read from Key Vault (names below), never from app settings."),
    Setting("WEBHOOK_SECRET_NAME", "preservica-webhook-secret", APP,
            "Key Vault secret holding the webhook HMAC secret; `<name>-previous` holds the one being rotated out."),
    Setting("SECRET_CACHE_SECONDS", "300", APP, "How long a secret read from Key Vault is reused before it is read again."),
    Setting("STORAGE_TIMEOUT_SECONDS", "20", APP,
            "How long one storage call may wait for an answer before it is retried (then the unit of work fails "
            "and is retried by the sender or the queue)."),
    Setting("PRESERVICA_WEBHOOK_SECRET", None, LOCAL, "Webhook HMAC secret when Key Vault is not used (local)."),
    Setting("PRESERVICA_WEBHOOK_SECRET_PREVIOUS", None, LOCAL,
            "Previous webhook secret, still accepted during a rotation (local)."),
    # Intake and routing.
    Setting("MAX_BODY_BYTES", "4194304", APP, "Largest delivery body accepted; larger ones get 413 before any HMAC work."),
    Setting("MAX_EVENTS_PER_DELIVERY", "1000", APP,
            "Most events one delivery may hold; a signed delivery with more gets 400 and is kept in "
            "`rejected-deliveries`. Bounds the work and memory of one dispatch."),
    Setting("PRESERVICA_ROUTES", "*=journal", APP,
            "Which actions run for which trigger, e.g. "
            "`FULL_TEXT_INDEXED=journal,thumbnail,teams;INGEST_FAILED=journal,teams;*=journal`."),
    # Preservica (actions and subscription management).
    Setting("PRESERVICA_SERVER", None, APP, "Preservica host name, e.g. `eu.preservica.com`."),
    Setting("PRESERVICA_USERNAME", None, APP, "Preservica user for the actions and `subscribe`."),
    Setting("PRESERVICA_TENANT", None, APP, "Preservica tenant."),
    Setting("PRESERVICA_PROTOCOL", "https", APP, "`https`, or `http` for a local test double."),
    Setting("PRESERVICA_PASSWORD", None, LOCAL, "Preservica password (local); Key Vault secret `preservica-password` in Azure."),
    # Actions.
    Setting("THUMBNAIL_SIZE", "large", APP, "Thumbnail size to keep: `large`, `medium` or `small`."),
    Setting("THUMBNAIL_CONTAINER", "thumbnails", APP, "Blob container the `thumbnail` action writes to."),
    Setting("TEAMS_WEBHOOK_URL", None, LOCAL,
            "Teams Workflows webhook URL (local); Key Vault secret `teams-webhook-url` in Azure. It is a credential."),
    Setting("TEAMS_DIGEST_THRESHOLD", "10", APP, "A delivery with more events than this posts one digest card."),
    Setting("ASSET_URL_TEMPLATE", None, APP, "Link to an asset for cards, e.g. `https://host/explorer/{ref}`."),
    Setting("CATALOGUE_URL_TEMPLATE", None, APP, "Catalogue record URL, e.g. `https://catalogue.example.org/records/{identifier}`."),
    Setting("CATALOGUE_IDENTIFIER_TYPE", "catalogue", APP, "Identifier type whose value is looked up in the catalogue."),
    Setting("CATALOGUE_SCHEMA", None, APP, "Schema URI of the metadata fragment the `catalogue` action attaches."),
    Setting("RELAY_URL", None, APP, "Receiver the `relay` action POSTs Standard Webhooks to."),
    Setting("RELAY_SECRET", None, LOCAL, "Standard Webhooks secret (`whsec_...`) for `relay` (local); Key Vault `relay-secret` in Azure."),
    # Read by the Functions host only.
    Setting("FUNCTIONS_WORKER_RUNTIME", "python", HOST, "Language worker (local `func start`; Flex sets it from `functionAppConfig`)."),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", None, HOST, "Application Insights target (set by Bicep)."),
    Setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", None, HOST,
            "`Authorization=AAD;ClientId=...`: telemetry sent with the identity, no instrumentation key auth."),
)

BY_NAME = {s.name: s for s in SETTINGS}

# Key Vault secret names (fixed, so Bicep and code agree; the webhook one can be renamed by setting).
KV_PRESERVICA_PASSWORD = "preservica-password"
KV_TEAMS_WEBHOOK_URL = "teams-webhook-url"
KV_RELAY_SECRET = "relay-secret"

# Storage resource names. Fixed rather than settings: Bicep creates exactly these.
DELIVERY_QUEUE = "preservica-deliveries"
ACTION_QUEUE_PREFIX = "action-"
DELIVERY_CONTAINER = "deliveries"          # claim-check bodies too large for one queue message
REJECTED_CONTAINER = "rejected-deliveries"  # signed but malformed bodies, kept for inspection
JOURNAL_TABLE = "journal"

# Every action the pipeline can route to; each has its own queue and queue-triggered function.
ACTIONS = ("journal", "thumbnail", "teams", "catalogue", "relay")


def action_queue(action: str) -> str:
    return ACTION_QUEUE_PREFIX + action


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


def get(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of a declared setting, its default when unset or blank."""
    spec = BY_NAME[name]  # KeyError: an undeclared setting is a bug, caught by tests
    value = (os.environ if env is None else env).get(name)
    if value is None or not value.strip():
        return spec.default
    return value.strip()


def get_int(name: str, env: Mapping[str, str] | None = None, minimum: int = 0) -> int:
    raw = get(name, env)
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def problems(env: Mapping[str, str] | None = None) -> list[str]:
    """Every setting value the app cannot use, each naming its setting (`hookops settings --check`,
    `hookops run`). Empty when all is well."""
    from .routing import parse  # routing builds on this module
    found = []
    for spec in SETTINGS:
        if spec.numeric:
            try:
                get_int(spec.name, env)
            except SettingsError as exc:
                found.append(str(exc))
    try:
        parse(get("PRESERVICA_ROUTES", env))
    except SettingsError as exc:
        found.append(str(exc))
    return found
