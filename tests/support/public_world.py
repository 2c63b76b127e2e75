"""What the stateful "public = open now" tests share (tests/publish/test_public_invariant*.py): Preservica's
clock and how it logs each change, the watch on every public write, and a change that lands during a publish."""
from __future__ import annotations

import datetime as dt

TICK = dt.timedelta(minutes=2)      # simulated time between two changes
DELAY = dt.timedelta(minutes=60)    # RECONCILE_DELAY_MINUTES's default
# How Preservica logs each change (RECONCILE_EVENT_TYPES's default maps Modified to CHANGED_SECURITY_DESCRIPTOR,
# Ingest to FULL_TEXT_INDEXED). Inferred: that a security, visibility or access-file change is logged as
# `Modified` (public fixtures show `Modified` for AddIdentifier), an access file's under its content object;
# a deletion is listed by updated-since.
SECURITY, VISIBILITY, INDEXED = "CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY", "FULL_TEXT_INDEXED"


def new_world() -> dict:
    """violations: writes after a withdrawal; done: assets whose withdrawal finished; during: changes to make
    inside the next publish; written: every public blob name written."""
    return {"violations": [], "done": set(), "during": [], "written": set()}


def access_files(pres, ref: str) -> list:
    """The asset's access content objects in Preservica now (none: the asset is gone)."""
    e = pres._entities.get(ref)
    return [pres._entities[c] for c in e.content_objects if pres._entities[c].rep_type == "Access"] if e else []


def public_now(pres, ref: str) -> bool:
    """The asset is open and visible, and not every one of its access files is closed (then nothing is shown)."""
    e, access = pres._entities.get(ref), access_files(pres, ref)
    return e is not None and e.security_tag == "open" and not e.hidden \
        and (not access or any(c.security_tag == "open" for c in access))


def preservica_may(pres, ref: str) -> bool:
    """Preservica's thumbnail may be public: the asset's one representation is the first Access one (the one
    publish reads) and none of its files is closed; otherwise it may be rendered from a file that is not public."""
    e = pres._entities.get(ref)
    reps = {(pres._entities[c].rep_type, pres._entities[c].rep_index) for c in e.content_objects} if e else set()
    return reps == {("Access", 1)} and not closed_files(pres, ref)


def shown_files(pres, ref: str) -> list:
    """The images a thumbnail made by publish may show: the asset's published access images (test PNGs of one
    colour each), in order; while it is closed, any (the withdrawal's to remove, as closed_files says)."""
    closed = closed_files(pres, ref)
    return [c for c in access_files(pres, ref) if c.rep_index == 1 and c.ref not in closed
            and (c.content or b"").startswith(b"\x89PNG")]


def thumbnail_wrong(pres, ref: str, data: bytes) -> str | None:
    """Why this `<ref>/thumbnail` may not be public now (None: it may): Preservica's beside another representation
    or a closed file, or a made one that shows none of the images publish may show."""
    from tests.support.publish import colour, shows
    e = pres._entities.get(ref)
    if e is not None and e.thumbnail is not None and data == e.thumbnail:
        return None if preservica_may(pres, ref) else "Preservica's thumbnail beside another representation or a closed file"
    if any(shows(data, colour(c.content)) for c in shown_files(pres, ref)):
        return None
    return "a thumbnail that shows no published image"


def closed_files(pres, ref: str) -> list[str]:
    """The content objects of an open asset's access files that are not open: their files may never be written.
    (A closed asset's are the withdrawal's to remove: a publish in flight may still be writing when it closes.)"""
    e = pres._entities.get(ref)
    return [c.ref for c in access_files(pres, ref) if c.security_tag != "open"] if e and e.security_tag == "open" else []


def watch(monkeypatch, pres, world: dict) -> None:
    """Every write to the public container is recorded, and one under an asset whose withdrawal finished while it
    is not public is a violation; world["during"] runs inside a publish, after its files, before its manifest."""
    from handlers.actions import publish
    from handlers.clients import public_store

    def watched(real):
        def write(self, name, *args, **kwargs):
            ref = name.split("/")[0]
            world["written"].add(name)
            if ref in world["done"] and not public_now(pres, ref):
                world["violations"].append(f"{name} written after {ref} was withdrawn")
            closed = closed_files(pres, ref)
            if any(f"{ref}/files/{co}-" in name for co in closed):
                world["violations"].append(f"{name} written while a content object of {ref} was closed")
            if name == f"{ref}/thumbnail" and isinstance(args[0], bytes) and (why := thumbnail_wrong(pres, ref, args[0])):
                world["violations"].append(f"{name} written: {why}")
            return real(self, name, *args, **kwargs)
        return write
    for name in ("upload", "set_metadata"):
        monkeypatch.setattr(public_store.PublicStore, name, watched(getattr(public_store.PublicStore, name)))
    real_thumbnail = publish._thumbnail

    def thumbnail(*args):
        while world["during"]:
            world["during"].pop(0)()
        return real_thumbnail(*args)
    monkeypatch.setattr(publish, "_thumbnail", thumbnail)


def logged(pres, world: dict, ref: str, when: dt.datetime, event_type: str | None, about: str = "") -> None:
    """A change to asset `ref` at `when`, in Preservica's event log as `event_type` (None: a deletion, which
    updated-since lists), naming `about` when given (one of its content objects: inferred, see SECURITY)."""
    if event_type:
        pres.record_event(event_type, [about or ref], when)
    if public_now(pres, ref):
        world["done"].discard(ref)


def put_backs(monkeypatch) -> list[str]:
    """The row keys of the events the runner puts back to wait for another run's lease (pipeline/waits.busy), as
    they happen: the models clear it before a run and take a put-back for a retry to come."""
    from handlers.pipeline import waits
    seen: list[str] = []
    real = waits.busy

    def busy(*args):
        held = real(*args)
        seen.extend(held)
        return held
    monkeypatch.setattr(waits, "busy", busy)
    return seen
