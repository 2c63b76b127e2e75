"""Which thumbnail goes public. Preservica renders its own from a file it does not name (inferred), so it is
published only where it can show nothing unpublished: the asset's one representation is the Access one publish
reads, with nothing in it closed. Otherwise publish scales down the first image it publishes, or there is none.
Real pyPreservica against the Preservica double (an asset may have several representations of a type), real
Blob clients on Azurite. Uses test_publish's fixtures."""
from __future__ import annotations

import io
import json
import struct
import zlib

from PIL import Image, ImageFile

from handlers.actions import publish
from handlers.clients import journal
from hookops.doubles.preservica import make_png
from tests.support.jobs import run_one
from tests.support.publish import ASSET, PRESERVICA_THUMBNAIL, SHEET_1, base, blobs, container, dispatched, shows

PRESERVICA = make_png(40, 30, rgb=PRESERVICA_THUMBNAIL)   # what Preservica serves: from which file, not documented
OPEN, CLOSED, OTHER = (10, 120, 40), (250, 250, 0), (90, 0, 160)
THUMB, MANIFEST = f"{ASSET}/thumbnail", f"{ASSET}/manifest.json"


def asset(pres, *bitstreams) -> None:
    pres.add_asset(ASSET, "Redacted letter", thumbnail=PRESERVICA, bitstreams=list(bitstreams))


def close_master(pres) -> None:
    pres.set_security_tag(pres.source_of(ASSET, "Preservation", 0)[0], "closed")


def preservicas_anywhere(env) -> bool:
    return any(PRESERVICA in data for data in blobs(env).values())


def entry_matches_the_blob(env) -> tuple[int, int]:
    """The manifest's thumbnail is the stored `<ref>/thumbnail`, with its real size and type: that size."""
    got = blobs(env, f"{ASSET}/")
    [entry] = json.loads(got[MANIFEST])["thumbnail"]
    with Image.open(io.BytesIO(got[THUMB])) as img:
        size, fmt = img.size, Image.MIME[img.format]
    assert (entry["id"], entry["format"], (entry["width"], entry["height"])) == (f"{base(env)}/{THUMB}", fmt, size)
    return size


def declared_png(width: int, height: int) -> bytes:
    """A small PNG whose header declares width x height (a decompression bomb's shape): one row of data."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(3 * width))) + chunk(b"IEND", b""))


def test_an_open_asset_with_a_closed_master_shows_its_published_image_not_preservicas_thumbnail(env, pres):
    """The redaction pattern: a closed master, an open redacted access copy. Preservica's thumbnail may be
    rendered from the master; the one published is scaled from the access copy, with no Preservica request."""
    asset(pres, ("redacted.png", make_png(900, 600, rgb=OPEN), "Access"),
          ("master.png", make_png(900, 600, rgb=CLOSED), "Preservation"))
    close_master(pres)
    before = len(pres.requests)
    assert run_one("publish", dispatched(ASSET)).state == journal.DONE
    asked = [p for _, p in pres.requests[before:]]
    assert not preservicas_anywhere(env) and shows(blobs(env)[THUMB], OPEN)
    assert entry_matches_the_blob(env) == (400, 267)   # bounded: longest side 400
    assert not any("/api/content/thumbnail" in p for p in asked)   # not even read
    assert sum(p.endswith("/representations") for p in asked) == 1   # the list publish reads anyway
    etag = container(env).get_blob_client(THUMB).get_blob_properties().etag
    assert run_one("publish", dispatched(ASSET, "MOVED")).reason == "unchanged"
    assert container(env).get_blob_client(THUMB).get_blob_properties().etag == etag   # kept, not made again


def test_an_asset_with_only_its_access_representation_keeps_preservicas_thumbnail(env, pres):
    asset(pres, ("letter.png", make_png(900, 600, rgb=OPEN), "Access"))
    assert run_one("publish", dispatched(ASSET)).state == journal.DONE
    assert blobs(env)[THUMB] == PRESERVICA and entry_matches_the_blob(env) == (40, 30)


def test_a_second_access_representation_means_no_preservica_thumbnail(env, pres):
    """Publish reads the first Access representation only; Preservica may render from the second. The thumbnail
    is made from the first's image, as pixels only (no EXIF, no ICC profile)."""
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "donor's private note"   # ImageDescription
    Image.new("RGB", (1200, 800), OPEN).save(photo, "JPEG", exif=exif, icc_profile=b"\0" * 128)
    asset(pres, ("first.jpg", photo.getvalue(), "Access", 1), ("second.png", make_png(50, 50, rgb=OTHER), "Access", 2))
    assert run_one("publish", dispatched(ASSET)).state == journal.DONE
    got = blobs(env)
    assert not preservicas_anywhere(env) and shows(got[THUMB], OPEN)
    assert make_png(50, 50, rgb=OTHER) not in got.values()   # the second representation is not published
    assert entry_matches_the_blob(env) == (400, 267)
    with Image.open(io.BytesIO(got[THUMB])) as img:
        assert not img.getexif() and "icc_profile" not in img.info and b"private note" not in got[THUMB]


def test_a_master_added_and_closed_takes_preservicas_thumbnail_down_before_any_file_is_copied(env, pres,
                                                                                            monkeypatch):
    asset(pres, ("letter.png", make_png(900, 600, rgb=OPEN), "Access"))
    run_one("publish", dispatched(ASSET))
    assert blobs(env)[THUMB] == PRESERVICA
    asset(pres, ("letter.png", make_png(900, 600, rgb=OPEN), "Access"),   # the same access file, and now a master
          ("master.png", make_png(900, 600, rgb=CLOSED), "Preservation"))
    close_master(pres)
    there, real = [], publish._copy

    def copy(*args):
        there.append(PRESERVICA in blobs(env).values())
        return real(*args)
    monkeypatch.setattr(publish, "_copy", copy)
    assert run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR")).state == journal.DONE
    assert there == [False]   # gone before the file (already public) was looked at
    assert not preservicas_anywhere(env) and shows(blobs(env)[THUMB], OPEN) and entry_matches_the_blob(env)


def test_preservicas_thumbnail_an_earlier_version_published_is_replaced(env, pres):
    """The fixture asset has a preservation master: the version before this rule published Preservica's
    thumbnail for it. The next run replaces it with one made from its first image."""
    run_one("publish", dispatched(ASSET))
    container(env).upload_blob(THUMB, PRESERVICA, overwrite=True)   # as that version left it: no metadata
    assert run_one("publish", dispatched(ASSET, "MOVED")).state == journal.DONE
    assert not preservicas_anywhere(env) and shows(blobs(env)[THUMB], SHEET_1) and entry_matches_the_blob(env)


def test_an_image_too_large_to_decode_is_passed_over_and_never_decoded(env, pres, monkeypatch):
    """A small file may declare a huge image: 8000 x 8000 (192 MB decoded) is over MAX_PIXELS (yet under
    Pillow's own bound). It is published as a file but never decoded; the thumbnail comes from the next image."""
    decoded, real = [], ImageFile.ImageFile.load

    def load(self):
        decoded.append(self.size)
        return real(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    asset(pres, ("huge.png", declared_png(8000, 8000), "Access"), ("small.png", make_png(30, 20, rgb=OPEN), "Access"),
          ("master.tif", 4096, "Preservation"))
    assert run_one("publish", dispatched(ASSET)).state == journal.DONE
    assert shows(blobs(env)[THUMB], OPEN) and entry_matches_the_blob(env) == (30, 20)   # never enlarged
    from handlers.actions.publish import thumbnail
    assert decoded and all(w * h <= thumbnail.MAX_PIXELS for w, h in decoded), decoded
    decoded.clear()
    assert thumbnail.scaled(declared_png(8000, 8000)) is None and decoded == []   # refused from its header


def test_an_asset_refused_for_its_size_keeps_its_files_but_not_preservicas_thumbnail_once_a_master_appears(
        env, pres, monkeypatch):
    """A skipped asset keeps its earlier copy (docs/actions.md), but not a Preservica thumbnail the rule no
    longer allows: the listing that refused it said the asset has another representation now."""
    asset(pres, ("letter.png", make_png(900, 600, rgb=OPEN), "Access"))
    run_one("publish", dispatched(ASSET))
    assert blobs(env)[THUMB] == PRESERVICA
    asset(pres, ("letter.png", make_png(900, 600, rgb=OPEN), "Access"),
          ("master.png", make_png(900, 600, rgb=CLOSED), "Preservation"))
    close_master(pres)
    monkeypatch.setenv("PUBLISH_MAX_BYTES", "100")
    outcome = run_one("publish", dispatched(ASSET, "CHANGED_SECURITY_DESCRIPTOR"))
    assert outcome.state == journal.SKIPPED and "PUBLISH_MAX_BYTES" in outcome.reason
    got = blobs(env)
    assert MANIFEST in got and not preservicas_anywhere(env)
