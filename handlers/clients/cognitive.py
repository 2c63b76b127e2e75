"""What an Azure AI service's failure through an azure-core client means (Speech, Document Intelligence):
throttled (Busy, with its Retry-After), refused (a setting or role to fix), or the file rejected. Each
message is safe to record: the service's error code, never its message (which can quote input)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..core.errors import AIServiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    name: str          # "Speech"
    endpoint: str      # the setting naming its endpoint
    key: str           # the local key setting
    role: str          # the app identity's role on the resource
    verb: str          # what it cannot do to a rejected file: "transcribe", "read"
    busy: type         # the ServiceBusy subclass it raises
    refused: type
    rejected: type


def failure(service: Service, exc: Exception) -> AIServiceError:
    """The AIServiceError for an azure-core exception from a call to `service`; `exc` itself when it is none of them."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    if isinstance(exc, HttpResponseError):   # ClientAuthenticationError too: 401, or no token at all
        if exc.status_code is None:
            return service.refused(f"no token for {service.name} ({type(exc).__name__}): check the app's identity "
                                   f"(AZURE_CLIENT_ID) or set {service.key} for a local run")
        return classify(service, exc.status_code, getattr(exc, "response", None))
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        from .http import tls_failure
        tls = tls_failure(exc)
        if tls:
            log.error("%s: %s", service.name, tls)
            return AIServiceError(f"{service.name}: {tls}")
        return AIServiceError(f"{service.name} could not be reached: {type(exc).__name__} (check {service.endpoint})")
    raise exc


def classify(service: Service, status: int | None, response) -> AIServiceError:
    from .http import error_code, retry_after
    code = error_code(response) if response is not None else ""
    if status in (401, 403):
        log.error("%s refused the request (HTTP %s%s): check %s, %s (local) or the app identity's %r role",
                  service.name, status, code, service.endpoint, service.key, service.role)
        return service.refused(f"{service.name} refused the request (HTTP {status}{code}): check {service.endpoint} "
                               f"and the app identity's {service.role!r} role on the resource (locally: {service.key})")
    if status == 429 or (status or 0) >= 500:
        return service.busy(f"{service.name} answered HTTP {status}{code}",
                            retry_after(response) if response is not None else None)
    if status in (400, 413, 415, 422):
        return service.rejected(f"{service.name} cannot {service.verb} this file (HTTP {status}{code})")
    if status == 200:  # an operation polled to "failed": azure-core's LRO raises it with the 200 response
        return service.rejected(f"{service.name} could not {service.verb} this file ({code.strip() or 'failed'})")
    return AIServiceError(f"{service.name} answered HTTP {status}{code}")
