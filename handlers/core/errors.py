"""Every error the app raises, in one tree. A message is safe to record in the journal or a log as it
is: it names settings and secrets, never their values, and never a URL that could carry a credential.
Catch the narrowest node that means what you handle; the runner records any SafeError's message and
only the class name of anything else.

    SafeError
     ├── SettingsError (ValueError) ........ a setting has a value the app cannot use; names the setting
     │    └── RoutesError ................... PRESERVICA_ROUTES
     ├── InvalidInput (ValueError) .......... what a sender gave us breaks a rule; says which, never the content
     │    ├── InvalidDelivery ............... a signed body that is no delivery
     │    ├── InvalidMessage ................ a queue message this version cannot read (ends in poison)
     │    └── UnsafeChallenge ............... a challengeCode not of the allowed form
     ├── Unavailable ........................ a platform service cannot be reached now: retry later
     │    ├── StorageUnavailable
     │    │    └── StorageNotConfigured ..... no storage settings at all (also a SettingsError)
     │    ├── SecretUnavailable
     │    └── LeaseBusy ..................... another run holds the asset's lease: put back to wait
     ├── Conflict ........................... rows changed between read and write: redo the unit of work
     │    ├── LeaseLost ..................... the publish lease ended before the work did
     │    └── RowsExist ..................... rows written as new were there already: read them, decide again
     ├── ServiceError ....................... a service the app calls failed or refused (raised in clients/)
     │    ├── PreservicaError
     │    │    ├── NotFound ................. the entity no longer exists (deleted since the event)
     │    │    ├── CredentialsRejected
     │    │    ├── Redirected ............... a 3xx: not followed with the token
     │    │    ├── OtherServer .............. a URL off PRESERVICA_SERVER: not requested
     │    │    ├── TooLarge ................. a download past its byte bound: stopped
     │    │    ├── TooMany .................. a representation lists more content objects than the bound
     │    │    └── BudgetSpent .............. a run's request budget is used up
     │    ├── AIServiceError ............... Speech, Document Intelligence, Azure OpenAI (clients/cognitive)
     │    │    ├── ServiceBusy .............. 429 or 5xx: retry, after Retry-After when it says
     │    │    │    └── SpeechBusy · DocIntelBusy · ChatBusy
     │    │    ├── ServiceRefused ........... 401/403 or no token: a setting or role to fix
     │    │    │    └── SpeechRefused · DocIntelRefused · ChatRefused
     │    │    ├── ServiceRejected .......... this file rejected (400/413/415/422, a failed operation): no retry
     │    │    │    └── SpeechRejected · DocIntelRejected
     │    │    └── ChatFiltered ............. the content filter stopped the prompt or the answer
     │    ├── EndpointError ................. Teams, the catalogue, the relay's receiver
     │    └── SlotsBusy ..................... this instance's slots for a service stayed taken
     ├── FragmentKept ....................... a fragment not the app's unchanged (a person's edit): not replaced
     ├── InventoryError (ValueError) ........ an OCFL inventory read back from storage this code cannot trust
     ├── RestoreError ....................... a custody restore that could not be done as asked
     ├── AccessRefused ...................... the console may not serve this request (a status and words to show)
     ├── DeclarationError (ImportError) ..... an action module's declaration is wrong: the app does not load
     └── ActionError ........................ an action cannot do its work; the message says what to fix
          ├── Refused ....................... publish will not copy this asset (too many files, one too large)
          └── FixityFailure .................. custody: bytes differ from Preservica's fixity; nothing committed
"""
from __future__ import annotations


class SafeError(Exception):
    """Root: an error whose message may be recorded as it is."""


class SettingsError(SafeError, ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


class RoutesError(SettingsError):
    """PRESERVICA_ROUTES cannot be read; the message says which part."""


class InvalidInput(SafeError, ValueError):
    """Input from outside breaks a rule; the message says which rule, never the content."""


class InvalidDelivery(InvalidInput):
    """A signed body that is not a delivery the pipeline can carry."""


class InvalidMessage(InvalidInput):
    """A queue message this version cannot read; it should end in the poison queue."""


class UnsafeChallenge(InvalidInput):
    """A challengeCode that is not of the allowed form: never echoed, never signed."""


class Unavailable(SafeError):
    """A platform service could not be reached; the unit of work should be retried later."""


class StorageUnavailable(Unavailable):
    """Storage could not be reached or refused the write."""


class StorageNotConfigured(StorageUnavailable, SettingsError):
    """No storage settings at all: unavailable to callers, a settings error to the operator."""


class SecretUnavailable(Unavailable):
    """The secret store could not be read and no earlier value is cached. Names the secret, never a value."""


class LeaseBusy(Unavailable):
    """Another run holds the asset's lease (publish's or custody's), taken before anything is done: the runner puts
    the event back to wait (pipeline/waits.busy)."""


class Conflict(SafeError):
    """Rows changed between read and write; the caller's unit of work should be retried."""


class LeaseLost(Conflict):
    """The lease ended (or was taken) before the work under it did: what was written is re-checked."""


class RowsExist(Conflict):
    """Rows a writer created as new were there already (another page's or delivery's, or created meanwhile):
    `rks` names them (all the creates of each transaction that failed), for the writer to read and decide again."""

    def __init__(self, rks: list[str]):
        super().__init__(f"{len(rks)} journal rows written as new were there already")
        self.rks = rks


class ServiceError(SafeError):
    """A service the app calls (Preservica, Speech, an endpoint) failed or refused."""


class PreservicaError(ServiceError):
    """Preservica failed or refused; the message says how (status, call), never the URL's query or token."""


class NotFound(PreservicaError):
    """The entity no longer exists in Preservica (deleted since the event): actions journal `skipped`."""

    def __init__(self, message: str = "Preservica has no such entity (deleted since the event)") -> None:
        super().__init__(message)


class CredentialsRejected(PreservicaError):
    """Preservica refused the username, password or tenant."""


class Redirected(PreservicaError):
    """Preservica answered a redirect: not followed, its token stays where it was sent."""


class OtherServer(PreservicaError):
    """A URL (from Preservica's XML, or built by anyone) is not on PRESERVICA_SERVER: not requested."""


class TooLarge(PreservicaError):
    """A download went past its byte limit: stopped there."""

    def __init__(self, limit: int, message: str | None = None) -> None:
        super().__init__(message or f"more than {limit} bytes arrived")
        self.limit = limit


class FragmentKept(SafeError):
    """A metadata fragment the app would replace is not the one it wrote, unchanged (a person's edit, a fragment
    someone else wrote): left as it is (clients/fragments.py). The message says why; the action's outcome is
    `skipped`."""


class TooMany(PreservicaError):
    """A representation lists more content objects than the caller's bound: none of them was read."""

    def __init__(self, count: int, most: int) -> None:
        super().__init__(f"{count} content objects in one representation, more than {most}")
        self.count, self.most = count, most


class BudgetSpent(PreservicaError):
    """A run's request budget toward Preservica is used up; the rest waits for the next run."""


class AIServiceError(ServiceError):
    """An Azure AI service (Speech, Document Intelligence, Azure OpenAI) failed or could not be reached."""


class ServiceBusy(AIServiceError):
    """429 or 5xx: worth retrying, after `retry_after` seconds when the service said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceRefused(AIServiceError):
    """401/403 or no token: a setting or a role assignment to fix."""


class ServiceRejected(AIServiceError):
    """The service will not take this file (400/413/415/422, or its operation failed): retrying cannot help."""


class SpeechBusy(ServiceBusy):
    """Speech throttled or failed."""


class SpeechRefused(ServiceRefused):
    """Speech refused the app's identity or key."""


class SpeechRejected(ServiceRejected):
    """Speech will not transcribe this file."""


class DocIntelBusy(ServiceBusy):
    """Document Intelligence throttled or failed."""


class DocIntelRefused(ServiceRefused):
    """Document Intelligence refused the app's identity or key."""


class DocIntelRejected(ServiceRejected):
    """Document Intelligence will not read this file, or its analysis failed."""


class ChatBusy(ServiceBusy):
    """Azure OpenAI throttled or failed."""


class ChatRefused(ServiceRefused):
    """Azure OpenAI refused the app's identity or key."""


class ChatFiltered(AIServiceError):
    """The service's content filter stopped the prompt or the answer: recorded, not retried."""


class EndpointError(ServiceError):
    """An HTTP endpoint the operator configured (Teams, catalogue, relay) failed or refused."""


class SlotsBusy(ServiceError):
    """Every slot this instance keeps for a service stayed taken for the whole wait."""


class InventoryError(SafeError, ValueError):
    """An inventory that is not a valid OCFL 1.1 inventory this code can trust."""


class RestoreError(SafeError):
    """A restore that could not be done as asked: nothing of the failing file is left behind."""


class AccessRefused(SafeError):
    """The console may not serve the request: `status` and a message safe to show (no detail about config)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DeclarationError(SafeError, ImportError):
    """An action module's ACTION declaration is missing or wrong: the app fails at import, not at run time."""


class ActionError(SafeError):
    """An action cannot do its work; the message says what to fix."""


class Refused(ActionError):
    """Publish will not copy the asset (too many files, a file too large): the reason."""


class FixityFailure(ActionError):
    """A bitstream's bytes do not match what Preservica recorded for it: nothing is committed."""
