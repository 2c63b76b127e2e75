"""Issue 19's invariant as a stateful property: whatever the order of archivists' changes, webhooks delivered or
lost, Preservica outages, duplicate and stale messages and sweeps, once things settle the public container
holds exactly the assets that are open and visible now, with their current files; and never, at any step,
does a closed (hidden, deleted) asset gain a public blob after its withdrawal finished.

Real pyPreservica against the Preservica double, real Blob clients against Azurite; publish.converge is what
every path (webhook, retried message, reconciler's late delivery, sweep) runs. Uses test_publish's fixtures.
"""
from __future__ import annotations

import hashlib

from hypothesis import settings as hsettings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from handlers import sweep
from handlers.actions import publish
from handlers.actions.contract import Context
from handlers.clients import preservica, publish_lock, public_store
from hookops.doubles.preservica import make_png
from tests.support.publish import ASSET, AV, blobs, make_wav

REFS = (ASSET, AV)


def _files(ref: str, variant: int) -> list:
    if ref == AV:
        return [("talk.wav", make_wav(1.0 + variant / 2), "Access"), ("master.wav", make_wav(0.5), "Preservation")]
    return [(f"p{i}.png", make_png(10 + variant, 10 + i), "Access") for i in range(1 + variant % 2)]


def test_the_public_container_converges_on_what_preservica_says(env, pres, monkeypatch):
    from urllib3.util import Retry
    # One answer per request (no urllib3 retries with back-off): an outage fails fast, as it does after them.
    monkeypatch.setattr(preservica, "_retry", lambda: Retry(total=0, status_forcelist=[503], raise_on_status=True))
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)   # a run that meets another's lease is retried
    monkeypatch.setenv("PRESERVICA_MAX_RPS", "1000")         # the double needs no protecting
    preservica.forget_client()
    world = {"violations": [], "done": set(), "during": [], "written": set()}

    def public_now(ref: str) -> bool:
        e = pres._entities.get(ref)
        return e is not None and e.security_tag == "open" and not e.hidden

    real_upload, real_meta = public_store.PublicStore.upload, public_store.PublicStore.set_metadata

    def watched(real):
        def write(self, name, *args, **kwargs):
            ref = name.split("/")[0]
            world["written"].add(name)
            if ref in world["done"] and not public_now(ref):
                world["violations"].append(f"{name} written after {ref} was withdrawn")
            return real(self, name, *args, **kwargs)
        return write
    monkeypatch.setattr(public_store.PublicStore, "upload", watched(real_upload))
    monkeypatch.setattr(public_store.PublicStore, "set_metadata", watched(real_meta))
    real_thumbnail = publish._thumbnail

    def thumbnail(*args):   # where a change "during" a publish happens: after the files, before the manifest
        while world["during"]:
            world["during"].pop(0)()
        return real_thumbnail(*args)
    monkeypatch.setattr(publish, "_thumbnail", thumbnail)

    class PublicInvariant(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            pres.clear_failures()
            store = publish.public_store()
            store.delete(b.name for b in store.container.list_blobs())
            world.update(violations=[], done=set(), during=[], written=set())
            self.variant = {}
            self.pending: list[str] = []     # messages that failed and wait for their retry
            self.missed: set[str] = set()    # lost webhooks: the reconciler delivers them later
            self.down = False
            for ref in REFS:
                self.variant[ref] = 0
                pres.add_asset(ref, f"Asset {ref[:4]}", bitstreams=_files(ref, 0))
                self.converge(ref)           # both start published

        # -- delivering ------------------------------------------------------------------------------
        def converge(self, ref: str) -> bool:
            before, world["written"] = world["written"], set()
            try:
                publish.converge(Context(), ref)
            except Exception:   # 503 or another run's lease: the queue retries the message
                self.pending.append(ref)
                left = world["written"] & set(blobs(env, f"{ref}/"))
                if left and not public_now(ref):   # it may be poisoned: nothing it put out may stay
                    world["violations"].append(f"a failed publish left {sorted(left)} public")
                return False
            finally:
                world["written"] |= before
            if not public_now(ref) and not blobs(env, f"{ref}/"):
                world["done"].add(ref)
            return True

        def changed(self, ref: str, delivered: bool) -> None:
            if public_now(ref):
                world["done"].discard(ref)
            if delivered:
                self.converge(ref)
            else:
                self.missed.add(ref)

        # -- what archivists do in Preservica, each with its webhook delivered or lost --------------------
        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def open(self, ref, delivered):
            if ref not in pres._entities:
                pres.add_asset(ref, f"Asset {ref[:4]}", bitstreams=_files(ref, self.variant[ref]))
            pres.set_security_tag(ref, "open")
            pres.set_hidden(ref, False)
            self.changed(ref, delivered)

        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def close(self, ref, delivered):
            if ref in pres._entities:
                pres.set_security_tag(ref, "closed")
                self.changed(ref, delivered)

        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def hide(self, ref, delivered):
            if ref in pres._entities:
                pres.set_hidden(ref, True)
                self.changed(ref, delivered)

        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def delete(self, ref, delivered):
            pres.remove_asset(ref)
            self.changed(ref, delivered)

        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def replace_access_file(self, ref, delivered):
            e = pres._entities.get(ref)
            if e is not None:
                tag, hidden = e.security_tag, e.hidden
                self.variant[ref] += 1
                pres.add_asset(ref, f"Asset {ref[:4]}", security_tag=tag, bitstreams=_files(ref, self.variant[ref]))
                pres.set_hidden(ref, hidden)
                self.changed(ref, delivered)

        @rule(ref=st.sampled_from(REFS), outage=st.booleans())
        def close_during_a_publish(self, ref, outage):
            """Finding 3: a publish sees "open"; meanwhile the asset is closed, its webhook arrives (and meets
            the publish's lease), and perhaps Preservica goes down before the publish re-checks."""
            met = []

            def meanwhile():
                met.append(ref)
                pres.set_security_tag(ref, "closed")
                self.converge(ref)
                if outage:
                    self.preservica_down()
            world["during"].append(meanwhile)
            if not self.converge(ref) and met and blobs(env, f"{ref}/"):   # it may never be retried (poison)
                world["violations"].append(f"a publish that failed after {ref} was closed left it public")
            world["during"].clear()

        @rule(ref=st.sampled_from(REFS))
        def outage_while_a_closing_asset_publishes(self, ref):
            """Finding 3 exactly (as a rule of its own, so that short runs try it often)."""
            self.close_during_a_publish(ref, True)

        # -- the platform --------------------------------------------------------------------------------
        @rule()
        def preservica_down(self):
            self.down = True
            pres.fail_next(100_000, 503)

        @rule()
        def preservica_back(self):
            self.down = False
            pres.clear_failures()

        @rule()
        def retry_a_failed_message(self):
            if self.pending:
                self.converge(self.pending.pop(0))

        @rule()
        def a_failed_message_goes_to_poison(self):
            if self.pending:
                self.pending.pop(0)     # never retried: only the sweep (or a later change) sees the asset again

        @rule(ref=st.sampled_from(REFS))
        def duplicate_or_stale_message(self, ref):
            self.converge(ref)      # publish reads Preservica now: an old event is the same as a new one

        @rule()
        def sweep(self):
            try:
                sweep.run()
            except Exception:
                assert self.down
            for ref in REFS:
                if not public_now(ref) and not blobs(env, f"{ref}/"):
                    world["done"].add(ref)

        @invariant()
        def no_closed_asset_gains_a_blob_after_its_withdrawal(self):
            assert world["violations"] == []

        def teardown(self):
            """Quiescence: Preservica answers, every failed message is retried, the reconciler delivers what
            the webhooks missed, a sweep runs. Then the container is what Preservica says."""
            self.preservica_back()
            for ref in sorted(self.missed | set(self.pending)):   # poisoned ones: the sweep's
                publish.converge(Context(), ref)
            sweep.run()
            assert world["violations"] == []
            got = blobs(env)
            published = {n.split("/")[0] for n in got if n.endswith("/manifest.json")}
            assert published == {r for r in REFS if public_now(r)}
            assert {n.split("/")[0] for n in got} - {"activity"} == published   # nothing else under any ref
            for ref in published:
                want = sorted(pres.source_of(ref, "Access", i)[1]["SHA1"] for i in range(
                    sum(1 for f in _files(ref, self.variant[ref]) if f[2] == "Access")))
                have = sorted(hashlib.sha1(v).hexdigest() for n, v in got.items() if n.startswith(f"{ref}/files/"))
                assert have == want, f"{ref}: the public files are not the current access files"

    run_state_machine_as_test(PublicInvariant, settings=hsettings(max_examples=8, stateful_step_count=8,
                                                                  deadline=None))
