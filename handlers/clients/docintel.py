"""Azure AI Document Intelligence's read model through Microsoft's `azure-ai-documentintelligence` client.

One DocumentIntelligenceClient per endpoint and credential, built on first use: the app's managed
identity (DefaultAzureCredential) unless a key is configured (local runs; the Bicep resource disables
keys). The client's own retries are off: a throttled call becomes DocIntelBusy at once (with the
service's Retry-After) and the caller or the queue retries, so no invocation sleeps unbounded.
The operation is POST .../documentModels/prebuilt-read:analyze (202, Operation-Location) then GET of
that location until "succeeded" or "failed" (azure-rest-api-specs specification/ai/DocumentIntelligence/
routes.tsp, examples/2025-09-01/AnalyzeDocument_Stream.json and GetAnalyzeDocumentResult.json).
The file is sent from an open file (requests streams a file object), never read whole here.
No key, token or response body ever reaches a message or a log line here.
"""
from __future__ import annotations

import logging

from ..core.errors import AIServiceError, DocIntelBusy, DocIntelRefused, DocIntelRejected
from .cognitive import Service, failure
from .shared import Shared

log = logging.getLogger(__name__)
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

MODEL = "prebuilt-read"
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 120
POLL_SECONDS = 2.0      # between polls when the service names no Retry-After (the SDK's default is 30 s)
ROLE = "Cognitive Services User"


SERVICE = Service("Document Intelligence", "DOCINTEL_ENDPOINT", "DOCINTEL_KEY", ROLE, "read", DocIntelBusy,
                  DocIntelRefused, DocIntelRejected)


_clients: Shared[dict] = Shared(dict)


def client(endpoint: str, key: str | None):
    """The process's DocumentIntelligenceClient for this endpoint and credential."""
    from .identity import service_client

    def build(url: str, credential):
        from azure.ai.documentintelligence import DocumentIntelligenceClient
        return DocumentIntelligenceClient(url, credential, retry_total=0, connection_timeout=CONNECT_TIMEOUT,
                                          read_timeout=READ_TIMEOUT)
    return service_client(_clients, endpoint, key, "DOCINTEL_ENDPOINT",
                          "https://<name>.cognitiveservices.azure.com/", build)


def read(docintel, document, pages: int, deadline: float) -> dict:
    """The read model's analyzeResult (as a dict: apiVersion, modelId, content, pages[].words[].confidence)
    for an open file, its first `pages` pages at most, waiting at most `deadline` seconds for the result.
    Raises DocIntelBusy, DocIntelRefused, DocIntelRejected or AIServiceError, each safe to record."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    try:
        # `pages` bounds what is read and billed (routes.tsp: "1-based page numbers to analyze").
        poller = docintel.begin_analyze_document(MODEL, document, pages=f"1-{int(pages)}",
                                                 content_type="application/octet-stream",
                                                 polling_interval=POLL_SECONDS)
        result = poller.result(timeout=deadline)
        if not poller.done():
            raise AIServiceError(f"Document Intelligence had not finished after {deadline:.0f} s; the queue retries")
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise failure(SERVICE, exc) from None
    return result.as_dict()
