"""Azure AI Speech fast transcription through Microsoft's `azure-ai-transcription` client.

One TranscriptionClient per endpoint and credential, built on first use: the app's managed identity
(DefaultAzureCredential) unless a key is configured (local runs; the Bicep resource disables keys).
The client's own retries are off: a throttled or failing call becomes a SpeechError at once (with
the service's Retry-After) and the caller or the queue retries, so no invocation sleeps unbounded.

Streaming: azure-core hands `files=` to requests, which reads each file whole into memory to build
the multipart body. `StreamedMultipart` (a per-call policy) turns the same fields into a body that
is read from the file as it is sent, so a media file is never held in memory.
No key, token or response body ever reaches a message or a log line here.
"""
from __future__ import annotations

import logging
import os
import re
import uuid

from ..core.errors import SpeechBusy, SpeechRefused, SpeechRejected
from .cognitive import Service, failure
from .shared import Shared

log = logging.getLogger(__name__)
# azure-core logs each request's URL and headers at INFO (the key header redacted); not needed.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 540   # fast transcription answers when done (minutes for hours of audio); functionTimeout is 10 min
CHUNK = 256 * 1024
ROLE = "Cognitive Services Speech User"


SERVICE = Service("Speech", "SPEECH_ENDPOINT", "SPEECH_KEY", ROLE, "transcribe", SpeechBusy, SpeechRefused,
                  SpeechRejected)


# ---- streaming multipart -----------------------------------------------------------------------

class MultipartBody:
    """multipart/form-data read part by part; files are read CHUNK bytes at a time. Has a length
    (requests sends Content-Length) and can rewind (azure-core rewinds a seekable body to retry)."""

    def __init__(self, fields: list, boundary: str | None = None):
        self.boundary = boundary or uuid.uuid4().hex
        self._segments: list[bytes | tuple] = []   # bytes, or (file, start offset, size)
        for name, value in fields:
            filename, content, ctype = (tuple(value) + (None,))[:3] if isinstance(value, tuple) else (None, value, None)
            head = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_token(name)}"'
            if filename:
                head += f'; filename="{_token(filename)}"'
            head += (f"\r\nContent-Type: {ctype}" if ctype else "") + "\r\n\r\n"
            self._segments.append(head.encode())
            if hasattr(content, "read"):
                start = content.tell()
                size = os.fstat(content.fileno()).st_size - start
                self._segments.append((content, start, size))
            else:
                self._segments.append(content.encode() if isinstance(content, str) else bytes(content))
            self._segments.append(b"\r\n")
        self._segments.append(f"--{self.boundary}--\r\n".encode())
        self._length = sum(len(s) if isinstance(s, bytes) else s[2] for s in self._segments)
        self.seek(0)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self._length + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = min(CHUNK if n is None or n < 0 else n, self._length - self._pos)
        out, at = bytearray(), 0
        for seg in self._segments:
            size = len(seg) if isinstance(seg, bytes) else seg[2]
            if n > 0 and at + size > self._pos:
                skip = self._pos - at
                take = min(size - skip, n)
                if isinstance(seg, bytes):
                    out += seg[skip:skip + take]
                else:
                    seg[0].seek(seg[1] + skip)
                    out += seg[0].read(take)
                self._pos += take
                n -= take
            at += size
        return bytes(out)

    def __iter__(self):
        while chunk := self.read(CHUNK):
            yield chunk


def _token(value: str) -> str:
    """A field or file name safe inside a quoted header parameter."""
    return re.sub(r'[^A-Za-z0-9._-]', "_", str(value))[:100] or "file"


def _policy():
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class StreamedMultipart(SansIOHTTPPolicy):
        def on_request(self, request):
            http = request.http_request
            if not http.files:
                return
            body = MultipartBody(list(http.files.items()) if isinstance(http.files, dict) else list(http.files))
            http.set_streamed_data_body(body)
            http.headers["Content-Type"] = body.content_type
            http.headers["Content-Length"] = str(len(body))
    return StreamedMultipart()


# ---- the client -------------------------------------------------------------------------------

_clients: Shared[dict] = Shared(dict)


def client(endpoint: str, key: str | None):
    """The process's TranscriptionClient for this endpoint and credential."""
    from .identity import service_client

    def build(url: str, credential):
        from azure.ai.transcription import TranscriptionClient
        return TranscriptionClient(url, credential, retry_total=0, per_call_policies=[_policy()],
                                   connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
    return service_client(_clients, endpoint, key, "SPEECH_ENDPOINT", "https://<name>.cognitiveservices.azure.com/",
                          build)


def transcribe(speech, media, content_type: str, locales: list[str]) -> dict:
    """Transcribe an open media file; the service's JSON result (durationMilliseconds, combinedPhrases,
    phrases). Raises SpeechBusy, SpeechRefused, SpeechRejected or SpeechError, each safe to record."""
    from azure.ai.transcription.models import TranscriptionContent, TranscriptionOptions
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    ext = content_type.rsplit("/", 1)[-1]
    # The service's default filter, stated: the client leaves out an empty definition, which the service requires.
    options = TranscriptionOptions(locales=locales or None, profanity_filter_mode="Masked")
    try:
        result = speech.transcribe(TranscriptionContent(definition=options, audio=(f"audio.{ext}", media, content_type)))
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise failure(SERVICE, exc) from None
    return result.as_dict()
