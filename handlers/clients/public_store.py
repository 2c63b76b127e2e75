"""The public IIIF store: one blob container anyone may read, in its own storage account.

In Azure `PUBLISH_BLOB_SERVICE_URI` names that account's blob endpoint and the app's identity writes
(Storage Blob Data Contributor on that account only); Bicep creates the container with anonymous read.
Unset, the pipeline's own storage is used, which only makes sense locally: Azurite through
`AzureWebJobsStorage`; then the container is created with anonymous blob read and Azurite is given a
CORS rule for GET, so a viewer in the browser can open what `make run` publishes.

Files are uploaded from an iterator of chunks in blocks of BLOCK_BYTES: a large video never sits
in memory whole. The activity stream's pages are written with ETag conditions (clients/activity.py).
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from ..core.errors import SettingsError, StorageUnavailable
from ..core.settings import APP, BY_NAME, Setting
from .shared import Shared

# What is public and where: `publish` writes by them, `relay` tells receivers by them, the sweep re-checks.
CONTAINER = BY_NAME["PUBLISH_CONTAINER"]   # core.settings: private writers check their containers against it
SERVICE_URI = Setting("PUBLISH_BLOB_SERVICE_URI", None, APP,
                      "Blob endpoint of the public IIIF storage account (Bicep sets it); unset: the pipeline's own "
                      "storage, i.e. Azurite locally.")
BASE_URL = Setting("PUBLISH_BASE_URL", None, APP,
                   "Public URL of the publish container, the prefix of every IIIF id (e.g. a CDN); unset: the "
                   "container's own URL.")
PUBLIC_TAGS = Setting("PUBLIC_SECURITY_TAGS", "open", APP,
                      "Comma-separated security tags whose assets `publish` makes public; any other tag withdraws.")

BLOCK_BYTES = 4 * 1024 * 1024
CACHE = "public, max-age=60"   # how long a withdrawn file may still be served from a browser or CDN cache


class PublicStore:
    def __init__(self, uri: str | None, container: str, base_url: str | None, env=None):
        from azure.storage.blob import BlobServiceClient

        from . import storage
        env = os.environ if env is None else env
        opts = dict(storage._retry("blob", env), max_block_size=BLOCK_BYTES, max_single_put_size=BLOCK_BYTES)
        conn = storage._connection_string(env)
        if uri:
            from .identity import credential
            self.service = BlobServiceClient(uri, credential=credential(env.get("AzureWebJobsStorage__clientId")), **opts)
        elif conn:
            self.service = BlobServiceClient.from_connection_string(conn, **opts)
        else:
            raise SettingsError("PUBLISH_BLOB_SERVICE_URI is not set (the public storage account's blob endpoint)")
        storage.read_environment(self.service, opts["transport"])   # proxy and CA bundle, read once
        self.local = not uri
        self.container = self.service.get_container_client(container)
        self.base = (base_url or self.container.url).rstrip("/")
        self._ready = False

    # -- plumbing ----------------------------------------------------------------------------
    def _fail(self, exc) -> StorageUnavailable:
        return StorageUnavailable(f"public blob container {self.container.container_name!r}: {type(exc).__name__}")

    def ensure(self) -> None:
        """Create the container when it is missing, locally (in Azure Bicep creates it, public, and the app may
        only write blobs in it)."""
        if self._ready or not self.local:
            return
        from azure.core.exceptions import AzureError, ResourceExistsError
        try:
            self.container.create_container(public_access="blob" if self.local else None)
            if self.local and self.service.account_name == "devstoreaccount1":
                from azure.storage.blob import CorsRule
                self.service.set_service_properties(cors=[CorsRule(["*"], ["GET", "HEAD"], allowed_headers=["*"],
                                                                   exposed_headers=["*"], max_age_in_seconds=3600)])
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise self._fail(exc) from exc
        self._ready = True

    def _settings(self, content_type: str):
        from azure.storage.blob import ContentSettings
        attach = "attachment" if content_type == "application/octet-stream" else None
        return ContentSettings(content_type=content_type, cache_control=CACHE, content_disposition=attach)

    # -- files -------------------------------------------------------------------------------
    def upload(self, name: str, chunks: Iterable[bytes] | bytes, content_type: str,
               metadata: dict[str, str] | None = None) -> None:
        """Write a blob from bytes or an iterator of chunks (staged in blocks, never held whole)."""
        from azure.core.exceptions import AzureError
        try:
            self.container.get_blob_client(name).upload_blob(
                chunks, overwrite=True, metadata=metadata, content_settings=self._settings(content_type), max_concurrency=1)
        except AzureError as exc:
            raise self._fail(exc) from exc

    def set_metadata(self, name: str, metadata: dict[str, str]) -> None:
        from azure.core.exceptions import AzureError
        try:
            self.container.get_blob_client(name).set_blob_metadata(metadata)
        except AzureError as exc:
            raise self._fail(exc) from exc

    def properties(self, name: str):
        """The blob's properties (size, metadata, etag), or None when there is none."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        try:
            return self.container.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise self._fail(exc) from exc

    def read(self, name: str) -> tuple[bytes | None, str | None]:
        """(content, etag), or (None, None) when there is no such blob."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        try:
            download = self.container.get_blob_client(name).download_blob()
            return download.readall(), download.properties.etag
        except ResourceNotFoundError:
            return None, None
        except AzureError as exc:
            raise self._fail(exc) from exc

    def read_at_most(self, name: str, most: int) -> bytes | None:
        """The blob's content, or None when there is none or it is larger than `most` bytes (then not read; the
        read is ranged too, should it grow meanwhile: never more than `most` + 1 bytes held)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        blob = self.container.get_blob_client(name)
        try:
            if blob.get_blob_properties().size > most:
                return None
            data = blob.download_blob(offset=0, length=most + 1).readall()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise self._fail(exc) from exc
        return data if len(data) <= most else None

    def write_if(self, name: str, data: bytes, etag: str | None, content_type: str = "application/ld+json") -> bool:
        """Write only if the blob still has `etag` (None: only if there is none yet). False when it changed."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError

        from .storage import holds
        kw = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {"overwrite": False}
        blob = self.container.get_blob_client(name)
        try:
            blob.upload_blob(data, content_settings=self._settings(content_type), **kw)
            return True
        except AzureError as exc:   # 409/412 however the SDK types it: changed, or a lost answer sent again met itself
            if isinstance(exc, (ResourceModifiedError, ResourceExistsError)) or \
                    getattr(exc, "status_code", None) in (409, 412):
                return holds(blob, data) is not None
            raise self._fail(exc) from exc

    def names(self, prefix: str) -> list[str]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        try:
            return [b.name for b in self.container.list_blobs(name_starts_with=prefix)]
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise self._fail(exc) from exc

    def delete(self, names: Iterable[str]) -> int:
        """Delete these blobs (an absent one is no error); how many were there."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        count = 0
        for name in names:
            try:
                self.container.delete_blob(name, delete_snapshots="include")
                count += 1
            except ResourceNotFoundError:
                pass
            except AzureError as exc:
                raise self._fail(exc) from exc
        return count


class Guarded:
    """The store for one publish or withdrawal run: `check()` (the asset's lease, clients/publish_lock.py)
    before every write and between the chunks of a streamed upload, so a run that lost its lease stops
    writing. Reads go straight through. Nothing here creates a snapshot or a version: blobs are written
    with Put Blob / Put Block List and deleted with their snapshots (delete_snapshots="include")."""

    def __init__(self, store: PublicStore, check):
        self.store, self.check = store, check

    def __getattr__(self, name):
        return getattr(self.store, name)

    def upload(self, name: str, chunks, content_type: str, metadata: dict[str, str] | None = None) -> None:
        self.check()
        if not isinstance(chunks, (bytes, bytearray)):
            chunks = (c for c in chunks if self.check() is None)
        self.store.upload(name, chunks, content_type, metadata)

    def set_metadata(self, name: str, metadata: dict[str, str]) -> None:
        self.check()
        self.store.set_metadata(name, metadata)

    def write_if(self, *args, **kwargs) -> bool:
        self.check()
        return self.store.write_if(*args, **kwargs)

    def delete(self, names: Iterable[str]) -> int:
        self.check()
        return self.store.delete(names)


_stores: Shared[dict] = Shared(dict)


def store(uri: str | None, container: str, base_url: str | None) -> PublicStore:
    """The process's store for these settings (and the storage settings it falls back to)."""
    key = (uri, container, base_url, os.environ.get("AzureWebJobsStorage"))
    known = _stores.get()
    if key not in known:
        known.clear()
        known[key] = PublicStore(uri, container, base_url)
    return known[key]


def configured() -> PublicStore:
    """The store the PUBLISH_* settings name; SettingsError when PUBLISH_CONTAINER names a private container."""
    from ..core import settings
    for name in (*settings.PRIVATE_CONTAINERS, *(settings.get(s) or "" for s in settings.PRIVATE_CONTAINER_SETTINGS)):
        settings.refuse_public(name)
    return store(SERVICE_URI.value(), CONTAINER.value(), BASE_URL.value())


def is_public(security_tag: str | None, hidden: bool) -> bool:
    """The one rule of what may be public: a tag in PUBLIC_SECURITY_TAGS and not hidden."""
    from ..core import iiif
    return iiif.is_public(security_tag, PUBLIC_TAGS.value(), hidden)


def link(ref: str, security_tag: str | None, hidden: bool) -> dict | None:
    """What the relay tells a receiver about the published state of an asset (None: not a publishable ref),
    by the rule `publish` applies (is_public): a hidden or closed asset is `withdrawn`."""
    from ..core import iiif
    ref = iiif.blob_ref(ref)
    if ref is None:
        return None
    if not is_public(security_tag, hidden):
        return {"state": "withdrawn"}
    try:
        base = configured().base
    except SettingsError:   # publish not set up here: the relay says nothing about IIIF rather than fail
        return None
    return {"state": "published", "manifest": iiif.manifest_url(base, ref)}
