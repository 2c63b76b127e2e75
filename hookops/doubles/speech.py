"""Local Azure AI Speech (fast transcription: POST /speechtotext/transcriptions:transcribe) over HTTPS
with a trustme certificate, for the real `azure-ai-transcription` client.

    with SpeechDouble() as speech:          # key "test-speech-key"; speech.endpoint, speech.ca_bundle
        speech.set_phrases([(0, 1500, "Hello."), (1600, 900, "Goodbye.")])
        speech.fail_next(429, {"Retry-After": "1"})
        speech.hold(); ...; speech.wait_in_flight(2); speech.release()   # calls answered only after release()
        ... speech.calls[-1].definition["locales"], .audio_sha256, .audio (bytes when small) ...

Authentication: the key in `Ocp-Apim-Subscription-Key`, or `Authorization: Bearer <token>` that
`accept_token(token)` (a callable) approves. The request body is spooled to a temporary file and
the multipart parts are found in it there, so a large upload is never held in memory.
Nothing a caller sent as a credential is kept: `calls` holds header names only for those.

Sources: request (multipart POST to /speechtotext/transcriptions:transcribe?api-version=..., parts `audio` and
`definition` JSON such as {"locales": ["en-US"]}) and response (`durationMilliseconds`, `combinedPhrases[].text`,
`phrases[]`: offsetMilliseconds, durationMilliseconds, text, locale, confidence): learn.microsoft.com
azure/ai-services/speech-service/fast-transcription-create, the REST reference speechtotext/transcriptions/transcribe
and the real client's models (azure-ai-transcription models/_models.py); auth (`Ocp-Apim-Subscription-Key` or
`Authorization: Bearer <Entra ID token>`): that page's keyless note. Inferred: the error bodies, the answer to a
GET, and the 429 a test scripts (`Retry-After` in seconds; no page shows this API's 429).
"""
from __future__ import annotations

import hashlib
import io
import json
import mmap
import tempfile
import threading
import wave
from dataclasses import dataclass, field

import trustme

from .aiservice import DENIED, AiHandler, AiServiceDouble
from .tls import JsonHandler

PATH = "/speechtotext/transcriptions:transcribe"
KEEP_AUDIO = 16 * 1024 * 1024    # audio bytes kept for assertions up to this size (hash and size always)


@dataclass
class Call:
    path: str
    query: dict
    headers: dict                     # credential headers as "<redacted>"
    content_type: str = ""
    definition: dict | None = None
    audio_filename: str | None = None
    audio_content_type: str | None = None
    audio_size: int = 0
    audio_sha256: str = ""
    audio: bytes | None = None
    parts: list[str] = field(default_factory=list)   # part names in order


def _error(code: str, message: str) -> dict:
    # Inferred: the {"error": {"code", "message"}} shape of Azure AI services errors; no page shows this API's.
    return {"error": {"code": code, "message": message}}


class _Handler(AiHandler):

    def do_GET(self) -> None:
        self._send(404, _error("NotFound", "not found"))

    def do_POST(self) -> None:
        d: SpeechDouble = self.server.double
        call = Call(*self.request_parts(), self.headers.get("Content-Type", ""))
        with tempfile.TemporaryFile(prefix="speech-double-") as spool:
            _spool(self, spool)
            if call.path == PATH and call.content_type.startswith("multipart/form-data"):
                _parse(call, spool)
        authorized = d._authorized(self.headers)
        with d._lock:
            d.calls.append(call)
            scripted = d._failures.pop(0) if d._failures and authorized else None
            d.in_flight += 1
            d.max_in_flight = max(d.max_in_flight, d.in_flight)
            d._cond.notify_all()
        d._gate.wait(60)
        with d._lock:   # before the answer is written: a client that has it may send the next call at once
            d.in_flight -= 1
            d._cond.notify_all()
        self._answer(d, call, authorized, scripted)

    def _answer(self, d: SpeechDouble, call: Call, authorized: bool, scripted) -> None:
        if not authorized:
            return self._send(401, DENIED)
        if scripted:
            return self._send(scripted[0], scripted[2], scripted[1])
        if call.path != PATH:
            return self._send(404, _error("NotFound", "Resource not found"))
        if not call.query.get("api-version") or call.definition is None or call.audio_size == 0:
            return self._send(400, _error("InvalidRequest", "definition and audio are required"))
        self._send(200, d._result(call))


def _spool(h: JsonHandler, out) -> None:
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        while size := int(h.rfile.readline().split(b";")[0].strip() or b"0", 16):
            _copy(h.rfile, out, size)
            h.rfile.readline()
        while h.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
    else:
        _copy(h.rfile, out, int(h.headers.get("Content-Length") or 0))
    out.flush()


def _copy(src, out, size: int) -> None:
    while size > 0:
        chunk = src.read(min(size, 256 * 1024))
        if not chunk:
            break
        out.write(chunk)
        size -= len(chunk)


def _parse(call: Call, spool) -> None:
    """Find the parts in the spooled body without reading it into memory (mmap)."""
    boundary = call.content_type.partition("boundary=")[2].strip().strip('"').encode()
    if not boundary or spool.tell() == 0:
        return
    with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as body:
        delimiter = b"--" + boundary
        at = body.find(delimiter)
        while at >= 0 and body[at + len(delimiter):at + len(delimiter) + 2] != b"--":
            head_end = body.find(b"\r\n\r\n", at)
            nxt = body.find(b"\r\n" + delimiter, head_end)
            if head_end < 0 or nxt < 0:
                return
            head = body[at + len(delimiter):head_end].decode("latin-1")
            disposition = {k.strip().lower(): v for k, _, v in (line.partition(":") for line in head.split("\r\n"))}
            params = dict(p.strip().partition("=")[::2] for p in disposition.get("content-disposition", "").split(";")[1:])
            name = params.get("name", "").strip('"')
            start, end = head_end + 4, nxt
            call.parts.append(name)
            if name == "definition":
                call.definition = json.loads(body[start:end])
            elif name == "audio":
                call.audio_filename = params.get("filename", "").strip('"') or None
                call.audio_content_type = disposition.get("content-type", "").strip() or None
                call.audio_size = end - start
                digest = hashlib.sha256()
                for i in range(start, end, 1 << 20):
                    digest.update(body[i:min(end, i + (1 << 20))])
                call.audio_sha256 = digest.hexdigest()
                call.audio = body[start:end] if call.audio_size <= KEEP_AUDIO else None
            at = nxt + 2


class SpeechDouble(AiServiceDouble):
    """HTTPS fast-transcription endpoint on 127.0.0.1 at a free port (see the module docstring)."""
    HANDLER = _Handler
    PREFIX = "speech-double-"

    def __init__(self, key: str = "test-speech-key", ca: trustme.CA | None = None, accept_token=None):
        super().__init__(key, ca, accept_token)
        self._cond = threading.Condition(self._lock)
        self._failures: list[tuple[int, dict, dict | None]] = []
        self._phrases: list[tuple[int, int, str]] = [(0, 1200, "Hello from the archive.")]
        self.calls: list[Call] = []
        self.in_flight = self.max_in_flight = 0   # calls received and not yet answered; the most at once
        self._gate = threading.Event()
        self._gate.set()

    def stop(self) -> None:
        self._gate.set()   # a held call is answered, so the server can shut down
        super().stop()

    @property
    def ca_pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    # controls
    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()

    def set_phrases(self, phrases: list[tuple[int, int, str]]) -> None:
        """(offset ms, duration ms, text) per phrase of every later answer."""
        with self._lock:
            self._phrases = list(phrases)

    def fail_next(self, status: int, headers: dict | None = None, body: dict | None = None, times: int = 1) -> None:
        with self._lock:
            self._failures += [(status, dict(headers or {}), body if body is not None else
                                _error(str(status), "scripted failure"))] * times

    def hold(self) -> None:
        """Calls are received (and counted in `in_flight`) but answered only after release() (60 s at most)."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_in_flight(self, n: int, timeout: float = 30.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_flight == n, timeout):
                raise TimeoutError(f"SpeechDouble: {self.in_flight} calls in flight, not {n}, after {timeout}s")

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Call]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls) >= n, timeout):
                raise TimeoutError(f"SpeechDouble: {len(self.calls)} of {n} calls after {timeout}s")
            return list(self.calls)

    # answers
    def _result(self, call: Call) -> dict:
        locales = (call.definition or {}).get("locales") or ["en-US"]
        with self._lock:
            phrases = list(self._phrases)
        duration = _wav_ms(call.audio) or max((o + d for o, d, _ in phrases), default=0)
        # The response shape of fast-transcription-create; the values (confidence, one combined phrase) are ours.
        return {"durationMilliseconds": duration,
                "combinedPhrases": [{"text": " ".join(t for _, _, t in phrases)}],
                "phrases": [{"offsetMilliseconds": o, "durationMilliseconds": d, "text": t, "locale": locales[0],
                             "confidence": 0.9} for o, d, t in phrases]}


def _wav_ms(data: bytes | None) -> int:
    if not data or not data.startswith(b"RIFF"):
        return 0
    try:
        with wave.open(io.BytesIO(data)) as w:
            return int(w.getnframes() * 1000 / w.getframerate())
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0


def make_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A real mono 16-bit PCM WAV: a quiet 440 Hz tone."""
    import math
    import struct
    frames = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()
