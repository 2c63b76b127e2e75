"""Large bitstreams and file formats for the Preservica double.

Content beyond MAX_CONTENT_BYTES is streamed in CHUNK-sized pieces, generated as it is sent (the same
bytes `bitstream_bytes` would give), so a test can download a 500 MB file without either side
holding it. `set_format` gives a content object's generation a format group and a PRONOM PUID, as
Preservica reports after characterisation.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

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


def streamed_reply(filename: str, size: int) -> Reply:
    return Reply(200, {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                 chunks(filename, size))


def format_xml(format_group: str | None, puid: str | None, name: str | None) -> str:
    """The xip:FormatGroup and xip:Formats elements of a generation (empty when not characterised)."""
    from xml.sax.saxutils import escape
    out = f"<xip:FormatGroup>{escape(format_group)}</xip:FormatGroup>" if format_group else ""
    if puid:
        out += (f'<xip:Formats><xip:Format valid="true"><xip:PUID>{escape(puid)}</xip:PUID>'
                f"<xip:Priority>1</xip:Priority><xip:IdentificationMethod>Signature</xip:IdentificationMethod>"
                f"<xip:FormatName>{escape(name or puid)}</xip:FormatName></xip:Format></xip:Formats>")
    return out


class FormatControls:
    """Mixed into PreservicaDouble: characterise a content object of an asset by its file name."""

    def set_format(self, asset_ref: str, filename: str, format_group: str | None = None,
                   puid: str | None = None, name: str | None = None) -> None:
        with self._lock:
            for co_ref in self._entities[asset_ref].content_objects:
                co = self._entities[co_ref]
                if co.filename == filename:
                    co.format_group, co.puid, co.format_name = format_group, puid, name
                    return
        raise KeyError(f"{asset_ref} has no bitstream {filename!r}")
