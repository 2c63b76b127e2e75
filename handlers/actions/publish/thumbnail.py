"""`<ref>/thumbnail`: Preservica's own only where it can show nothing unpublished, else one made from a file
this run publishes. A helper of the publish action.

Which file Preservica renders an asset's thumbnail from is not documented (inferred: any file of any of its
representations, or an image someone set, pyPreservica entityAPI.py add_thumbnail). So Preservica's is
published only while the asset has one representation, the Access one publish reads, with nothing in it
withheld. Otherwise the thumbnail is scaled down from the first published image, which shows nothing that is
not public already, or there is none (the manifest then names that image, iiif.manifest). No Preservica request
is added: whether there are other representations comes from the list publish reads anyway (source.access_files).
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: imported where used (cold start)
    from ...core import iiif, media

NAME = "thumbnail"
SIDE = 400                        # longest side of a made thumbnail, pixels
MAX_PIXELS = 40_000_000           # most pixels decoded to make one (~160 MB as RGBA); a larger image is not used
MAX_SOURCE = 64 * 1024 * 1024     # most bytes of a published image read to make one
MADE_FROM = "thumbnail_of"        # blob metadata of a made thumbnail: the file it shows (and `fixity`)


def preservica_may(alone: bool, withheld: set[str]) -> bool:
    """Whether Preservica's thumbnail may be public: the Access representation is the asset's only one and
    nothing in it is withheld (a closed master, a second Access copy: it may be rendered from either)."""
    return alone and not withheld


def stale(store, ref: str, may: bool, published: dict[str, str] | None) -> bool:
    """Whether `<ref>/thumbnail` must go before anything is copied: Preservica's (anything not made here, an
    earlier version's too) while it may not be public, or one made from a file not published now with the same
    fixity. `published`: blob name -> fixity of what this run publishes; None: the public files stay as they
    are (an asset refused for its size)."""
    props = store.properties(f"{ref}/{NAME}")
    if props is None:
        return False
    if MADE_FROM not in (props.metadata or {}):
        return not may
    return published is not None and not _same(props.metadata, published)


def _same(metadata: dict, published: dict[str, str]) -> bool:
    fixity = metadata.get("fixity", "")
    return bool(fixity) and published.get(metadata.get(MADE_FROM, "")) == fixity


def made(store, ref: str, files: list[iiif.File], published: dict[str, str]) -> iiif.File | None:
    """The thumbnail scaled from the first published image that can be decoded within MAX_PIXELS, kept when it
    was made from that file with the same fixity; None when there is none (or it cannot be read)."""
    from ...core import iiif, media
    source = next((f for f in files if f.media.kind == "Image" and f.media.paintable and _fits(f.media)), None)
    if source is None:
        return None
    name, meta = f"{ref}/{NAME}", {MADE_FROM: source.name, "fixity": published.get(source.name, "")}
    props = store.properties(name)
    if props is not None and _same(props.metadata or {}, {source.name: meta["fixity"]}):   # never without fixity
        md = props.metadata
        try:
            return iiif.File(NAME, media.Media(props.content_settings.content_type, "Image", int(md["width"]),
                                               int(md["height"])), NAME)
        except (KeyError, ValueError, TypeError):
            pass   # made again below
    data = store.read_at_most(f"{ref}/{source.name}", MAX_SOURCE)
    small = scaled(data) if data else None
    if small is None:
        return None
    found = media.describe(small)
    store.upload(name, small, found.content_type, {**meta, "width": str(found.width), "height": str(found.height)})
    return iiif.File(NAME, found, NAME)


def _fits(m: media.Media) -> bool:
    scale = 64 if m.content_type == "image/jpeg" else 1   # draft() decodes a JPEG at down to 1/8 of each side
    return (m.width or 0) * (m.height or 0) <= MAX_PIXELS * scale


def scaled(data: bytes) -> bytes | None:
    """A JPEG of the image, its longest side at most SIDE, with no metadata (no EXIF, ICC, comments): pixels
    only. None when it cannot be decoded, or would decode to more than MAX_PIXELS (checked from its header,
    before any pixel is decoded: a small file may declare a huge image)."""
    from PIL import Image, ImageOps
    try:
        with Image.open(io.BytesIO(data)) as img:   # lazy: the header only
            img.draft("RGB", (SIDE, SIDE))             # a JPEG is decoded at 1/2, 1/4 or 1/8 scale
            if img.width * img.height > MAX_PIXELS:
                return None
            img.thumbnail((SIDE, SIDE))
            shown = ImageOps.exif_transpose(img).convert("RGB")   # as a browser shows the original
    except Exception:  # truncated, unknown or hostile: Pillow raises several kinds
        return None
    clean = Image.new("RGB", shown.size)   # a new image carries none of the original's `info`
    clean.paste(shown)
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=85)
    return out.getvalue()
