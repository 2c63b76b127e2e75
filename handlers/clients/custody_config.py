"""The custody copy's settings, each declared once here (the action, the audit timer and the CLI read them).
Below the actions, so that indexing the audit timer's schedule imports no action (cold start)."""
from __future__ import annotations

from ..core.settings import APP, Setting

ACCOUNT_URL = Setting("CUSTODY_ACCOUNT_URL", None, APP,
                      "Blob endpoint of the custody storage account, e.g. `https://<account>.blob.core.windows.net`; "
                      "empty: the pipeline's own storage (Azurite locally).")
CONTAINER = Setting("CUSTODY_CONTAINER", "custody", APP,
                    "Blob container that is the custody copy's OCFL storage root.")
AUDIT_SCHEDULE = Setting("CUSTODY_AUDIT_SCHEDULE", "0 0 2 * * *", APP,
                         "NCRONTAB schedule of the custody audit; each run re-reads 1/`CUSTODY_AUDIT_DAYS` of the "
                         "stored objects, so it must fire at least daily. Empty turns it off.")
AUDIT_DAYS = Setting("CUSTODY_AUDIT_DAYS", "90", APP,
                     "Every custody object is audited (its blobs read back and their digests checked) within this "
                     "many days.")
AUDIT_MAX_REQUESTS = Setting("CUSTODY_AUDIT_MAX_REQUESTS", "5000", APP,
                             "Most Preservica requests one custody audit run makes to read the current fixity of "
                             "the objects it audits (about 7 for an asset of one file); when spent, the run stops "
                             "and the next resumes at the prefix it stopped in.")
MAX_BYTES = Setting("CUSTODY_MAX_BYTES", "10737418240", APP,
                    "Most bytes of preservation files the `custody` action reads for one asset (10 GiB): a larger "
                    "asset fails its event, nothing is written.")
SETTINGS = (ACCOUNT_URL, CONTAINER, AUDIT_SCHEDULE, AUDIT_DAYS, AUDIT_MAX_REQUESTS, MAX_BYTES)


def storage_root():
    """The ContainerClient of the custody storage root."""
    from . import custody_store
    return custody_store.container(ACCOUNT_URL.value(), CONTAINER.value())


def object_id(ref: str) -> str:
    """The OCFL object id of an asset (spec 3.5.1: a URI is recommended)."""
    return f"preservica:io:{ref}"
