"""Which files `transcribe` sends to Speech: the formats it reads, and how a file's kind is decided."""
from __future__ import annotations

from dataclasses import dataclass

# What Speech's fast transcription reads (its documented formats), by extension -> content type.
SUPPORTED = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/ogg", "flac": "audio/flac",
             "wma": "audio/x-ms-wma", "aac": "audio/aac", "m4a": "audio/mp4", "amr": "audio/amr",
             "webm": "audio/webm", "spx": "audio/ogg"}
OTHER_AV = {"aif", "aiff", "au", "mid", "ra", "mp4", "m4v", "mov", "mkv", "avi", "wmv", "mpg", "mpeg", "mxf",
            "3gp", "flv", "ts", "vob", "dv"}
# PRONOM identifiers, where Preservica characterised the file, that name one of the formats above.
PUIDS = {"fmt/141": "wav", "fmt/142": "wav", "fmt/143": "wav", "fmt/527": "wav", "fmt/703": "wav",
         "fmt/704": "wav", "fmt/705": "wav", "fmt/706": "wav", "fmt/134": "mp3", "fmt/279": "flac",
         "fmt/203": "ogg", "fmt/946": "opus", "fmt/132": "wma", "fmt/573": "webm", "fmt/199": "mp4",
         "x-fmt/384": "mov", "fmt/5": "avi", "fmt/569": "mkv", "fmt/414": "aif"}
AV_GROUPS = {"audio", "video", "sound", "moving image"}


@dataclass(frozen=True)
class Media:
    bitstream: object  # pyPreservica Bitstream
    kind: str          # extension that decides: from the PUID when known, else the file name
    representation: str  # "Access" or "Preservation": recorded, so a master's captions never pass for an access file's
    content_object: str
    closed: bool = False   # its content object's own tag is not public: describe's reviewer is told

    @property
    def name(self) -> str:
        return self.bitstream.filename or "?"


def kind_of(filename: str, generation) -> tuple[str, bool]:
    """(extension that decides, is it audio or video) from the format Preservica identified, else the name."""
    ext = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    puids = [f.get("PUID") for f in getattr(generation, "formats", None) or [] if isinstance(f, dict)]
    known = next((PUIDS[p] for p in puids if p in PUIDS), None)
    group = (getattr(generation, "format_group", None) or "").strip().lower()
    kind = known or ext
    return kind, bool(known) or group in AV_GROUPS or kind in SUPPORTED or kind in OTHER_AV
