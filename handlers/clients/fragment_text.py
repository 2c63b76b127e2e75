"""Where `ocr` and `transcribe` keep a file's text out of an open asset's metadata fragment (core/withheld.py).

They read files for staff, closed ones too (an access file whose content object's own tag is closed, the
preservation file they fall back to), and keep the text in a private blob and in a fragment on the asset. While
the asset is public, Preservica's public access may index that fragment (inferred), so a text read from a file
that is not public goes into the private blob only: decided at the write, from the asset read for the write.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import public_store


@dataclass(frozen=True)
class Kept:
    """Where an action keeps an asset's text: the private container, the blobs' suffixes (the first holds the
    record read back), and the fragment: its schema, its element and the elements that carry the text or a
    file's name."""
    container: str
    suffixes: tuple[str, ...]
    schema: str
    element: str
    drop: tuple[str, ...]


def write(storage, secrets, ref: str, kept: Kept, xml: str, closed: bool) -> tuple[str, bool]:
    """Replace the fragment or add one (fragments.write: under its lease, the asset read now): without the text
    when a file it was read from is not public (`closed`) and the asset is, by its tag and visibility as read for
    the write, not at the event. (added or replaced, withheld)."""
    from ..core import withheld
    from . import fragments
    bare = [False]

    def shaped(asset) -> str:
        bare[0] = closed and public_store.is_public(asset.security_tag, asset.hidden)
        return withheld.bare_xml(xml, kept.schema, kept.element, kept.drop) if bare[0] else xml
    how = fragments.write(storage.blob_service(), secrets, ref, kept.schema, shaped)
    return how, bare[0]
