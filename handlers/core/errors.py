"""The app's own errors. Their messages are safe to record in the journal or a log: they name
settings and secrets, never their values, and never a URL that could carry a credential."""
from __future__ import annotations


class SafeError(Exception):
    """Root: an error whose message may be recorded as it is."""


class SettingsError(SafeError, ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


class Unavailable(SafeError):
    """A platform service could not be reached; the unit of work should be retried later."""


class StorageUnavailable(Unavailable):
    """Storage could not be reached or refused the write."""


class StorageNotConfigured(StorageUnavailable, SettingsError):
    """No storage settings at all: unavailable to callers, a settings error to the operator."""


class SecretUnavailable(Unavailable):
    """The secret store could not be read and no earlier value is cached. Names the secret, never a value."""


class ActionError(SafeError):
    """An action failed in a way worth retrying or reporting; the message says what to fix."""


class ServiceBusy(ActionError):
    """A service answered 429 or 5xx: worth retrying, after `retry_after` seconds when it said."""
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class InvalidDelivery(SafeError, ValueError):
    """A signed body that is not a delivery the pipeline can carry; the message says which rule (no content)."""


class InvalidMessage(SafeError, ValueError):
    """A queue message this version cannot read; it should end in the poison queue."""


class NotFound(Exception):
    """The entity no longer exists in Preservica (deleted since the event): actions journal `skipped`."""
