"""An asset's files in Preservica: representations -> content objects -> generations -> bitstreams, read
through the process's client (preservica.py) with bounded reads."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyPreservica import EntityAPI

from ..core.errors import TooMany
from .preservica_http import get_xml


@dataclass(frozen=True)
class File:
    """One bitstream of an asset, with where it sits: representation type and name, content object, generation,
    and the content object's own security tag (it need not be the asset's: see `files`)."""
    rep_type: str
    rep_name: str
    content_object: str
    generation: Any
    bitstream: Any
    security_tag: str | None = None


def content_refs(api: EntityAPI, representation) -> list[str]:
    """The content object references a representation lists, UUIDs only (each goes into a URL and a blob
    name), from one bounded read: pyPreservica's content_objects() reads every object before one can count."""
    from ..core.envelope import is_ref
    root = get_xml(api, representation.url)   # on PRESERVICA_SERVER only; 404 -> NotFound
    refs = [(e.text or "").strip() for e in root.iter(f"{{{api.xip_ns}}}ContentObject")]
    return [r.lower() for r in refs if is_ref(r)]


def files(api: EntityAPI, asset, types: tuple[str, ...], first_only: bool = False, active_only: bool = True,
          most: int | None = None, others: list | None = None) -> Iterator[File]:
    """The asset's bitstreams in the representations of `types` ("Access", "Preservation"), those types in
    that order, each type's representations by URL; only the first representation when `first_only`; only
    active generations when `active_only`. More than `most` content objects in a representation is
    TooMany, raised from its list, before any of them is read. `others`, when given, receives the asset's
    representations this walk does not read (other types; with `first_only`, the later ones), from the same
    list, before anything is yielded or raised."""
    every = api.representations(asset)
    reps = sorted((r for r in every if r.rep_type.value in types), key=lambda r: (types.index(r.rep_type.value), r.url))
    read = reps[:1] if first_only else reps
    if others is not None:
        others.extend(r for r in every if r not in read)
    for rep in read:
        refs = content_refs(api, rep)
        if most is not None and len(refs) > most:
            raise TooMany(len(refs), most)
        for ref in refs:
            # A content object carries its own tag: pyPreservica entityAPI.py content_object() builds
            # ContentObject(..., entity['security_tag'], ...) from the CO's <xip:SecurityTag>, read here anyway for
            # its generations. It may differ from the asset's: entityAPI.py security_tag_sync()/_async() change a
            # tag with `includeDescendants=false`, so an asset's new tag need not reach its content objects (inferred).
            co = api.content_object(ref)
            for generation in api.generations(co):
                if generation.active or not active_only:
                    for bitstream in generation.bitstreams:
                        yield File(rep.rep_type.value, rep.name or "", ref, generation, bitstream,
                                   co.security_tag)
