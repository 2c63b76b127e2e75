"""What the Preservica double holds and how it answers: entities, generated content, reply helpers."""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field

from ..base import Reply

PATHS = {"IO": "information-objects", "SO": "structural-objects", "CO": "content-objects"}
KINDS = {v: k for k, v in PATHS.items()}
TAGS = {"IO": "InformationObject", "SO": "StructuralObject", "CO": "ContentObject"}
THUMBNAIL_SIZES = ("small", "medium", "large")
MAX_CONTENT_BYTES = 16 * 1024 * 1024   # bitstream bodies are generated whole only up to this size, then streamed


def make_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid RGB PNG of one colour (distinct colours give distinct bytes per asset)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "application/octet-stream"


def bitstream_bytes(filename: str, size: int) -> bytes:
    """The content the double serves for a bitstream: deterministic, so tests can compare."""
    block = hashlib.sha256(filename.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Entity:
    kind: str                                   # IO, SO or CO
    ref: str
    title: str
    description: str = ""
    security_tag: str = "open"
    parent: str | None = None
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)   # (api id, type, value)
    metadata: dict[str, tuple[str, str]] = field(default_factory=dict)      # fragment ref -> (schema, xml)
    thumbnail: bytes | None = None
    hidden: bool = False                                                    # IO: CHANGE_ASSET_VISIBILITY (inferred shape)
    content_objects: list[str] = field(default_factory=list)               # IO: its CO refs, in order
    filename: str = ""                                                      # CO: its one bitstream
    size: int = 0
    rep_type: str = "Preservation"                                          # CO: representation it is in
    rep_index: int = 1                                                      # CO: which one of its type (1, 2, ...)
    content: bytes | None = None                                            # CO: real bytes, else generated
    format_group: str | None = None                                         # CO: as characterised (set_format)
    puid: str | None = None
    format_name: str | None = None
    fixity_override: dict[str, str] = field(default_factory=dict)         # CO: algorithm -> stored value (set_fixity)

    def body(self) -> bytes:
        """A content object's bitstream bytes: the real ones a test gave, else generated ones."""
        return self.content if self.content is not None else bitstream_bytes(self.filename, self.size)


# Content types: inferred (pyPreservica parses bodies by position, not by Content-Type).
def xml_reply(status: int, doc: str) -> Reply:
    return Reply(status, {"Content-Type": "application/xml;charset=UTF-8"},
                 ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + doc).encode())


def json_reply(status: int, doc) -> Reply:
    return Reply(status, {"Content-Type": "application/json;charset=UTF-8"}, json.dumps(doc).encode())


def text_reply(status: int, message: str) -> Reply:
    return Reply(status, {"Content-Type": "text/plain;charset=UTF-8"}, message.encode())


def not_found(what: str) -> Reply:
    return text_reply(404, f"{what} not found")
