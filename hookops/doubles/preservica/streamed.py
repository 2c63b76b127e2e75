"""Large bitstreams, file formats and hostile answers for the Preservica double.

Content beyond MAX_CONTENT_BYTES is streamed in CHUNK-sized pieces, generated as it is sent (the same
bytes `bitstream_bytes` would give), so a test can download a 2 GiB file without either side
holding it; its fixity is hashed from the same pieces (`streamed_digest`), once per file, size and
algorithm. `set_format` gives a content object's generation a format group and a PRONOM PUID, as
Preservica reports after characterisation.
What a network or a compromised server can do to a client: `cut_content` (a download that stops
short of its Content-Length and drops the connection), `oversize_content` (more bytes than the
bitstream's FileSize says), `link_to` (absolute URLs in entity answers on another server);
`content_hook` is called as each download starts (a test can look at the client's disk then).
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator

from ..base import Reply

CHUNK = 1024 * 1024   # a multiple of the 32-byte block, so chunks line up with bitstream_bytes()


def chunks(filename: str, size: int) -> Iterator[bytes]:
    block = hashlib.sha256(filename.encode()).digest()
    piece = block * (CHUNK // len(block))
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        yield piece[:n]
        sent += n


@functools.lru_cache(maxsize=64)
def streamed_digest(filename: str, size: int, algorithm: str) -> str:
    """The hex digest (hashlib name) of the generated content, from the pieces `chunks` sends. Inferred: a real
    Preservica records fixity for every bitstream whatever its size (pyPreservica's bitstream() reads Fixities
    with no size condition), so the double does too."""
    h = hashlib.new(algorithm)
    for piece in chunks(filename, size):
        h.update(piece)
    return h.hexdigest()


def streamed_reply(filename: str, size: int) -> Reply:
    # Inferred: `application/octet-stream` for bitstream content (pyPreservica's bitstream_content and
    # bitstream_chunks read the bytes and never look at the Content-Type).
    return Reply(200, {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                 chunks(filename, size))


def _hang_up_after(sent: bytes) -> Iterator[bytes]:
    yield sent
    # The double's server closes a connection whose handler raised a ConnectionError, quietly (base.py).
    raise ConnectionAbortedError("cut_content: hanging up before the announced length")


def format_xml(format_group: str | None, puid: str | None, name: str | None) -> str:
    """The xip:FormatGroup and xip:Formats elements of a generation (empty when not characterised).
    Element names and the `valid` attribute as pyPreservica entityAPI.py `generation()` reads them
    (FormatGroup; Formats/Format@valid with PUID, Priority, IdentificationMethod, FormatName). Inferred:
    IdentificationMethod "Signature" (the value a DROID signature match would give; no public fixture)."""
    from xml.sax.saxutils import escape
    out = f"<xip:FormatGroup>{escape(format_group)}</xip:FormatGroup>" if format_group else ""
    if puid:
        out += (f'<xip:Formats><xip:Format valid="true"><xip:PUID>{escape(puid)}</xip:PUID>'
                f"<xip:Priority>1</xip:Priority><xip:IdentificationMethod>Signature</xip:IdentificationMethod>"
                f"<xip:FormatName>{escape(name or puid)}</xip:FormatName></xip:Format></xip:Formats>")
    return out


class FormatControls:
    """Mixed into PreservicaDouble (before EntityApi, whose `_url` and `_bitstream_content` it wraps):
    characterise a content object of an asset by its file name; the hostile answers above."""
    content_hook: Callable[[], None] | None = None
    _link_base: str | None = None

    def _hostile(self) -> dict:
        return self.__dict__.setdefault("_hostile_state", {"cuts": {}, "extra": {}})

    def cut_content(self, asset_ref: str, filename: str, at: int, times: int = 1) -> None:
        """The next `times` downloads of this bitstream announce its whole length, send `at` bytes and hang up."""
        with self._lock:
            self._hostile()["cuts"][self._co(asset_ref, filename)] = [at, times]

    def oversize_content(self, asset_ref: str, filename: str, extra: int) -> None:
        """Its downloads carry `extra` bytes more than the FileSize (and fixity) its bitstream lists."""
        with self._lock:
            self._hostile()["extra"][self._co(asset_ref, filename)] = extra

    def link_to(self, base: str | None) -> None:
        """Absolute URLs in entity answers start with `base` (e.g. another server's http://host:port) from now on."""
        self._link_base = base

    def _co(self, asset_ref: str, filename: str) -> str:
        for co_ref in self._entities[asset_ref].content_objects:
            if self._entities[co_ref].filename == filename:
                return co_ref
        raise KeyError(f"{asset_ref} has no bitstream {filename!r}")

    def _url(self, entity, tail: str = "") -> str:
        url = super()._url(entity, tail)
        return self._link_base + url[len(self._base):] if self._link_base else url

    def _bitstream_content(self, request, query, co_ref, gen, index):
        if self.content_hook:
            self.content_hook()
        reply = super()._bitstream_content(request, query, co_ref, gen, index)
        state = self._hostile()
        extra = state["extra"].get(co_ref, 0)
        if reply.status != 200 or not (extra or co_ref in state["cuts"]):
            return reply
        # Held whole here: these controls are for small files.
        body = (reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)) + b"\x00" * extra
        cut = state["cuts"].get(co_ref)
        if cut:
            cut[1] -= 1
            if cut[1] <= 0:
                del state["cuts"][co_ref]
            return Reply(200, {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))},
                         _hang_up_after(body[:cut[0]]))   # octet-stream: inferred, as in streamed_reply
        return Reply(200, {"Content-Type": "application/octet-stream"}, body)

    def set_format(self, asset_ref: str, filename: str, format_group: str | None = None,
                   puid: str | None = None, name: str | None = None) -> None:
        with self._lock:
            co = self._entities[self._co(asset_ref, filename)]
            co.format_group, co.puid, co.format_name = format_group, puid, name

    def set_fixity(self, asset_ref: str, filename: str, algorithm: str, value: str) -> None:
        """Preservica's stored fixity for this bitstream says `value` for `algorithm`, whatever its bytes are
        (a corrupted store, or a wrong value recorded at ingest)."""
        with self._lock:
            self._entities[self._co(asset_ref, filename)].fixity_override[algorithm] = value
