"""What the stateful "public = open now" tests share (tests/publish/test_public_invariant*.py): Preservica's
clock and how it logs each change, the watch on every public write, and a change that lands during a publish."""
from __future__ import annotations

import datetime as dt

TICK = dt.timedelta(minutes=2)      # simulated time between two changes
DELAY = dt.timedelta(minutes=60)    # RECONCILE_DELAY_MINUTES's default
# How Preservica logs each change (RECONCILE_EVENT_TYPES's default maps Modified to CHANGED_SECURITY_DESCRIPTOR,
# Ingest to FULL_TEXT_INDEXED). Inferred: that a security, visibility or access-file change is logged as
# `Modified` (public fixtures show `Modified` for AddIdentifier); a deletion is listed by updated-since.
SECURITY, VISIBILITY, INDEXED = "CHANGED_SECURITY_DESCRIPTOR", "CHANGE_ASSET_VISIBILITY", "FULL_TEXT_INDEXED"


def new_world() -> dict:
    """violations: writes after a withdrawal; done: assets whose withdrawal finished; during: changes to make
    inside the next publish; written: every public blob name written."""
    return {"violations": [], "done": set(), "during": [], "written": set()}


def public_now(pres, ref: str) -> bool:
    e = pres._entities.get(ref)
    return e is not None and e.security_tag == "open" and not e.hidden


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


def logged(pres, world: dict, ref: str, when: dt.datetime, event_type: str | None) -> None:
    """A change at `when`, in Preservica's event log as `event_type` (None: a deletion, which updated-since lists)."""
    if event_type:
        pres.record_event(event_type, [ref], when)
    if public_now(pres, ref):
        world["done"].discard(ref)
