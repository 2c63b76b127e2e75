"""A folder's descendants, walked a bounded number of pages at a time with a cursor that can be resumed
elsewhere (publish's folder re-check queues it on; backfill --folder walks it to the end).

The cursor is a stack of [folder ref, start] (depth first): each step pops one, reads that one page of its
children with pyPreservica's `children` (entityAPI.py: `GET /api/entity/structural-objects/{ref}/children`
with `start` and `max`, `Child` elements with `@ref` and `@type`, a `Next` element while more follow), pushes
the rest of that folder and the sub-folders found on the page. A resumed page is asked for by `start` (the
parameter pyPreservica sends on the first page), never by a `Next` URL kept in a message: pyPreservica sends
its access token to whatever URL it is given.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..core.envelope import is_ref
from ..core.errors import NotFound
from .preservica_http import classify

PAGE = 50                # children per request
MAX_STACK = 250          # folders waiting in a cursor (it rides in one event: 16 KiB, envelope.MAX_EVENT_BYTES)
MAX_START = 10_000_000   # a larger start is not a resumed walk of a real folder


@dataclass
class Step:
    assets: list[str]        # asset refs found by this step, lower case
    cursor: list[list]       # what is left ([] when the walk is done)
    requests: int
    dropped: int = 0         # sub-folders not walked: the cursor was full


def start(folder: str) -> list[list]:
    return [[folder.lower(), 0]]


def cursor_from(value: object) -> list[list] | None:
    """A cursor carried by a message, if every entry is a [UUID, start]; else None."""
    if not isinstance(value, list) or not value or len(value) > MAX_STACK:
        return None
    out = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and is_ref(entry[0])
                and type(entry[1]) is int and 0 <= entry[1] <= MAX_START):
            return None
        out.append([entry[0].lower(), entry[1]])
    return out


def _page(api, ref: str, at: int):
    if at == 0:
        return api.children(ref, maximum=PAGE)
    # pyPreservica `children` builds the first page's URL the same way, with start 0 (entityAPI.py)
    return api.children(ref, maximum=PAGE, next_page=f"{api.protocol}://{api.server}/api/entity/structural-objects/"
                                                     f"{ref}/children?start={at}&max={PAGE}")


def step(api, cursor: list[list], pages: int, most: int | None = None) -> Step:
    """At most `pages` children requests from `cursor`, which holds at most `most` (MAX_STACK) folders."""
    most = MAX_STACK if most is None else most
    from pyPreservica import EntityType
    stack, found, used, dropped = [list(e) for e in cursor], [], 0, 0
    while stack and used < pages:
        ref, at = stack.pop()
        used += 1
        try:
            page = _page(api, ref, at)
        except Exception as exc:   # a 404 (the folder went meanwhile): nothing under it to walk
            if isinstance(classify(exc), NotFound):
                continue
            raise
        if page.has_more and page.results:   # fewer than `max` may come (a server cap: inferred): go on from there
            stack.append([ref, at + len(page.results)])
        kids = sorted((((e.reference or "").lower(), e.entity_type) for e in page.results),
                      key=lambda kid: kid[0])   # a set in pyPreservica: in one order each time
        for kid, kind in kids:
            if not is_ref(kid):
                continue
            if kind == EntityType.FOLDER:
                if len(stack) < most:
                    stack.append([kid, 0])
                else:
                    dropped += 1
            elif kind == EntityType.ASSET:
                found.append(kid)
    return Step(found, stack, used, dropped)


def walk(api, folder: str) -> Iterator[str]:
    """Every asset under `folder`, any depth (backfill --folder): in memory, so no bound on the folders waiting."""
    cursor = start(folder)
    while cursor:
        done = step(api, cursor, 1, most=10**9)
        cursor = done.cursor
        yield from done.assets
