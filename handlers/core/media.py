"""What a file is, from its first bytes: content type, IIIF resource type, pixel size, duration. Pure, no I/O.

The type comes from the bytes, never from the (untrusted) filename; nothing is ever labelled text/html
or SVG, so a published file cannot run script on the public origin. Sizes are read from the header
only (HEAD_BYTES at most): Pillow's Image.open parses a header lazily and never decodes pixels.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

HEAD_BYTES = 1024 * 1024   # enough for a JPEG's EXIF/ICC segments before its frame header

# (magic at offset, content type, IIIF type); first match wins.
_MAGIC = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png", "Image"),
    (0, b"\xff\xd8\xff", "image/jpeg", "Image"),
    (0, b"GIF87a", "image/gif", "Image"),
    (0, b"GIF89a", "image/gif", "Image"),
    (0, b"II*\x00", "image/tiff", "Image"),
    (0, b"MM\x00*", "image/tiff", "Image"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2", "Image"),
    (0, b"%PDF-", "application/pdf", "Text"),
    (0, b"fLaC", "audio/flac", "Sound"),
    (0, b"OggS", "audio/ogg", "Sound"),
    (0, b"ID3", "audio/mpeg", "Sound"),
    (0, b"\x1aE\xdf\xa3", "video/webm", "Video"),
)


@dataclass(frozen=True)
class Media:
    content_type: str
    kind: str                       # IIIF type: Image, Sound, Video, Text or Dataset
    width: int | None = None
    height: int | None = None
    duration: float | None = None   # seconds

    @property
    def paintable(self) -> bool:
        """Whether it can be a Canvas: an image with its size, or audio/video with its duration."""
        if self.kind == "Image":
            return bool(self.width and self.height)
        return self.kind in ("Sound", "Video") and bool(self.duration)


def sniff(head: bytes) -> tuple[str, str]:
    """(content type, IIIF type) from the first bytes."""
    for offset, magic, content_type, kind in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return content_type, kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "Image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav", "Sound"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # MPEG audio frame
        return "audio/mpeg", "Sound"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4", "Sound"
        return ("video/quicktime" if brand == b"qt  " else "video/mp4"), "Video"
    return "application/octet-stream", "Dataset"


def describe(head: bytes, total: int | None = None) -> Media:
    """Everything the manifest needs to know about a file, from its head (and its length for WAV)."""
    content_type, kind = sniff(head)
    if kind == "Image":
        width, height = image_size(head)
        return Media(content_type, kind, width, height)
    if content_type == "audio/wav":
        return Media(content_type, kind, duration=wav_duration(head, total))
    return Media(content_type, kind)


def image_size(head: bytes) -> tuple[int | None, int | None]:
    """(width, height) from the image header, or (None, None) when the header is not in `head`."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(head)) as img:   # lazy: reads the header, decodes nothing
            width, height = img.size
    except Exception:  # truncated or unknown: Pillow raises several kinds
        return None, None
    return (width, height) if width > 0 and height > 0 else (None, None)


def wav_duration(head: bytes, total: int | None = None) -> float | None:
    """Seconds of a RIFF/WAVE file: its data chunk's size over the byte rate in its fmt chunk."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, None
    for _ in range(64):   # a bounded walk over the chunks in the head
        if pos + 8 > len(head):
            return None
        chunk, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and size >= 16 and pos + 24 <= len(head):
            byte_rate = struct.unpack("<I", head[pos + 16:pos + 20])[0]
        elif chunk == b"data":
            if size == 0xFFFFFFFF and total:   # written while streaming: the rest of the file
                size = total - pos - 8
            if not byte_rate:
                return None
            seconds = size / byte_rate
            return round(seconds, 3) if seconds > 0 else None
        pos += 8 + size + (size & 1)
    return None
