"""Azure Storage clients (queues, blobs, tables), created on first use and reused.

Locally `AzureWebJobsStorage` is a connection string (Azurite). In Azure the identity-based
`AzureWebJobsStorage__*ServiceUri` settings are used with the app's managed identity: no keys.
Queue messages are base64, as the Functions queue trigger expects (host.json messageEncoding).
"""
from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ..core import settings
from ..core.errors import Conflict, StorageNotConfigured, StorageUnavailable
from . import http
from .shared import Shared

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's fixed, publicly documented development key (what UseDevelopmentStorage=true means): not a secret.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(blob: int = 10000, queue: int = 10001, table: int = 10002,
                              host: str = "127.0.0.1") -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
            f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};")


def _connection_string(env) -> str | None:
    value = (env.get("AzureWebJobsStorage") or "").strip()
    if value.lower().replace(" ", "") == "usedevelopmentstorage=true":
        return azurite_connection_string()
    return value or None


# Connections kept per client: as many as threads use one client at once (send_many's pool, the
# queue trigger's batch of 16 plus newBatchThreshold). requests' default pool of 10 throws the
# rest away ("Connection pool is full, discarding connection") and opens new ones.
POOL_SIZE = 32
SEND_PARALLEL = 16
# Queue messages never expire: "nothing acknowledged is lost" cannot hold if an outage longer than
# the service default (7 days) silently deletes acknowledged work.
NEVER_EXPIRES = -1


def transport(read_timeout: int):
    """A requests transport for one client, with a pool as large as its threads use; hand it to
    read_environment once the client is built."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False, connection_timeout=5, read_timeout=read_timeout)


def read_environment(client, transport):
    """The proxy and CA bundle for the client's endpoint, read once (http.environment_read_once), not on
    every request, and never .netrc, whose entry would replace the storage Authorization header."""
    transport.connection_config.verify = http.environment_read_once(transport.session, client.url)
    return client


def _retry(kind: str, env=None) -> dict:
    # The storage SDKs' default waits 15 s before the first retry: far too long for an HTTP
    # acknowledgement. Fail fast; the queue (or the sender) retries the whole unit of work.
    read = settings.get_int("STORAGE_TIMEOUT_SECONDS", env, minimum=1)
    # The timeouts go with the transport too: a client given a transport does not pass them on to it.
    timeouts = {"connection_timeout": 5, "read_timeout": read, "transport": transport(read)}
    if kind == "table":
        return {"retry_total": 2, "retry_backoff_factor": 0.5, **timeouts}
    if kind == "queue":
        from azure.storage.queue import LinearRetry
    else:
        from azure.storage.blob import LinearRetry
    return {"retry_policy": LinearRetry(backoff=0.5, random_jitter_range=0.25, retry_total=2), **timeouts}


class Storage:
    """Clients for one storage account, from one environment."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self._conn = _connection_string(env)
        self._uris = {kind: env.get(f"AzureWebJobsStorage__{kind}ServiceUri") for kind in ("queue", "blob", "table")}
        self._client_id = env.get("AzureWebJobsStorage__clientId") or None
        self._env = env
        if not self._conn and not all(self._uris.values()):
            raise StorageNotConfigured(
                "storage is not configured: set AzureWebJobsStorage (local) or "
                "AzureWebJobsStorage__queueServiceUri/__blobServiceUri/__tableServiceUri (Azure)")
        self._lock = threading.Lock()
        self._clients: dict[tuple, object] = {}
        self._known_queues: set[str] = set()
        self._known_containers: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None

    def _cached(self, key: tuple, build):
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = build()
        return client

    def _credential(self):
        from .identity import credential
        return credential(self._client_id)

    # -- queues --------------------------------------------------------------------------------

    def queue(self, name: str, raw: bool = False):
        """A client that base64-encodes what it sends, as the queue trigger expects; `raw` moves
        messages byte for byte (poison replay)."""
        def build():
            from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy
            kw = dict(**_retry("queue", self._env))
            if not raw:
                kw.update(message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy())
            client = QueueClient.from_connection_string(self._conn, name, **kw) if self._conn else \
                QueueClient(self._uris["queue"], name, credential=self._credential(), **kw)
            return read_environment(client, kw["transport"])
        return self._cached(("queue", name, raw), build)

    def send(self, queue_name: str, message: str, delay: int = 0) -> None:
        """Put one message; creates the queue the first time if it does not exist (local runs).
        `delay`: seconds before it becomes visible (Put Message's `visibilitytimeout`, 0 to 7 days, in whole
        seconds: learn.microsoft.com/rest/api/storageservices/put-message; azure-storage-queue
        `QueueClient.send_message(visibility_timeout=...)`, azure/storage/queue/_queue_client.py)."""
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
        client = self.queue(queue_name)
        kw = {"time_to_live": NEVER_EXPIRES, **({"visibility_timeout": int(delay)} if delay else {})}
        try:
            try:
                client.send_message(message, **kw)
            except ResourceNotFoundError:
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass  # a concurrent send (send_many) created it first
                client.send_message(message, **kw)
        except AzureError as exc:
            raise StorageUnavailable(f"queue {queue_name!r}: {type(exc).__name__}") from exc

    def send_many(self, items: Iterable[tuple[str, str]]) -> int:
        """Put (queue, message) pairs concurrently (queues have no batch put). All or an exception.
        `items` is consumed as sending goes, at most 4 x SEND_PARALLEL messages held at once."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=SEND_PARALLEL, thread_name_prefix="queue-put")
        count, window = 0, collections.deque()
        try:
            for q, m in items:
                window.append(self._pool.submit(self.send, q, m))
                count += 1
                if len(window) >= 4 * SEND_PARALLEL:
                    window.popleft().result()
            while window:
                window.popleft().result()
        finally:
            for f in window:  # after a failure: let the rest finish or fail, so none outlives the call
                f.exception()
        return count

    # -- blobs ---------------------------------------------------------------------------------

    def blob_service(self):
        def build():
            from azure.storage.blob import BlobServiceClient
            kw = _retry("blob", self._env)
            client = BlobServiceClient.from_connection_string(self._conn, **kw) if self._conn else \
                BlobServiceClient(self._uris["blob"], credential=self._credential(), **kw)
            return read_environment(client, kw["transport"])
        return self._cached(("blob",), build)

    def put_blob(self, container: str, name: str, data: bytes, content_type: str | None = None,
                 metadata: dict[str, str] | None = None, etag: str | None = None) -> None:
        """Write a blob. `etag`: only over that version of it, or ("") only where there is none; Conflict when
        it changed. azure-storage-blob: overwrite=False sends If-None-Match: * (_upload_helpers.py), and the
        service's ConditionNotMet / BlobAlreadyExists arrive as ResourceModifiedError / ResourceExistsError
        (_shared/response_handlers.py process_storage_error)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        from ..core.settings import refuse_public
        blob = self.blob_service().get_blob_client(refuse_public(container, self._env), name)
        kw = {"overwrite": etag != "", "metadata": metadata,
              "content_settings": ContentSettings(content_type=content_type) if content_type else None}
        if etag:
            kw.update(etag=etag, match_condition=MatchConditions.IfNotModified)
        try:
            try:
                blob.upload_blob(data, **kw)
            except ResourceNotFoundError:
                self._create_container(container)
                blob.upload_blob(data, **kw)
        except (ResourceExistsError, ResourceModifiedError) as exc:
            if holds(blob, data) is None:
                raise Conflict(f"blob {container}/{name} changed since it was read") from exc
        except AzureError as exc:
            raise StorageUnavailable(f"blob container {container!r}: {type(exc).__name__}") from exc

    def _create_container(self, container: str) -> None:
        from azure.core.exceptions import ResourceExistsError
        try:
            self.blob_service().create_container(container)
        except ResourceExistsError:
            pass

    def get_blob(self, container: str, name: str) -> bytes:
        return self.blob_service().get_blob_client(container, name).download_blob().readall()

    # -- tables --------------------------------------------------------------------------------

    def table(self, name: str):
        def build():
            from azure.data.tables import TableClient
            kw = _retry("table", self._env)
            client = TableClient.from_connection_string(self._conn, name, **kw) if self._conn else \
                TableClient(self._uris["table"], name, credential=self._credential(), **kw)
            return read_environment(client, kw["transport"])
        return self._cached(("table", name), build)


# The clients are built again when any of these changes: the environment variables requests would
# have read on each request are among them.
_STORAGE_SETTINGS = ("AzureWebJobsStorage", "AzureWebJobsStorage__queueServiceUri",
                     "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__tableServiceUri",
                     "STORAGE_TIMEOUT_SECONDS", *http.ENVIRONMENT_VARIABLES)
_default = Shared(lambda: Storage(), key=lambda: tuple(os.environ.get(n) for n in _STORAGE_SETTINGS))


def holds(blob, data: bytes) -> str | None:
    """The blob's ETag when it holds exactly `data` (None: it does not, or there is none). Asked after a
    conditional write failed: azure-storage-blob sends a write again when its answer was lost (_shared/policies.py
    StorageRetryPolicy: any ServiceResponseError, whatever the method), and the second then meets the first
    (409 or 412); a blob holding these very bytes is that write (or one that left the same), not a change."""
    from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
    try:
        # One byte past `data` at most tells a longer blob (the downloader's size is the range's, capped at the
        # blob's: azure/storage/blob/_download.py _initial_request), without reading a large one whole.
        download = blob.download_blob(offset=0, length=len(data) + 1) if data else blob.download_blob()
        if download.size != len(data) or download.readall() != data:
            return None
    except ResourceNotFoundError:
        return None
    except HttpResponseError as exc:
        if exc.status_code == 416:   # no byte in the range: an empty blob (the downloader retries only unranged)
            return None
        raise StorageUnavailable(f"blob {blob.container_name}/{blob.blob_name}: {type(exc).__name__}") from exc
    except AzureError as exc:   # raised inside the caller's handler of the write's error: named here
        raise StorageUnavailable(f"blob {blob.container_name}/{blob.blob_name}: {type(exc).__name__}") from exc
    return download.properties.etag


def default() -> Storage:
    """The process-wide clients."""
    return _default.get()
