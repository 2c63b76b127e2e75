"""pyPreservica clients, and (from preservica_http) the classification of their failures.

One EntityAPI per worker process, created on first use (never at import: cold start) and reused; rebuilt only
when its settings, the password (a rotation in Key Vault) or the environment it read change.
Failures are classified rather than lumped:
  - the entity is gone (deleted since the event)   -> NotFound; actions journal `skipped: not found`
  - credentials rejected                            -> log.error naming the settings, CredentialsRejected (retry)
  - 429 / 5xx / timeout / connection error          -> retried here, then PreservicaError: the queue retries
The SDK's HTTP session is tightened before its first request: Retry-After waits capped at RETRY_AFTER_MAX
(urllib3 would sleep up to 6 h inside the function), shorter timeouts, a pool as large as the queue trigger's
batch, and the token kept on the configured server: no redirect is followed (a 3xx is an error) and no URL on
another server is requested, whoever built it (pyPreservica follows absolute URLs from Preservica's XML).
`get`/`get_xml`/`download` are the one way our own code reads a URL Preservica hands back. No message or log
line here holds the password, the token or a URL's query.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from pyPreservica import EntityAPI, WebHooksAPI
from pyPreservica.common import EntityType
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from ..core import settings
from ..core.errors import (
    NotFound as NotFound,  # callers catch preservica.NotFound
    SettingsError,
)
from . import http
from .preservica_files import File as File, content_refs as content_refs, files as files  # callers: preservica.files
from .preservica_http import (  # noqa: F401
    CREDENTIAL_SETTINGS,
    CredentialsRejected,
    OtherServer,
    Redirected,
    TooLarge,
    _home,
    _is_credentials_error,
    classify,
    counted,
    download,
    get,
    get_xml,
    guarded_send,
    spend_one,
)
from .ratelimit import SharedBudget
from .shared import Shared

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMEOUT = (10, 60)            # connect, read (pyPreservica's own: 62 s for both)
RETRY_AFTER_MAX = 10          # urllib3 would otherwise sleep whatever Retry-After says (up to 6 h);
                              # with 3 retries a call waits at most 30 s, then the queue retries
POOL_SIZE = 32                # the queue trigger's largest batch; pyPreservica's default pool holds 10
REJECTED_PAUSE = 60           # seconds without login attempts after a rejection: avoid locking the account

# pyPreservica logs subscriber URLs and request details at DEBUG.
logging.getLogger("pyPreservica").setLevel(logging.WARNING)


def _harden(api) -> None:
    """Cap Retry-After waits and timeouts, widen the pool, keep every request on the configured server
    with no redirect followed, read the proxy and CA bundle once, and send each through the process's share
    of PRESERVICA_MAX_RPS. Done before the first request."""
    if getattr(api, "_hardened", False):
        return
    retry = _retry()
    for session in (api.session, api.auth_session):
        session.mount(f"{api.protocol}://", HTTPAdapter(max_retries=retry, pool_maxsize=POOL_SIZE))
        session.request = functools.partial(session.request, timeout=TIMEOUT)
        # pyPreservica makes plain requests.Session()s (pyPreservica common.py AuthenticatedAPI.__init__), with
        # trust_env on: the environment read again on every request, .netrc included, which would add Basic
        # auth to every Preservica request for a matching host. Read once here; verify is not passed per call.
        http.environment_read_once(session, _home(api))
        # requests re-sends a request elsewhere only where Session.resolve_redirects finds a target
        # (requests/sessions.py: `url = self.get_redirect_target(resp)`), and keeps custom headers such as
        # Preservica-Access-Token across hosts (rebuild_auth strips only Authorization). With no target,
        # nothing is followed whatever allow_redirects says, and the 3xx body is never read.
        session.get_redirect_target = lambda response: None
        # Every request passes Session.send: Session.request calls self.send, and so does pyPreservica's
        # 401 hook (common.py AuthenticatedAPI._handle_401: `self.session.send(response.request)`).
        session.send = functools.partial(guarded_send, session.send, _home(api), TIMEOUT, _slot)
    api._hardened = True


def _take() -> None:
    spend_one()   # a run's own request budget first (preservica_http.counted; BudgetSpent sends nothing)
    _bucket.get().take()


@contextlib.contextmanager
def _slot() -> Iterator[None]:
    """A token for one send, its re-sends (_BudgetedRetry) taking theirs inside: all held until the answer."""
    with _bucket.get().sending():
        _take()
        yield


# The whole app's budget, this process's share of it (ratelimit.SharedBudget, heartbeat rows in the reconcile table).
_bucket = Shared(lambda: SharedBudget(settings.get_int("PRESERVICA_MAX_RPS", minimum=1),
                                      settings.get_int("MAXIMUM_INSTANCE_COUNT", minimum=1)),
                 key=lambda: (settings.get("PRESERVICA_MAX_RPS"), settings.get("MAXIMUM_INSTANCE_COUNT")))


class _BudgetedRetry(Retry):
    """urllib3 re-sends a request inside the adapter, below Session.send where the bucket is: each re-send
    takes a token of its own. urllib3's connectionpool.urlopen calls `retries.sleep()` before every re-send
    (after a connection error and after a retried status), and `Retry.new` keeps the subclass."""

    def sleep(self, response=None) -> None:
        super().sleep(response)
        _take()


def _retry() -> Retry:
    # 429 too: Preservica is shared and says when to come back; its Retry-After is honoured up to the cap.
    kw = dict(total=3, backoff_factor=0.1, status_forcelist=[429, 502, 503, 504],
              allowed_methods=Retry.DEFAULT_ALLOWED_METHODS)
    try:
        return _BudgetedRetry(**kw, retry_after_max=RETRY_AFTER_MAX)
    except TypeError:  # an urllib3 without the cap: rather not wait for Retry-After at all
        return _BudgetedRetry(**kw, respect_retry_after_header=False)


class _Hardened:
    # The constructor logs in through __token__ (not name-mangled) before any other request,
    # so hardening there also covers the login and version calls made at construction.
    def __token__(self):
        _harden(self)
        return super().__token__()


class _EntityAPI(_Hardened, EntityAPI):
    # pyPreservica's add_metadata/update_metadata end by reading the entity again (`self.entity(...)`)
    # to return it; we do not use that return value, so within write_metadata() the read answers with
    # the entity we already have. Thread-local: the client is shared by the invocations of a process.
    _known = threading.local()

    def _find_user_roles_(self) -> list[str]:
        # pyPreservica's constructor asks /api/user/details for the roles (common.py AuthenticatedAPI.__init__:
        # `self.roles = self._find_user_roles_()`). Only the _check_if_user_has_*_role guards read them, and only
        # AdminAPI, RetentionAPI and WebHooksAPI call those: one request fewer per sign-in, out of the shared budget.
        return []

    def entity(self, entity_type, reference):
        held = getattr(self._known, "entity", None)
        if held is not None and held.reference == reference:
            return held
        return super().entity(entity_type, reference)

    def write_metadata(self, entity, schema: str, xml: str) -> str:
        """Replace the fragment of `schema` on `entity` (from a snapshot), or add one: one request."""
        replace = schema in (entity.metadata or {}).values()
        self._known.entity = entity
        try:
            (self.update_metadata if replace else self.add_metadata)(entity, schema, xml)
        finally:
            self._known.entity = None
        return "replaced" if replace else "added"


class _WebHooksAPI(_Hardened, WebHooksAPI):
    pass


# ---- configuration ---------------------------------------------------------------------------

def _password(secrets) -> str | None:
    return secrets.get(settings.KV_PRESERVICA_PASSWORD, "PRESERVICA_PASSWORD")


def _arguments(secrets) -> dict:
    need = settings.preservica_missing(secrets)
    if need:
        raise SettingsError(f"Preservica is not configured: set {', '.join(need)}")
    protocol = settings.get("PRESERVICA_PROTOCOL")
    if protocol not in ("https", "http"):
        raise SettingsError("PRESERVICA_PROTOCOL must be https or http")
    # credentials_path: a file that cannot exist, so pyPreservica never falls back to ./credentials.properties.
    return dict(username=settings.get("PRESERVICA_USERNAME"), password=_password(secrets),
                tenant=settings.get("PRESERVICA_TENANT"), server=settings.get("PRESERVICA_SERVER"),
                protocol=protocol, credentials_path=os.path.join(os.path.dirname(__file__), "no-credentials-file"))


def _identity(args: dict) -> tuple:
    secret = hashlib.sha256(args["password"].encode()).hexdigest()  # compare passwords without keeping one more copy
    # The sessions read the proxy and CA bundle variables once (_harden): a change to them makes a new client.
    environment = tuple(os.environ.get(v) for v in http.ENVIRONMENT_VARIABLES)
    return args["server"], args["username"], args["tenant"], args["protocol"], secret, environment


# ---- the process's EntityAPI -------------------------------------------------------------------

_client: Shared[dict] = Shared(dict)   # {identity: EntityAPI}: one login per process and credentials
_rejected: dict[tuple, float] = {}
_lock = threading.Lock()


def entity_api(secrets) -> EntityAPI:
    args = _arguments(secrets)
    key = _identity(args)
    clients = _client.get()
    if key in clients:
        return clients[key]
    with _lock:  # one login per process, however many invocations arrive together
        if key in clients:
            return clients[key]
        since = _rejected.get(key)
        if since is not None and time.monotonic() - since < REJECTED_PAUSE:
            log.error("Preservica rejected the credentials recently; not trying again yet: check %s", CREDENTIAL_SETTINGS)
            raise CredentialsRejected(f"Preservica rejected these credentials less than {REJECTED_PAUSE}s ago; "
                                      f"check {CREDENTIAL_SETTINGS}")
        try:
            client = _EntityAPI(**args)
        except Exception as exc:
            if _is_credentials_error(exc):
                _rejected[key] = time.monotonic()
            raise
        _rejected.pop(key, None)
        clients.clear()  # a rotated password replaces the old client
        clients[key] = client
        return client


def forget_client() -> None:
    """Drop the cached client and the memory of rejected credentials (tests; a new "process")."""
    _client.reset()
    _rejected.clear()


def webhooks_api(secrets=None) -> WebHooksAPI:
    """A WebHooksAPI for the operator CLI (not cached: one command, one login)."""
    if secrets is None:
        from .secrets import default
        secrets = default()
    args = _arguments(secrets)
    try:
        return _WebHooksAPI(**args)
    except Exception as exc:
        problem = classify(exc)
        if problem is None:
            raise
        raise problem from None


def call(secrets, work: Callable[[EntityAPI], T]) -> T:
    """Run `work(api)` with the process's client, with Preservica failures classified (see module doc)."""
    try:
        return work(entity_api(secrets))
    except Exception as exc:
        problem = classify(exc)
        if problem is None:
            raise
        if isinstance(problem, CredentialsRejected):
            _client.reset()  # its password stopped working (rotated elsewhere): do not reuse it
        raise problem from None


def summary(api: EntityAPI, entity_type: str, ref: str) -> dict:
    """Asset or folder fields for cards and the relay; NotFound if it is gone."""
    kind = {"IO": EntityType.ASSET, "SO": EntityType.FOLDER}.get(entity_type)
    if kind is None:
        raise ValueError(f"no summary for entity type {entity_type!r}")
    e = api.entity(kind, ref)
    return {"ref": e.reference, "type": entity_type, "title": e.title, "description": e.description,
            "securityTag": e.security_tag, "parent": e.parent}
