"""clients.preservica.files: the one walk from an asset to its bitstreams (publish, transcribe and custody
read files through it), with real pyPreservica against the Preservica double."""
from __future__ import annotations

import pytest
from pyPreservica.common import EntityType

from handlers.clients import preservica
from handlers.clients.secrets import default as secrets
from handlers.core.errors import TooMany
from tests.support.actions import ASSET

MORE = "0b5d7a52-2c89-4f67-8d8c-2a1e0c6f9d11"


def walk(**kwargs) -> list[preservica.File]:
    return preservica.call(secrets(), lambda api: list(preservica.files(api, api.entity(EntityType.ASSET, ASSET),
                                                                        **kwargs)))


def test_files_come_in_the_order_of_the_types_asked(env, pres):
    access_first = walk(types=("Access", "Preservation"))
    assert [(f.rep_type, f.bitstream.filename) for f in access_first] == [("Access", "letter.pdf"),
                                                                          ("Preservation", "letter-p1.tif")]
    assert [f.rep_type for f in walk(types=("Preservation",))] == ["Preservation"]
    first = access_first[0]
    assert first.content_object == pres.source_of(ASSET, "Access")[0] and first.bitstream.length == 734


def test_a_representation_listing_more_objects_than_the_bound_is_refused_before_reading_them(env, pres):
    pres.add_asset(MORE, "Many", bitstreams=[(f"p{i}.tif", 10, "Access") for i in range(5)])
    with pytest.raises(TooMany, match="5 content objects in one representation, more than 3"):
        preservica.call(secrets(), lambda api: list(preservica.files(api, api.entity(EntityType.ASSET, MORE),
                                                                     types=("Access",), most=3)))
    assert not [path for _, path in pres.requests if "/content-objects/" in path]   # none of them was read


def test_the_representations_not_read_are_reported_from_the_same_list(env, pres):
    """publish reads the first Access representation only; what else the asset has (a preservation master, a
    second Access representation) comes from the list it read anyway, never another request."""
    pres.add_asset(MORE, "Redacted", bitstreams=[("a.png", 10, "Access", 1), ("b.png", 10, "Access", 2),
                                                 ("master.tif", 10, "Preservation")])
    others: list = []
    before = len(pres.requests)
    got = preservica.call(secrets(), lambda api: list(preservica.files(
        api, api.entity(EntityType.ASSET, MORE), ("Access",), first_only=True, others=others)))
    assert [f.bitstream.filename for f in got] == ["a.png"]
    assert sorted((r.rep_type.value, r.name) for r in others) == [("Access", "Access-2"), ("Preservation", "Preservation-1")]
    assert sum(p.endswith("/representations") for _, p in pres.requests[before:]) == 1
