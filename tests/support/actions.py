"""The actions tests' world: an asset with files, identifiers and a thumbnail in the Preservica double.
Its fixtures (isolated, pres, env, jobs) are in tests/actions/conftest.py."""
from __future__ import annotations

from hookops.doubles.preservica import make_png

USER, PASSWORD, TENANT = "hook-user", "correct horse battery staple", "ARCHIVE"
ASSET, OTHER, FOLDER = ("7fdea7e0-1e72-4fb1-aadb-d7f9ee6ed8c2", "1c0ffee0-0000-4000-8000-000000000002",
                        "f0f0f0f0-0000-4000-8000-000000000003")
PNG = make_png(rgb=(10, 120, 200))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"
SCHEMA = "urn:example:catalogue"
RECORD = "<record xmlns='urn:example:catalogue'><id>HM/1887/12</id><title>{}</title></record>"
