"""One publisher per asset at a time: a lease on a marker blob `<ref>` in the pipeline's private storage.

Why a lease and not a generation that withdrawal bumps: a generation is checked by ETag *before* each
write, but the write itself is not conditional on the marker, so a withdrawal that finishes between
the check and the write still sees the write land after it (the closed asset gains a public blob after
its withdrawal finished). A lease makes publish and withdraw mutually exclusive for their whole run;
the holder renews it before every write and while it streams, and a lost lease ends the run.
Residual: a single write stalled for longer than LEASE_SECONDS after a renewal could land after another
holder's withdrawal; the next run of either (webhook retry, reconciler, sweep) removes it.
The marker lives in private storage: nothing about the lock is public.
`custody` holds the same kind of lease on `custody/<ref>` (handlers/actions/custody/copy.py says why). One
container of leases, named for its first user: a renamed one would let instances of two releases miss each
other's leases while a deployment rolls out.
Lease semantics (15-60 s or infinite, 409 LeaseAlreadyPresent while held, renew extends): Azure's
"Lease Blob" REST reference; azure-storage-blob's BlobClient.acquire_lease / BlobLeaseClient.renew.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from ..core.errors import LeaseBusy as Busy, LeaseLost as Lost, StorageUnavailable
from ..core.settings import PUBLISH_LOCK_CONTAINER as CONTAINER

LEASE_SECONDS = 60        # the longest finite lease Azure grants
RENEW_AFTER = 15          # renewed this often while held (a quarter of the lease)
WAIT_SECONDS = 75         # longer than a lease: a crashed holder's lease has expired by then
POLL = 1.0


class Held:
    def __init__(self, lease):
        self.lease, self.renewed = lease, time.monotonic()

    def check(self, force: bool = False) -> None:
        """Renew when due (or now); Lost when the lease is no longer ours."""
        if not force and time.monotonic() - self.renewed < RENEW_AFTER:
            return
        from azure.core.exceptions import AzureError
        try:
            self.lease.renew()
        except AzureError as exc:
            raise Lost(f"the lease of this asset was lost ({type(exc).__name__})") from None
        self.renewed = time.monotonic()


def _marker(service, name: str):
    from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
    blob = service.get_blob_client(CONTAINER, name)
    try:
        try:
            blob.upload_blob(b"", overwrite=False)
        except ResourceNotFoundError:   # no container yet
            try:
                service.create_container(CONTAINER)
            except ResourceExistsError:
                pass
            blob.upload_blob(b"", overwrite=False)
    except ResourceExistsError:
        pass
    except AzureError as exc:
        if getattr(exc, "status_code", None) not in (409, 412):   # 412: it exists and is leased
            raise StorageUnavailable(f"blob container {CONTAINER!r}: {type(exc).__name__}") from exc
    return blob


@contextmanager
def held(service, marker: str, wait: float | None = None, doing: str = "publishing or withdrawing"):
    """Hold the lease on `marker` (publish's: the asset's ref) for the block; Busy when another run held it for
    `wait` seconds (`doing`: what that run is doing to the asset, for the message)."""
    from azure.core.exceptions import AzureError
    blob = _marker(service, marker)
    deadline = time.monotonic() + (WAIT_SECONDS if wait is None else wait)
    while True:
        try:
            lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
            break
        except AzureError as exc:
            if getattr(exc, "status_code", None) != 409:
                raise StorageUnavailable(f"blob container {CONTAINER!r}: {type(exc).__name__}") from exc
            if time.monotonic() >= deadline:
                raise Busy(f"another run is {doing} this asset") from None
            time.sleep(POLL)
    try:
        yield Held(lease)
    finally:
        try:
            lease.release()
        except AzureError:
            pass   # it expires by itself
