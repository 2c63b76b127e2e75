"""Local Azure OpenAI chat completions over HTTPS with a trustme certificate, for the real `openai` client.

    with ChatDouble() as chat:              # key "test-openai-key"; chat.endpoint, chat.ca_bundle
        chat.answer = "A letter of 1921 ..."                    # or chat.respond = lambda call: "..."
        chat.fail_next(429, {"Retry-After": "2"})
        chat.filter_prompt()                                    # the next call: 400 content_filter
        chat.finish_reason = "content_filter"                   # answers filtered on the way out
        ... chat.calls[-1].deployment, .messages, .body, .query["api-version"] ...

Sources: request and response of POST /openai/deployments/{deployment-id}/chat/completions?api-version=...
(azure-rest-api-specs specification/cognitiveservices/data-plane/AzureOpenAI/inference/stable/2024-10-21/
inference.json: createChatCompletionResponse with choices[].message, finish_reason, content_filter_results,
usage, prompt_filter_results); auth `api-key` or `Authorization: Bearer` (same file, securityDefinitions);
the content filter's 400 with code `content_filter` and innererror ResponsibleAIPolicyViolation
(learn.microsoft.com azure/ai-foundry/openai/concepts/content-filter, "Scenario details"). Inferred: the
429's body. Nothing a caller sent as a credential is kept.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import trustme

from .aiservice import DENIED, AiHandler, AiServiceDouble

MAX_BODY = 8 * 1024 * 1024
MODEL = "gpt-4o-2024-11-20"


@dataclass
class Call:
    path: str
    query: dict
    headers: dict
    deployment: str = ""
    body: dict = field(default_factory=dict)

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages") or []


def _filters(filtered: bool) -> dict:
    harms = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}
    return harms | {"jailbreak": {"filtered": filtered, "detected": filtered}}


class _Handler(AiHandler):

    def do_POST(self) -> None:
        d: ChatDouble = self.server.double
        call = Call(*self.request_parts())
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(size, MAX_BODY))
        try:
            call.body = json.loads(raw)
        except ValueError:
            call.body = {}
        parts = call.path.split("/")   # ["", "openai", "deployments", id, "chat", "completions"]
        call.deployment = parts[3] if len(parts) == 6 and parts[1:3] == ["openai", "deployments"] else ""
        with d._lock:
            d.calls.append(call)
            authorized = d._authorized(self.headers)
            scripted = d._failures.pop(0) if d._failures and authorized else None
        if not authorized:
            return self._send(401, DENIED)
        if scripted:
            return self._send(*scripted)
        if not call.deployment or parts[4:] != ["chat", "completions"]:
            return self._send(404, {"error": {"code": "DeploymentNotFound", "message": "not found"}})
        if not call.query.get("api-version") or not call.messages:
            return self._send(400, {"error": {"code": "BadRequest", "message": "messages required"}})
        text = d.respond(call) if d.respond else d.answer
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in call.messages) // 4 + 10
        done = d.finish_reason
        self._send(200, {
            "id": "chatcmpl-double", "object": "chat.completion", "created": 1765000000, "model": MODEL,
            "system_fingerprint": "fp_double",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _filters(False)}],
            "choices": [{"index": 0, "finish_reason": done, "logprobs": None,
                         "message": {"role": "assistant", "content": None if done == "content_filter" else text},
                         "content_filter_results": _filters(done == "content_filter")}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4 + 1,
                      "total_tokens": prompt_tokens + len(text) // 4 + 1}})


class ChatDouble(AiServiceDouble):
    """HTTPS Azure OpenAI endpoint on 127.0.0.1 at a free port (see the module docstring)."""
    HANDLER = _Handler
    PREFIX = "chat-double-"
    KEY_HEADER = "api-key"

    def __init__(self, key: str = "test-openai-key", ca: trustme.CA | None = None, accept_token=None):
        super().__init__(key, ca, accept_token)
        self._failures: list[tuple[int, dict, dict]] = []
        self.calls: list[Call] = []
        self.answer = "A letter of 1921 about the harbour wall."
        self.respond = None
        self.finish_reason = "stop"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
        self.answer, self.respond, self.finish_reason = "A letter of 1921 about the harbour wall.", None, "stop"

    def fail_next(self, status: int, headers: dict | None = None, body: dict | None = None, times: int = 1) -> None:
        with self._lock:
            self._failures += [(status, body or {"error": {"code": str(status), "message": "scripted"}},
                                dict(headers or {}))] * times

    def filter_prompt(self) -> None:
        """The next call is refused by the content filter on its prompt (HTTP 400, code content_filter)."""
        self.fail_next(400, body={"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": None, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": _filters(True)}}})
