"""Where secrets come from: Key Vault when KEY_VAULT_URI is set, else app settings (local).

Key Vault reads are cached in-process for SECRET_CACHE_SECONDS, so a rotation is seen within
minutes (an app-setting Key Vault reference can take up to a day). When Key Vault cannot be
reached an expired cached value is still used; with nothing cached, SecretUnavailable is raised
and the intake answers 503, never 401. No secret value is ever logged.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping

from ..core import settings
from ..core.errors import SecretUnavailable
from .shared import Shared

log = logging.getLogger(__name__)
_UNRESOLVED_REFERENCE = "@Microsoft.KeyVault("
# After a failed vault read, wait this long before asking again (a stale value, or the failure, is
# served meanwhile): an outage must not make every request queue up for the vault.
RETRY_AFTER_FAILURE = 15.0


class SecretSource:
    def __init__(self, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic,
                 client=None):
        env = os.environ if env is None else env
        self._env = env
        self.vault_uri = settings.get("KEY_VAULT_URI", env)
        self.ttl = settings.get_int("SECRET_CACHE_SECONDS", env)
        self._clock = clock
        self._client = client
        self._cache: dict[str, tuple[str | None, float]] = {}   # name -> (value, good until)
        self._failed: dict[str, float] = {}                     # name -> no vault read before this time
        self._locks: dict[str, threading.Lock] = {}             # one per secret: one slow read holds up only its own
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------------------------

    def get(self, vault_name: str, local_setting: str) -> str | None:
        """The secret's value, or None when it is not configured."""
        if self.vault_uri:
            return self._from_vault(vault_name)
        value = _normal(self._env.get(local_setting))
        if value and value.startswith(_UNRESOLVED_REFERENCE):
            log.warning("%s is an unresolved Key Vault reference; treating it as not set", local_setting)
            return None
        return value

    def webhook_secrets(self) -> list[str]:
        """Current secret first, then the previous one while a rotation is under way."""
        name = settings.get("WEBHOOK_SECRET_NAME", self._env)
        current = self.get(name, "PRESERVICA_WEBHOOK_SECRET")
        if not current:
            where = f"Key Vault secret {name!r}" if self.vault_uri else "PRESERVICA_WEBHOOK_SECRET"
            raise SecretUnavailable(f"the webhook secret is not configured ({where})")
        try:
            previous = self.get(name + "-previous", "PRESERVICA_WEBHOOK_SECRET_PREVIOUS")
        except SecretUnavailable as exc:  # optional: its outage must not refuse deliveries signed with the current one
            log.warning("previous webhook secret unavailable, accepting the current one only: %s", exc)
            previous = None
        return [current, previous] if previous and previous != current else [current]

    # -- Key Vault -----------------------------------------------------------------------------

    def _vault(self):
        if self._client is None:
            from azure.keyvault.secrets import SecretClient

            from .identity import credential
            # Fail fast: the caller answers 503 and the sender retries, rather than holding the request.
            self._client = SecretClient(self.vault_uri, credential(), retry_total=2, retry_backoff_factor=0.5,
                                        connection_timeout=5, read_timeout=10)
        return self._client

    def _from_vault(self, name: str) -> str | None:
        hit = self._cache.get(name)
        if hit and self._clock() < hit[1]:
            return hit[0]
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            now, hit = self._clock(), self._cache.get(name)
            if hit and now < hit[1]:
                return hit[0]  # another request read it while this one waited
            if not hit and now < self._failed.get(name, 0.0):
                raise SecretUnavailable(f"Key Vault secret {name!r} could not be read recently; not asking again yet")
            try:
                value = self._read(name)
            except Exception as exc:  # any failure to reach the vault
                if hit:
                    log.warning("Key Vault read of %r failed (%s); using the cached value, next try in %.0fs",
                                name, type(exc).__name__, RETRY_AFTER_FAILURE)
                    self._cache[name] = (hit[0], now + min(self.ttl, RETRY_AFTER_FAILURE))
                    return hit[0]
                self._failed[name] = now + RETRY_AFTER_FAILURE
                raise SecretUnavailable(f"Key Vault secret {name!r} could not be read ({type(exc).__name__})") from None
            self._cache[name] = (value, self._clock() + self.ttl)
            self._failed.pop(name, None)
            return value

    def _read(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError
        try:
            return _normal(self._vault().get_secret(name).value)
        except ResourceNotFoundError:
            return None  # not configured: an optional secret, or a setup mistake the caller reports


def _normal(value: str | None) -> str | None:
    """The same rule for vault and local values: a pasted trailing newline is not part of a secret,
    and a blank one is not configured."""
    value = (value or "").strip()
    return value or None


_default = Shared(lambda: SecretSource(), key=lambda: tuple(
    os.environ.get(n) for n in ("KEY_VAULT_URI", "SECRET_CACHE_SECONDS", "AZURE_CLIENT_ID")))


def default() -> SecretSource:
    """The process-wide source (its cache is what spares the vault)."""
    return _default.get()
