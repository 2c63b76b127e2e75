"""The CLI tests' world: Preservica's admin credentials for the double and subscriptions seeded into it.
Its fixtures (pres, env) are in tests/cli/conftest.py."""
from __future__ import annotations

from hookops.doubles.preservica import PreservicaDouble

USER, PASSWORD, TENANT = "hook-admin", "s3cure-pass-phrase", "ARCHIVE"
SECRET = "cli-test-webhook-secret"


def seed(pres: PreservicaDouble, url: str, trigger: str) -> str:
    """A subscription made earlier (by anyone): straight into the double, as Preservica stores it."""
    sub_id = f"{len(pres.subscriptions):032x}"
    pres.subscriptions[sub_id] = {"id": sub_id, "url": url, "triggerType": trigger, "secret": "x",
                                  "includeIdentifiers": True, "created": "2026-11-29T10:00:00.000+00:00"}
    return sub_id
