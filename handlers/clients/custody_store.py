"""The custody copy's blobs: one container of the custody account (an OCFL storage root), read and written
with the real azure-storage-blob clients.

The account is `account_url` with the app's identity (Azure), or, when that is empty, the pipeline's own
storage (Azurite locally). Large files go up as blocks: `BlockWriter` is a file its caller writes chunks to;
it hashes them on the way and stages a block each BLOCK bytes, and nothing is visible until `commit`
(Put Block / Put Block List: staged blocks stay uncommitted and are discarded by the service after a week,
https://learn.microsoft.com/rest/api/storageservices/put-block#remarks).
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator

from ..core.errors import StorageUnavailable
from . import storage

BLOCK = 4 * 1024 * 1024        # bytes per staged block: what one write may hold at once
READ_CHUNK = 4 * 1024 * 1024   # bytes per piece when a blob is read back (audit, verify, restore)


class Conflict(StorageUnavailable):
    """A conditional write lost: another writer changed the blob first. The event is retried."""


def container(account_url: str | None, name: str):
    """A ContainerClient of the custody storage root (never the public container: every asset's files are here)."""
    from ..core.settings import refuse_public
    refuse_public(name)
    if not account_url:
        return storage.default().blob_service().get_container_client(name)
    from azure.storage.blob import ContainerClient

    from .identity import credential
    return ContainerClient(account_url, name, credential=credential(None), **storage._retry("blob"))


def ensure(client) -> None:
    from azure.core.exceptions import ResourceExistsError
    try:
        client.create_container()
    except ResourceExistsError:
        pass


def read(client, path: str, limit: int) -> tuple[bytes | None, str | None]:
    """(bytes, etag) of a small blob, (None, None) when there is none; StorageUnavailable past `limit` bytes."""
    from azure.core.exceptions import ResourceNotFoundError
    try:
        downloader = client.get_blob_client(path).download_blob()
    except ResourceNotFoundError:
        return None, None
    if downloader.size > limit:
        raise StorageUnavailable(f"{path} is larger than {limit} bytes")
    return downloader.readall(), downloader.properties.etag


def chunks(client, path: str) -> Iterator[bytes]:
    """A blob's bytes in pieces of at most READ_CHUNK (the SDK's chunked download: StorageStreamDownloader.chunks)."""
    downloader = client.get_blob_client(path).download_blob(max_concurrency=1)
    yield from downloader.chunks()


def exists(client, path: str) -> bool:
    return client.get_blob_client(path).exists()


def put(client, path: str, data: bytes, etag: str | None = None, create: bool = False,
        content_type: str = "application/octet-stream") -> str:
    """Write a small blob; its new ETag. `create`: only if none is there yet; `etag`: only if it is still that
    version (If-None-Match: * / If-Match, azure-storage-blob upload_blob's overwrite and etag/match_condition).
    Conflict when the condition fails."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
    from azure.storage.blob import ContentSettings
    kw: dict = {"overwrite": not create, "content_settings": ContentSettings(content_type=content_type)}
    if etag:
        kw.update(etag=etag, match_condition=MatchConditions.IfNotModified)
    blob = client.get_blob_client(path)
    try:
        # upload_blob answers with the response's headers (_upload_helpers.py: return_response_headers)
        return blob.upload_blob(data, **kw)["etag"]
    except (ResourceExistsError, ResourceModifiedError):
        if (etag := storage.holds(blob, data)) is None:   # else a lost answer sent again met itself
            raise Conflict(f"{path} was written by another writer first") from None
        return etag


def names(client, prefix: str, start: str | None = None) -> Iterator[tuple[str, str | None]]:
    """(blob name, continuation token of its page) under `prefix`, from `start` (a token) on."""
    pages = client.list_blobs(name_starts_with=prefix).by_page(continuation_token=start)
    for page in pages:
        for blob in page:
            yield blob.name, pages.continuation_token


def top_level(client) -> set[str]:
    """The names of the storage root's top-level folders (one listing, `/` as delimiter: BlobPrefix items)."""
    return {item.name.rstrip("/") for item in client.walk_blobs(delimiter="/") if item.name.endswith("/")}


class BlockWriter:
    """A write-only file that stages its bytes as blocks of one blob, hashing them with `algorithms`."""

    def __init__(self, client, path: str, algorithms: tuple[str, ...], tick: Callable[[], None] = lambda: None):
        self._blob = client.get_blob_client(path)
        self._tick = tick   # called before each block is staged (custody renews its lease there)
        self.path = path
        self.hashes = {a: hashlib.new(a) for a in algorithms}
        self.size = 0
        self._buffer = bytearray()
        self._blocks: list[str] = []

    def write(self, data: bytes) -> int:
        for h in self.hashes.values():
            h.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            room = BLOCK - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == BLOCK:
                self._stage()
        return len(data)

    def _stage(self) -> None:
        # Block ids: base64 of equal length for every block of a blob (Put Block's rule).
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        self._tick()
        self._blob.stage_block(block_id, bytes(self._buffer))
        self._blocks.append(block_id)
        self._buffer.clear()

    def digests(self) -> dict[str, str]:
        return {a: h.hexdigest() for a, h in self.hashes.items()}

    def commit(self) -> None:
        """Make the staged bytes the blob's content (an empty file is one empty commit)."""
        if self._buffer:
            self._stage()
        self._blob.commit_block_list(self._blocks)
