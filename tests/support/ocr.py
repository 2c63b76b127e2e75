"""The ocr tests' world: a scanned letter (TIFF master, PNG access copy) and a two-page PDF, made here with
Pillow, and the one action message a test runs. Its fixtures (di, pres, env) are in tests/ocr/conftest.py."""
from __future__ import annotations

import io

from tests.support.jobs import dispatched

USER, PASSWORD, TENANT = "hook-user", "pres-password", "ARCHIVE"
KEY = "docintel-key-value-0123456789abcdef"
SCAN, PDF_ASSET, FOLDER = ("0d9d4a4e-0000-4000-8000-00000000d001", "0d9d4a4e-0000-4000-8000-00000000d002",
                           "0d9d4a4e-0000-4000-8000-00000000d004")
SCHEMA = "urn:example:ocr"


def _image(fmt: str, pages: int = 1) -> bytes:
    from PIL import Image
    images = [Image.new("L", (120, 160), 255 - 40 * i) for i in range(pages)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=pages > 1, append_images=images[1:])
    return out.getvalue()


TIFF = _image("TIFF")
PDF = _image("PDF", pages=2)


def job_for(ref: str, entity_type: str = "IO", trigger: str = "FULL_TEXT_INDEXED") -> bytes:
    """Dispatch a delivery routed to ocr; the one action message, as the queue function gets it."""
    return dispatched("ocr", ref, entity_type, trigger)
