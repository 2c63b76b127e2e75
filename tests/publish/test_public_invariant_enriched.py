""""Public = open now" with everything that feeds the public container since issue 19: ocr's text (a blob and a
fragment on the asset), transcribe's transcript and captions (from the access file, or the preservation file as
its fallback), describe's drafts accepted (as is or edited) or rejected in the real console, whose accept writes
Preservica and queues a publish-only recheck, the custody copy of every file, and security, visibility and
deletion changes arriving before, between and after them, delivered or lost, with replayed deliveries and
action messages, reconciler runs and sweeps. The real console, dispatcher, runner, publish, custody, reconciler
and sweep; real pyPreservica against the Preservica double; real Blob clients against Azurite.

At every step, over every blob of the public container (the activity stream too): nothing of what is never
public (ocr's text, a draft nobody accepted as written, a transcript made from a preservation file, any
preservation file's bytes, Preservica's thumbnail of an asset with a preservation master) is there; an accepted text is only in its own asset's manifest and spoken words only
in its own captions; nothing lies outside `<ref>/` and `activity/`; no closed asset gains a blob after its
withdrawal finished. Once things settle (queue delivered, reconciler past the last change, a sweep): the
manifests are exactly the open, visible assets', each with the summary last accepted (or the description).
Uses test_publish's fixtures (env, pres)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from hypothesis import settings as hsettings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from handlers import dispatch, reconcile, sweep
from handlers.actions import publish
from handlers.clients import preservica, publish_lock, shared
from handlers.clients.storage import default
from handlers.core import messages, settings
from handlers.pipeline import runner
from hookops.doubles.preservica import make_png
from hookops.host import queues
from tests.support import reconcile as recon
from tests.support.console import operator_get, operator_post, review_form
from tests.support.public_world import (
    DELAY,
    INDEXED,
    SECURITY,
    TICK,
    VISIBILITY,
    logged,
    new_world,
    public_now as public,
    put_backs,
    watch,
)
from tests.support.publish import ASSET, AV, blobs, make_wav, write_transcript
from tests.support.storage import clear_storage

REFS = (ASSET, AV)
OCR_SCHEMA, REVIEWED = "urn:preservica-webhooks-azure:ocr:v1", "urn:example:reviewed"
FILES = {ASSET: [("sheet.png", make_png(30, 20), "Access"), ("master.tif", 3000, "Preservation")],
         AV: [("talk.wav", make_wav(1.5), "Access"), ("master.wav", make_wav(0.5), "Preservation")]}
# Preservica's thumbnails: each asset has a preservation master it may be rendered from, so never public.
THUMBNAILS = {ASSET: make_png(12, 9, rgb=(255, 255, 255)), AV: make_png(12, 9, rgb=(0, 0, 0))}


def test_nothing_that_feeds_the_public_container_outlives_a_closure(env, pres, monkeypatch):
    from urllib3.util import Retry
    monkeypatch.setattr(preservica, "_retry", lambda: Retry(total=0, raise_on_status=True))
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    put_back = put_backs(monkeypatch)   # events the runner put back to wait for another run's lease
    for name, value in {"PRESERVICA_MAX_RPS": "1000", "RECONCILE_FIRST_HOURS": "4", "DESCRIBE_LANGUAGE": "en",
                        "RECONCILE_EVENT_TYPES": "Ingest=FULL_TEXT_INDEXED,Modified=CHANGED_SECURITY_DESCRIPTOR",
                        "PRESERVICA_ROUTES": f"{INDEXED}=publish,custody;*=publish", "DESCRIBE_SCHEMA": REVIEWED,
                        "RECONCILE_DELAY_MINUTES": "60"}.items():
        monkeypatch.setenv(name, value)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    world = new_world()

    def public_now(ref: str) -> bool:
        return public(pres, ref)
    watch(monkeypatch, pres, world)

    def queue(name: str):
        q = default().queue(name)
        queues.ensure(q)
        return q

    class Enriched(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            clear_storage(env.connection_string)
            shared.reset_all()
            pres.clear_events()
            world.update(new_world())
            self.t, self.n = start, 0
            self.never: set[bytes] = set()          # what may never be public
            self.only: dict[bytes, str] = {}        # what may be public only in that blob
            self.accepted: dict[str, str] = {}      # the text last accepted per asset
            self.drafted: dict[str, str] = {}
            self.replayable: list[tuple[str, str]] = []   # (queue, content) of every message delivered
            self.pending: list[tuple[str, str]] = []      # action messages that failed, for their retry
            self.masters: set[str] = set()          # SHA-1 of every preservation file
            for ref in REFS:
                self.ingest(ref)

        @initialize(mode=st.sampled_from(["description", "fragment"]))
        def write_mode(self, mode):
            monkeypatch.setenv("DESCRIBE_WRITE", mode)
            self.deliver()

        def ingest(self, ref: str) -> None:
            pres.add_asset(ref, f"Asset {ref[:4]}", f"Catalogued as item {ref[:4]}", bitstreams=FILES[ref],
                           thumbnail=THUMBNAILS[ref])
            self.never.add(THUMBNAILS[ref])
            self.accepted.pop(ref, None)
            self.drafted.pop(ref, None)
            self.masters.add(pres.source_of(ref, "Preservation")[1]["SHA1"])
            self.changed(ref, True, INDEXED, "Ingest")

        def token(self, what: str) -> str:
            self.n += 1
            return f"{what}{self.n}x{self.t.minute}"

        # -- the pipeline, as its queue functions run it ----------------------------------------------
        def deliver(self) -> None:
            """Dispatch the delivery queue (webhooks, the console's rechecks, the reconciler's), then run what
            the dispatcher queued for publish and custody."""
            for action, content in self.pending[:]:
                self.pending.remove((action, content))
                self.run(action, content, "retried")
            q = queue(settings.DELIVERY_QUEUE)
            while batch := list(q.receive_messages(max_messages=32)):
                for m in batch:
                    self.replayable.append(("delivery", m.content))
                    dispatch.dispatch(m.content.encode() if isinstance(m.content, str) else m.content)
                    q.delete_message(m)
            for action in ("publish", "custody"):
                q = queue(settings.action_queue(action))
                while batch := list(q.receive_messages(max_messages=32)):
                    for m in batch:
                        q.delete_message(m)
                        self.replayable.append((action, m.content))
                        self.run(action, m.content, m.id)

        def run(self, action: str, content: str, message_id: str, fresh: bool = True) -> None:
            put_back.clear()
            try:
                runner.run(action, content, 1, message_id=message_id)
            except Exception:   # failed (a 503, say): the queue delivers it again
                self.pending.append((action, content))
                return
            if put_back:   # met another run's lease (WAIT_SECONDS=0): put back, delivered again later
                self.pending.append((action, content))
                return
            for job in messages.read_batch(content) if action == "publish" and fresh else ():
                ref = job.entity_ref   # it read Preservica after every change so far: it must have withdrawn
                assert public_now(ref) or not blobs(env, f"{ref}/"), f"a publish of closed {ref} left it public"
            for ref in REFS:
                if not public_now(ref) and not blobs(env, f"{ref}/"):
                    world["done"].add(ref)

        def changed(self, ref: str, delivered: bool, trigger: str, event_type: str | None) -> None:
            self.t += TICK
            logged(pres, world, ref, self.t, event_type)
            if delivered:
                recon.webhook([ref], self.t, trigger=trigger)
                self.deliver()

        # -- archivists in Preservica ----------------------------------------------------------------------
        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def open(self, ref, delivered):
            if ref not in pres._entities:
                return self.ingest(ref)
            pres.set_security_tag(ref, "open")
            pres.set_hidden(ref, False)
            self.changed(ref, delivered, SECURITY, "Modified")

        @rule(ref=st.sampled_from(REFS), delivered=st.booleans(), hide=st.booleans())
        def close(self, ref, delivered, hide):
            if ref in pres._entities:
                pres.set_hidden(ref, True) if hide else pres.set_security_tag(ref, "closed")
                self.changed(ref, delivered, VISIBILITY if hide else SECURITY, "Modified")

        @rule(ref=st.sampled_from(REFS))
        def indexed(self, ref):
            """Preservica indexes the asset again (nothing changed): publish and custody run."""
            if ref in pres._entities:
                self.changed(ref, True, INDEXED, "Ingest")

        @rule(ref=st.sampled_from(REFS))
        def delete(self, ref):
            if ref in pres._entities:
                pres.delete_entity(ref, self.t + TICK)
                self.changed(ref, False, SECURITY, None)

        # -- what the enrichment actions leave (no webhook stands for any of it) --------------------------
        @rule(ref=st.sampled_from(REFS))
        def ocr(self, ref):
            if ref in pres._entities:
                said = self.token("ocrtext")
                self.never.add(said.encode())
                default().put_blob(settings.get("OCR_CONTAINER"), f"{ref}.txt", said.encode(), "text/plain")
                pres.add_metadata(ref, OCR_SCHEMA, f'<ocr xmlns="{OCR_SCHEMA}"><text>{said}</text></ocr>')

        @rule(source=st.sampled_from(["Access", "Preservation"]))
        def transcribe(self, source):
            if AV in pres._entities:
                said = self.token("spoken")
                if source == "Access":
                    self.only[said.encode()] = f"{AV}/{publish.CAPTIONS}"
                else:   # transcribe's fallback: never public, whatever publish copies
                    self.never.add(said.encode())
                write_transcript(env, pres, AV, f"WEBVTT\n\n00:00.000 --> 00:01.000\n{said}\n".encode(), source)
                default().put_blob(settings.get("TRANSCRIBE_CONTAINER"), f"{AV}.txt", said.encode(), "text/plain")

        @rule(ref=st.sampled_from(REFS))
        def draft(self, ref):
            if ref in pres._entities:
                text = f"A survey of the harbour, draft {self.token('drafted')}."
                self.never.add(text.encode())
                self.drafted[ref] = text
                record = {"ref": ref, "status": "pending", "reason": "", "draft": text, "title": f"Asset {ref[:4]}",
                          "description": pres._entities[ref].description, "sources": ["ocr"], "inputCut": False,
                          "provenance": {"service": "Azure OpenAI", "deployment": "describer", "model": "m",
                                         "apiVersion": "2024-10-21", "promptSha256": "ab" * 32, "date": "2026-12-07"}}
                default().put_blob("drafts", f"{ref}.json", json.dumps(record).encode(), "application/json",
                                   {"ref": ref, "status": "pending"})

        @rule(ref=st.sampled_from(REFS), as_is=st.booleans(), verdict=st.sampled_from(["accept", "reject"]))
        def review(self, ref, as_is, verdict):
            """A person in the console; the accept's recheck waits on the queue for `deliver`."""
            if ref not in self.drafted:
                return
            page = operator_get(f"drafts/{ref}")
            if page.status_code != 200 or b'name="seen"' not in page.get_body():
                return
            text = self.drafted[ref] if as_is else f"The harbour survey, reviewed {self.token('accepted')}."
            resp = operator_post(f"drafts/{ref}/{verdict}", {"text": text, **review_form(page.get_body())})
            if resp.status_code == 303 and verdict == "accept":
                self.never.discard(text.encode())
                self.only[text.encode()] = f"{ref}/manifest.json"
                self.accepted[ref] = text
            if resp.status_code == 303:
                del self.drafted[ref]

        @rule(ref=st.sampled_from(REFS), delivered=st.booleans())
        def closed_while_its_recheck_publishes(self, ref, delivered):
            """A closure that lands after a publish read "open" and copied the files, before its manifest."""
            if ref in pres._entities and public_now(ref):
                world["during"].append(lambda: self.close(ref, delivered, False))
                recon.webhook([ref], self.t, trigger=SECURITY)
                self.deliver()
                world["during"].clear()
                self.deliver()   # the retry of a withdrawal that met the publish's lease
                assert not blobs(env, f"{ref}/"), "closed before its manifest was written, and announced"

        # -- the platform ----------------------------------------------------------------------------------
        @rule()
        def deliver_queued(self):
            self.deliver()

        @rule(i=st.integers(min_value=0, max_value=1000))
        def replay(self, i):
            """Preservica sends a delivery again, or the queue delivers an action message again."""
            if self.replayable:
                queue, content = self.replayable[i % len(self.replayable)]
                if queue == "delivery":
                    queue(settings.DELIVERY_QUEUE).send_message(content)
                    self.deliver()
                else:
                    self.run(queue, content, f"replayed-{i}", fresh=False)

        @rule(lag=st.integers(min_value=0, max_value=3))
        def reconcile(self, lag):
            reconcile.run(now=self.t - lag * TICK + dt.timedelta(minutes=1) + DELAY)
            self.deliver()

        @rule()
        def sweep(self):
            sweep.run()
            for ref in REFS:
                if not public_now(ref) and not blobs(env, f"{ref}/"):
                    world["done"].add(ref)

        # -- what must hold ------------------------------------------------------------------------------------
        @invariant()
        def nothing_private_is_public_anywhere(self):
            assert world["violations"] == []
            for name, data in blobs(env).items():
                ref, _, rest = name.partition("/")
                assert name.startswith("activity/") or (ref in REFS and rest), f"{name}: outside any asset"
                assert hashlib.sha1(data).hexdigest() not in self.masters, f"{name}: a preservation file"
                for secret in self.never:
                    assert secret not in data, f"{name} holds {secret!r}, which is never public"
                for text, where in self.only.items():
                    assert text not in data or name == where, f"{name} holds {text!r}, only {where} may"

        def withdrawn(self, ref):
            assert not blobs(env, f"{ref}/"), f"{ref} is still public"

        def teardown(self):
            """Settled: the queue delivered, the reconciler past the last change, a sweep."""
            self.deliver()
            reconcile.run(now=self.t + TICK + DELAY)
            self.deliver()
            self.nothing_private_is_public_anywhere()
            sweep.run()
            self.nothing_private_is_public_anywhere()
            published = {n.split("/")[0] for n in blobs(env) if n.endswith("/manifest.json")}
            assert published == {r for r in REFS if public_now(r)}
            assert {n.split("/")[0] for n in blobs(env) if not n.startswith("activity/")} == published
            for ref in published:
                summary = json.loads(blobs(env, f"{ref}/")[f"{ref}/manifest.json"])["summary"]
                want = self.accepted.get(ref) or f"Catalogued as item {ref[:4]}"
                assert [t for texts in summary.values() for t in texts] == [want], ref

    # The questions as fixed sequences first (the random runs below may not draw them): a closure between the
    # draft and its accept, lost, then the accept's recheck; a closure after the accepted text went public,
    # lost, found by the reconciler; hidden while the recheck publishes; a replay after a deletion.
    for script in ([("draft", ASSET), ("close", ASSET, False, False), ("review", ASSET, False, "accept"),
                    ("deliver_queued",), ("withdrawn", ASSET)],
                   [("draft", ASSET), ("review", ASSET, True, "accept"), ("deliver_queued",),
                    ("close", ASSET, False, True), ("reconcile", 0), ("withdrawn", ASSET)],
                   [("ocr", AV), ("transcribe", "Preservation"), ("indexed", AV), ("transcribe", "Access"), ("draft", AV),
                    ("review", AV, False, "accept"), ("closed_while_its_recheck_publishes", AV, False),
                    ("replay", 0), ("delete", AV), ("replay", 3)]):
        machine = Enriched()
        machine.write_mode("fragment")
        for name, *args in script:
            getattr(machine, name)(*args)
            machine.nothing_private_is_public_anywhere()
        machine.teardown()
    run_state_machine_as_test(Enriched, settings=hsettings(max_examples=6, stateful_step_count=10, deadline=None))
