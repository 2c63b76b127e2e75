"""Azure OpenAI chat completions through the `openai` package's AzureOpenAI client.

One client per endpoint, API version and credential, built on first use: an Entra ID token provider over
the app's managed identity (azure.identity get_bearer_token_provider, scope
https://cognitiveservices.azure.com/.default: learn.microsoft.com azure/ai-services/openai/how-to/managed-identity)
unless a key is configured (local runs; the Bicep resource disables keys). The client's own retries are
off (max_retries=0): a 429 becomes ChatBusy with the service's Retry-After and the caller decides.
Content filtering (learn.microsoft.com azure/ai-foundry/openai/concepts/content-filter, "Scenario details"):
a filtered prompt is HTTP 400 with error code `content_filter`; a filtered answer is a 200 whose choice has
finish_reason `content_filter`. No key, token, prompt or answer ever reaches a log line here.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from ..core.errors import AIServiceError, ChatBusy, ChatFiltered, ChatRefused, SettingsError
from .shared import Shared

log = logging.getLogger(__name__)
SCOPE = "https://cognitiveservices.azure.com/.default"
TIMEOUT = 120.0
ROLE = "Cognitive Services OpenAI User"


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str
    model: str
    prompt_tokens: int
    completion_tokens: int


_clients: Shared[dict] = Shared(dict)


def client(endpoint: str, api_version: str, key: str | None):
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?/?", endpoint or ""):
        raise SettingsError("OPENAI_ENDPOINT must be the Azure OpenAI resource's https:// endpoint, e.g. "
                          "https://<name>.openai.azure.com/ (no path)")
    ident = (endpoint, api_version, hashlib.sha256(key.encode()).hexdigest() if key else None)
    known = _clients.get()
    if ident not in known:
        from openai import AzureOpenAI
        auth: dict = {"api_key": key}
        if not key:
            from azure.identity import get_bearer_token_provider

            from .identity import credential
            auth = {"azure_ad_token_provider": get_bearer_token_provider(credential(), SCOPE)}
        known.clear()
        known[ident] = AzureOpenAI(azure_endpoint=endpoint.rstrip("/"), api_version=api_version, max_retries=0,
                                   timeout=TIMEOUT, **auth)
    return known[ident]


def complete(chat, deployment: str, system: str, user: str, max_tokens: int) -> Answer:
    """One chat completion: the system message, then the user message; temperature low for a factual register."""
    import openai
    try:
        # POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...: azure-rest-api-specs
        # specification/cognitiveservices/data-plane/AzureOpenAI/inference/stable/2024-10-21/inference.json.
        done = chat.chat.completions.create(model=deployment, messages=[{"role": "system", "content": system},
                                                                         {"role": "user", "content": user}],
                                            max_completion_tokens=max_tokens, temperature=0.2, n=1)
    except openai.APIStatusError as exc:
        raise classify(exc) from None
    except openai.APIConnectionError as exc:
        from .http import tls_failure
        tls = tls_failure(exc)
        raise AIServiceError(f"Azure OpenAI: {tls}" if tls else
                          f"Azure OpenAI could not be reached: {type(exc).__name__} (check OPENAI_ENDPOINT)") from None
    choice = done.choices[0] if done.choices else None
    usage = done.usage
    return Answer(text=(choice.message.content or "") if choice and choice.message else "",
                  finish_reason=str(choice.finish_reason or "") if choice else "",
                  model=str(done.model or "")[:80], prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                  completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))


def classify(exc) -> AIServiceError:
    from ..core import retry
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    code = body.get("code") if isinstance(body.get("code"), str) else ""   # openai passes the "error" object
    shown = f" {code}" if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,79}", code or "") else ""
    if status == 400 and code == "content_filter":
        return ChatFiltered("the content filter refused the prompt")
    if status in (401, 403):
        log.error("Azure OpenAI refused the request (HTTP %s%s): check OPENAI_ENDPOINT, OPENAI_KEY (local) or the "
                  "app identity's %r role", status, shown, ROLE)
        return ChatRefused(f"Azure OpenAI refused the request (HTTP {status}{shown}): check OPENAI_ENDPOINT and the "
                           f"app identity's {ROLE!r} role (locally: OPENAI_KEY)")
    if status == 429 or status >= 500:
        headers = exc.response.headers
        ms = retry.parse(headers.get("retry-after-ms"))
        wait = ms / 1000 if ms is not None else retry.parse(headers.get("retry-after"))
        return ChatBusy(f"Azure OpenAI answered HTTP {status}{shown}", wait)
    return AIServiceError(f"Azure OpenAI answered HTTP {status}{shown}")
