"""The pipeline's own app settings: name, default, meaning. Each action module declares its own
settings the same way (handlers/actions/*.py); `pipeline.registry.all_settings()` is the whole list,
and the configuration table in docs/configuration.md, `local.settings.json.example` and `bicep/main.bicep` are tested
against it, so a setting renamed on one side only fails CI.
Pure: reads a mapping (os.environ by default), imports nothing from Azure.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError

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

    def value(self, env: Mapping[str, str] | None = None) -> str | None:
        """The value, stripped; the default when unset or blank."""
        raw = (os.environ if env is None else env).get(self.name)
        if raw is None or not raw.strip():
            return self.default
        return raw.strip()

    def int_value(self, env: Mapping[str, str] | None = None, minimum: int = 0) -> int:
        raw = self.value(env)
        try:
            value = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SettingsError(f"{self.name} must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{self.name} must be at least {minimum}, got {value}")
        return value

    def schedule(self, env: Mapping[str, str] | None = None) -> str | None:
        """A timer's NCRONTAB schedule (settings named *_SCHEDULE): the default when unset, None (no
        timer function at all) when set empty. Six fields, seconds first, as the Functions timer trigger
        takes them (learn.microsoft.com/azure/azure-functions/functions-bindings-timer, "NCRONTAB expressions")."""
        raw = (os.environ if env is None else env).get(self.name)
        text = self.default if raw is None else raw
        if not text or not text.strip():
            return None
        fields = text.split()
        if len(fields) != 6 or any(not set(f) <= set("0123456789*/,-") for f in fields):
            raise SettingsError(f"{self.name} must be an NCRONTAB expression of six fields "
                                f"(second minute hour day month weekday), e.g. '0 */15 * * * *'; got {text!r}")
        return " ".join(fields)

    def timer(self, what: str) -> str | None:
        """The schedule a stage registers its timer function with at indexing; an unusable one turns that
        timer off with an error naming the setting, so the other functions still load."""
        try:
            return self.schedule()
        except SettingsError as exc:   # `hookops settings --check` reports the same
            logging.getLogger("handlers").error("%s: the %s is off", exc, what)
            return None

    def problem(self, env: Mapping[str, str] | None = None) -> str | None:
        """What is wrong with the value (whole numbers, schedules), or None."""
        try:
            if self.name.endswith("_SCHEDULE"):
                self.schedule(env)
            elif self.numeric:
                self.int_value(env)
        except SettingsError as exc:
            return str(exc)
        return None


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
    Setting("AZURE_CLIENT_ID", None, APP,
            "Client ID of the user-assigned identity for `DefaultAzureCredential` (Key Vault)."),
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
            "Page size: the most events of one delivery one dispatcher invocation works through. A larger "
            "delivery (any number of events within `MAX_BODY_BYTES`) is dispatched a page per invocation, each "
            "queuing the next, so this bounds the work and memory of one invocation; reconcile and backfill "
            "queue deliveries of at most this many events."),
    Setting("ACTION_BATCH_SIZE", "50", APP,
            "Most events of one delivery one action message carries (messages also stay within the 48 KiB "
            "queue payload). A failed event is retried alone: the journal knows which ones finished."),
    Setting("ACTION_WAIT_SECONDS", "3600", APP,
            "Longest an event waits, put back on its action's queue: for the actions it runs after (`describe` "
            "after `ocr` and `transcribe`) to finish, before it runs with what exists (and says so in the journal); "
            "for another run of the same asset (`publish`, `custody`) to end, before it fails as any error does. "
            "The default is above the 52.5 min an upstream's five tries of up to 10 min, 30 s apart, can take."),
    Setting("PRESERVICA_ROUTES", "*=journal", APP,
            "Which actions run for which trigger, e.g. "
            "`FULL_TEXT_INDEXED=journal,thumbnail,teams;INGEST_FAILED=journal,teams;*=journal`."),
    # Preservica (actions and subscription management).
    Setting("PRESERVICA_SERVER", None, APP, "Preservica host name, e.g. `eu.preservica.com`."),
    Setting("PRESERVICA_USERNAME", None, APP, "Preservica user for the actions and `subscribe`."),
    Setting("PRESERVICA_TENANT", None, APP, "Preservica tenant."),
    Setting("PRESERVICA_PROTOCOL", "https", APP, "`https`, or `http` for a local test double."),
    Setting("PRESERVICA_MAX_RPS", "10", APP,
            "Most requests per second the whole app sends to Preservica, a shared service the archive's staff use "
            "too. Each busy process takes a share, re-divided as instances come and go (heartbeat rows in the "
            "`reconcile` table); with more busy processes than this, each holds one request a second in turns; "
            "while that table cannot be read, each takes the floor: this divided by `MAXIMUM_INSTANCE_COUNT`."),
    Setting("MAXIMUM_INSTANCE_COUNT", "100", APP,
            "The most instances the app scales out to (the Bicep passes its `maximumInstanceCount`): what "
            "`PRESERVICA_MAX_RPS` is divided by for each process's floor while the live count cannot be read."),
    Setting("PRESERVICA_PASSWORD", None, LOCAL,
            "Preservica password (local); Key Vault secret `preservica-password` in Azure."),
    # Reconciliation with Preservica's own event log, and backfill.
    Setting("RECONCILE_SCHEDULE", "0 */15 * * * *", APP,
            "NCRONTAB schedule of the reconciler, which asks Preservica's event log what the webhooks missed; "
            "empty turns it off."),
    # Ingest and Moved are types public code reads from real servers (TNA dr2-preservica-client fixtures);
    # that Modified covers security and visibility changes is inferred: check with `hookops eventlog-types`.
    Setting("RECONCILE_EVENT_TYPES", "Ingest=FULL_TEXT_INDEXED,Moved=MOVED,Modified=CHANGED_SECURITY_DESCRIPTOR",
            APP, "Which Preservica event-log types stand for which webhook trigger (`EventType=TRIGGER,...`); "
                 "`hookops eventlog-types` lists the types your Preservica logs."),
    Setting("RECONCILE_DELAY_MINUTES", "60", APP,
            "The reconciler looks only at events older than this, so their webhooks have had time to arrive."),
    Setting("RECONCILE_TOLERANCE_MINUTES", "30", APP,
            "A webhook event and a logged one for the same entity and trigger are the same event when "
            "Preservica's two times for it are this close (also the overlap between runs)."),
    Setting("RECONCILE_FIRST_HOURS", "24", APP, "How far back the first reconciliation run looks."),
    Setting("RECONCILE_MAX_REQUESTS", "300", APP,
            "Most Preservica requests one reconciliation run makes; the next run resumes where it stopped."),
    Setting("RECONCILE_STALL_RUNS", "3", APP,
            "After this many incomplete reconciliation runs in a row, each further one raises the "
            "`reconcile-stalled` alert signal."),
    # The public sweep's (handlers/sweep.py, a stage): it re-checks what `publish` made public.
    Setting("PUBLISH_SWEEP_SCHEDULE", "0 30 3 * * *", APP,
            "NCRONTAB schedule of the public sweep, which re-checks every published asset with "
            "Preservica and withdraws or republishes it; set it empty to turn the sweep off."),
    Setting("PUBLISH_SWEEP_MAX_REQUESTS", "5000", APP,
            "Most Preservica requests one public sweep run makes; the next run goes on from "
            "where it stopped."),
    # The public container (clients/public_store.py): declared here, where refuse_public can check every private
    # container against it without importing a client.
    Setting("PUBLISH_CONTAINER", "iiif", APP, "Public-read blob container the `publish` action writes IIIF to."),
    # Two actions': `transcribe` writes there, `publish` reads captions from there.
    Setting("TRANSCRIBE_CONTAINER", "transcripts", APP,
            "Blob container for `<ref>.vtt` captions and `<ref>.txt` transcripts."),
    # Two actions': `ocr` writes there, `describe` reads the text from there.
    Setting("OCR_CONTAINER", "ocr", APP, "Blob container for `<ref>.txt`, the full OCR text."),
    # The console writes what a person accepted of `describe`'s drafts; `publish` reads it for the summary.
    Setting("DESCRIBE_WRITE", "description", APP,
            "What accepting a draft in the console writes: `description` (the asset's description) or "
            "`fragment` (a DESCRIBE_SCHEMA fragment, the description untouched); `publish` takes the "
            "manifest's summary from the same place."),
    Setting("DESCRIBE_SCHEMA", "urn:preservica-webhooks-azure:description:v1", APP,
            "Schema URI of the reviewed-description fragment (its text with DESCRIBE_WRITE=fragment)."),
    # Shown on cards and pages that link to an asset.
    Setting("ASSET_URL_TEMPLATE", None, APP, "Link to an asset for cards, e.g. `https://host/explorer/{ref}`."),
    # Read by the Functions host only.
    Setting("FUNCTIONS_WORKER_RUNTIME", "python", HOST,
            "Language worker (local `func start`; Flex sets it from `functionAppConfig`)."),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", None, HOST, "Application Insights target (set by Bicep)."),
    Setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", None, HOST,
            "`Authorization=AAD;ClientId=...`: telemetry sent with the identity, no instrumentation key auth."),
)

BY_NAME = {s.name: s for s in SETTINGS}

# Key Vault secret names (fixed, so Bicep and code agree; the webhook one can be renamed by setting).
# Each action declares its own; the Preservica password is the pipeline's (several actions share the client).
KV_PRESERVICA_PASSWORD = "preservica-password"

# Storage resource names. Fixed rather than settings: Bicep creates exactly these.
DELIVERY_QUEUE = "preservica-deliveries"
ACTION_QUEUE_PREFIX = "action-"
DELIVERY_CONTAINER = "deliveries"          # claim-check bodies too large for one queue message
REJECTED_CONTAINER = "rejected-deliveries"  # signed but malformed bodies, kept for inspection
CONSOLE_CONTAINER = "console"               # the console's CSRF signing key (private, never expires)
PUBLISH_LOCK_CONTAINER = "publish-locks"    # per-asset lease blobs that serialise publish and withdrawal
# Never the public container (refuse_public, checked both ways); the actions' own container settings
# (DESCRIBE_CONTAINER, THUMBNAIL_CONTAINER, CUSTODY_CONTAINER) are checked where they write.
PRIVATE_CONTAINERS = (DELIVERY_CONTAINER, REJECTED_CONTAINER, CONSOLE_CONTAINER, PUBLISH_LOCK_CONTAINER)
PRIVATE_CONTAINER_SETTINGS = ("TRANSCRIBE_CONTAINER", "OCR_CONTAINER")


def refuse_public(container: str, env: Mapping[str, str] | None = None) -> str:
    """`container`, for a private writer (the pipeline's storage, custody); SettingsError when it is the public
    container's name. Every container name is a setting or a constant, all in one account locally (and with
    PUBLISH_BLOB_SERVICE_URI unset): OCR_CONTAINER=iiif would put every asset's text, closed ones too, where
    anyone may read it, and withdrawing an asset deletes only its `<ref>/` prefix, so it would stay there."""
    public = (get("PUBLISH_CONTAINER", env) or "").strip().lower()
    if (container or "").strip().lower() == public:
        raise SettingsError(f"the private blob container {public!r} is also PUBLISH_CONTAINER, the public one: "
                            f"give them different names")
    return container


JOURNAL_TABLE = "journal"
RECONCILE_TABLE = "reconcile"               # watermark, run reports, backfill progress, event identities


def action_queue(action: str) -> str:
    """Each action has its own queue and queue-triggered function."""
    return ACTION_QUEUE_PREFIX + action


def get(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of one of the settings above (KeyError for any other name: a bug, caught by tests)."""
    return BY_NAME[name].value(env)


def get_int(name: str, env: Mapping[str, str] | None = None, minimum: int = 0) -> int:
    return BY_NAME[name].int_value(env, minimum)


def secret_missing(secrets: Any, vault_name: str, local_setting: str) -> list[str]:
    """[] when the secret is there, else where to put it (a name, never a value). `secrets` is a
    clients.secrets.SecretSource (passed in: this module does no I/O of its own)."""
    if secrets.get(vault_name, local_setting):
        return []
    return [f"Key Vault secret {vault_name}" if secrets.vault_uri else local_setting]


def preservica_missing(secrets: Any, env: Mapping[str, str] | None = None) -> list[str]:
    """What the Preservica client lacks to log in (setting names, never values)."""
    return ([n for n in ("PRESERVICA_SERVER", "PRESERVICA_USERNAME") if not get(n, env)]
            + secret_missing(secrets, KV_PRESERVICA_PASSWORD, "PRESERVICA_PASSWORD"))
