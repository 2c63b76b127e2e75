"""What `ocr` keeps of Document Intelligence's read results: the text, its provenance and the metadata
fragment. Pure, no I/O.

The analyzeResult fields read (apiVersion, modelId, content, pages[].words[].confidence) are those of
azure-rest-api-specs specification/ai/DocumentIntelligence/models.tsp (AnalyzeResult, DocumentPage,
DocumentWord) and examples/2025-09-01/GetAnalyzeDocumentResult.json.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .transcript import MAX_FRAGMENT_CHARS, clean

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff\u2028\u2029]")
SERVICE = "Azure AI Document Intelligence"

# What the read model takes (learn.microsoft.com azure/ai-services/document-intelligence/prebuilt/read,
# "Input requirements": PDF, JPEG/JPG, PNG, BMP, TIFF, HEIF), as core.media.sniff names them from the
# bytes; BMP and HEIF are not sniffed there, so they are skipped as unsupported here.
READABLE = frozenset({"application/pdf", "image/jpeg", "image/png", "image/tiff"})
EXTENSIONS = {"pdf": "application/pdf", "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
              "tif": "image/tiff", "tiff": "image/tiff"}
OTHER_IMAGES = {"jp2", "jpx", "j2k", "gif", "bmp", "webp", "heic", "heif", "svg", "psd", "dng", "cr2", "nef"}
# PRONOM identifiers, where Preservica characterised the file, of the formats above (from PRONOM's
# registry, nationalarchives.gov.uk/PRONOM; the bytes are sniffed again before anything is sent).
PUIDS = {"fmt/14": "pdf", "fmt/15": "pdf", "fmt/16": "pdf", "fmt/17": "pdf", "fmt/18": "pdf", "fmt/19": "pdf",
         "fmt/20": "pdf", "fmt/276": "pdf", "fmt/95": "pdf", "fmt/354": "pdf", "fmt/476": "pdf", "fmt/477": "pdf",
         "fmt/478": "pdf", "fmt/479": "pdf", "fmt/480": "pdf", "fmt/481": "pdf", "fmt/1129": "pdf",
         "fmt/42": "jpg", "fmt/43": "jpg", "fmt/44": "jpg", "fmt/41": "jpg", "fmt/645": "jpg",
         "fmt/11": "png", "fmt/12": "png", "fmt/13": "png", "fmt/353": "tif",
         "x-fmt/392": "jp2", "fmt/3": "gif", "fmt/4": "gif", "fmt/116": "bmp", "fmt/119": "bmp"}
IMAGE_GROUPS = {"image", "still image", "document", "text"}


def kind_of(filename: str, puids: list[str], group: str) -> tuple[str, bool]:
    """(extension that decides, is it an image or document) from the format Preservica identified, else the name."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    known = next((PUIDS[p] for p in puids if p in PUIDS), None)
    kind = known or ext
    return kind, bool(known) or group.strip().lower() in IMAGE_GROUPS or kind in EXTENSIONS or kind in OTHER_IMAGES


@dataclass
class Reading:
    """The read results of one asset's files, joined: one text, one provenance."""
    texts: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    pages: int = 0
    confidences: list[float] = field(default_factory=list)
    model: str = ""
    api_version: str = ""

    def add(self, source: str, result: dict[str, Any]) -> int:
        """Add one file's analyzeResult; the pages it had."""
        pages = [p for p in result.get("pages") or [] if isinstance(p, dict)]
        content = result.get("content")
        self.texts.append(_CONTROL.sub("", content) if isinstance(content, str) else "")
        self.sources.append(clean(source)[:200])
        self.pages += len(pages)
        for page in pages:
            for word in page.get("words") or []:
                c = word.get("confidence") if isinstance(word, dict) else None
                if isinstance(c, (int, float)) and 0 <= c <= 1:
                    self.confidences.append(float(c))
        self.model = _token(result.get("modelId")) or self.model
        self.api_version = _token(result.get("apiVersion")) or self.api_version
        return len(pages)

    @property
    def text(self) -> str:
        return "\n\n".join(t.strip() for t in self.texts if t.strip())

    @property
    def mean_confidence(self) -> float | None:
        return round(sum(self.confidences) / len(self.confidences), 4) if self.confidences else None

    def provenance(self, date: str, truncated: bool) -> dict[str, str]:
        """Flat, ASCII-safe facts: the fragment's elements and the text blob's metadata."""
        mean = self.mean_confidence
        return {"service": SERVICE, "model": self.model, "apiVersion": self.api_version, "date": date,
                "pages": str(self.pages), "meanConfidence": "" if mean is None else f"{mean:.4f}",
                "truncated": "true" if truncated else "false"}


def _token(value: object) -> str:
    return value if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9._:-]{1,80}", value) else ""


def fragment(schema: str, reading: Reading, provenance: dict[str, str]) -> str:
    """<ocr xmlns=SCHEMA> with the provenance, each source file's name, and the text (cut at
    MAX_FRAGMENT_CHARS, with textTruncated; the whole text is in Blob). ElementTree escapes it all."""
    import xml.etree.ElementTree as ET  # here: the action module is imported at cold start
    root = ET.Element(f"{{{schema}}}ocr")
    for name, value in provenance.items():
        ET.SubElement(root, f"{{{schema}}}{name}").text = value
    for source in reading.sources:
        ET.SubElement(root, f"{{{schema}}}source").text = source
    text = reading.text
    if len(text) > MAX_FRAGMENT_CHARS:
        ET.SubElement(root, f"{{{schema}}}textTruncated").text = "true"
    ET.SubElement(root, f"{{{schema}}}text").text = text[:MAX_FRAGMENT_CHARS]
    return ET.tostring(root, encoding="unicode", default_namespace=schema)
