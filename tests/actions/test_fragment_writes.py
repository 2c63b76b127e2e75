"""Record safety of the catalogue's metadata write: what it writes, where, and how often.

The real runner, the real pyPreservica client against the Preservica double, real Azurite, the catalogue double.
"""
from __future__ import annotations

import pytest

from handlers.clients import fragments, journal
from hookops.doubles.receivers import CatalogueDouble
from tests.support.actions import ASSET, RECORD, SCHEMA
from tests.support.jobs import row, run_one


@pytest.fixture
def catalogue(env, monkeypatch):
    with CatalogueDouble() as double:
        monkeypatch.setenv("CATALOGUE_URL_TEMPLATE", double.url_template)
        monkeypatch.setenv("CATALOGUE_SCHEMA", SCHEMA)
        double.add_record("HM/1887/12", RECORD.format("Harbour"))
        yield double


def ours(pres, ref=ASSET) -> list[str]:
    return [xml for schema, xml in pres.metadata(ref) if schema == SCHEMA]


def test_two_events_dispatched_before_either_ran_write_one_fragment(catalogue, pres, jobs):
    """Both messages carry a snapshot taken before the first fragment existed (an ingest and a move, a backfill
    overlapping the webhook): the second run must replace the first's fragment, not add a second one."""
    [ingest] = jobs("catalogue", trigger="FULL_TEXT_INDEXED")
    [moved] = jobs("catalogue", trigger="MOVED")
    assert run_one("catalogue", ingest).state == journal.DONE
    catalogue.add_record("HM/1887/12", RECORD.format("Harbour, revised"))
    assert run_one("catalogue", moved).state == journal.DONE
    [xml] = ours(pres)
    assert "Harbour, revised" in xml
    assert row(moved)["catalogue_fragment"] == "replaced"


def test_a_fragment_staff_added_is_neither_doubled_nor_replaced(catalogue, pres, jobs):
    """Not the app's (no record of writing it) and not the very record: a person's, kept. (One added in the minutes
    between the dispatcher's read and the run, before the app ever wrote the schema there, is not seen: the add
    is decided on the snapshot then, one Preservica read fewer per event; clients.fragments.)"""
    pres.add_metadata(ASSET, SCHEMA, RECORD.format("Typed in by hand"))   # before the dispatcher's read
    [raw] = jobs("catalogue")
    outcome = run_one("catalogue", raw)
    assert (outcome.state, outcome.reason) == ("skipped", fragments.UNRECORDED)
    [xml] = ours(pres)
    assert "Typed in by hand" in xml and row(raw)["catalogue_fragment"] == "kept"


def test_while_another_run_writes_the_assets_fragments_it_waits_its_turn(catalogue, pres, jobs, monkeypatch):
    """Two runs of one asset at once (two instances) would both read "none" and both add: the read and the write
    are made under a lease on `metadata/<ref>`, and a run that finds it held is put back, having written nothing."""
    from handlers.clients import publish_lock
    from handlers.clients.storage import default
    from handlers.pipeline import waits
    from tests.support.describe import queued, take
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    monkeypatch.setattr(waits, "FIRST_DELAY", 1)
    [raw] = jobs("catalogue")
    with publish_lock.held(default().blob_service(), f"metadata/{ASSET}"):
        assert run_one("catalogue", raw) is None
        assert pres.metadata(ASSET) == []
    got = row(raw)
    assert (got["catalogue_state"], got["catalogue_reason"]) == (
        "queued", "waiting: another run is writing a metadata fragment of this asset")
    assert queued("catalogue") == 1
    assert run_one("catalogue", take("catalogue")).state == journal.DONE
    assert len(ours(pres)) == 1


def test_an_unchanged_record_is_neither_sent_nor_waits_for_the_lease(catalogue, pres, jobs, monkeypatch):
    """What the app last wrote, confirmed and listed in the snapshot: nothing to send, so it takes no lease (one
    storage read): it neither waits for another run's lease nor is put back."""
    from handlers.clients import publish_lock
    from handlers.clients.storage import default
    monkeypatch.setattr(publish_lock, "WAIT_SECONDS", 0)
    assert run_one("catalogue", jobs("catalogue")[0]).state == journal.DONE
    [again] = jobs("catalogue", trigger="MOVED")   # its snapshot lists the fragment written above
    pres.received.clear()
    with publish_lock.held(default().blob_service(), f"metadata/{ASSET}"):
        outcome = run_one("catalogue", again)
    assert outcome.state == journal.DONE and row(again)["catalogue_fragment"] == "unchanged"
    assert not [p for m, p in pres.requests if "/metadata" in p]
    assert len(ours(pres)) == 1


# ---- what the catalogue may put in the fragment ------------------------------------------------

def _refused(catalogue, pres, jobs, record, why: str):
    catalogue.add_record("HM/1887/12", record)
    [raw] = jobs("catalogue")
    from handlers.core.errors import SafeError
    with pytest.raises(SafeError, match=why):
        run_one("catalogue", raw)
    assert pres.metadata(ASSET) == []
    got = row(raw)
    assert got["catalogue_state"] == "failed" and why.split(" \\(")[0] in got["catalogue_reason"]


@pytest.mark.parametrize("record, root", [
    ("<record><title>No namespace</title></record>", "{}record"),
    ("<mods xmlns='http://www.loc.gov/mods/v3'><titleInfo/></mods>", "{http://www.loc.gov/mods/v3}mods"),
    ("<xip:Entity xmlns:xip='http://preservica.com/XIP/v7.7'>x</xip:Entity>", "{http://preservica.com/XIP/v7.7}Entity"),
], ids=["no namespace", "another schema", "XIP"])
def test_a_record_outside_catalogue_schema_is_not_written(catalogue, pres, jobs, record, root):
    """The fragment is written with schemaUri=CATALOGUE_SCHEMA: its content must be a document of that schema,
    not whatever the catalogue answered (another schema's record, Preservica's own XIP elements)."""
    _refused(catalogue, pres, jobs, record, f"the catalogue record is not in CATALOGUE_SCHEMA \\(its root is {root}")


def test_a_record_larger_than_the_bound_is_not_read_whole_or_written(catalogue, pres, jobs):
    big = f"<record xmlns='{SCHEMA}'><title>{'x' * (2 * 1024 * 1024)}</title></record>"
    _refused(catalogue, pres, jobs, big, "the catalogue record is larger than 1048576 bytes")


def test_a_small_record_that_entities_blow_up_is_not_written(catalogue, pres, jobs):
    """A DTD's internal entities expand below expat's amplification guard (it starts at 8 MiB): 1.4 KB of
    record becomes 5 MB of fragment unless the record is measured as it would be written."""
    entities = ("<!DOCTYPE record [<!ENTITY a '" + "x" * 1000 + "'>"
                + "".join(f"<!ENTITY {n} '{('&' + p + ';') * 10}'>" for p, n in ("ab", "bc", "cd")) + "]>")
    record = f"{entities}<record xmlns='{SCHEMA}'><title>{'&d;' * 5}</title></record>"
    assert len(record) < 2000
    _refused(catalogue, pres, jobs, record, "the catalogue record is larger than 1048576 bytes")


# ---- a person's edit since the app wrote the fragment ---------------------------------------------------------

def fragment_reads(pres, since: int = 0) -> list[str]:
    """GETs of a fragment's own URL (not the entity's)."""
    return [p for m, p in pres.requests[since:] if m == "GET" and "/metadata/" in p]


def test_a_first_write_adds_without_reading_any_fragment(catalogue, pres, jobs):
    [raw] = jobs("catalogue")
    assert run_one("catalogue", raw).extra["catalogue_fragment"] == "added"
    assert fragment_reads(pres) == []


def test_a_staff_edit_between_two_runs_is_not_replaced(catalogue, pres, jobs):
    """An archivist corrected the record in Preservica after the app wrote it; a later event (a move, a backfill,
    a retry) must not put the machine's copy back over it."""
    [ingest] = jobs("catalogue")
    assert run_one("catalogue", ingest).state == journal.DONE
    [xml] = ours(pres)
    pres.edit_metadata(ASSET, SCHEMA, xml.replace("Harbour", "Harbour wall, corrected by the archivist"))
    catalogue.add_record("HM/1887/12", RECORD.format("Harbour, revised"))
    [moved] = jobs("catalogue", trigger="MOVED")
    outcome = run_one("catalogue", moved)
    assert (outcome.state, outcome.reason) == ("skipped", fragments.EDITED)
    [xml] = ours(pres)
    assert "corrected by the archivist" in xml and "revised" not in xml
    assert row(moved)["catalogue_fragment"] == "kept"


def test_the_apps_own_fragment_answered_in_another_form_is_replaced(catalogue, pres, jobs):
    """The double answers a fragment re-serialised (its own prefixes, indented, attributes reversed): bytes
    differ from what was sent, the document does not, so the app's unchanged fragment is replaced."""
    from hookops.doubles.preservica.entities import reserialised
    [ingest] = jobs("catalogue")
    assert run_one("catalogue", ingest).state == journal.DONE
    [xml] = ours(pres)
    assert reserialised(xml) != xml
    catalogue.add_record("HM/1887/12", RECORD.format("Harbour, revised"))
    [moved] = jobs("catalogue", trigger="MOVED")
    before = len(pres.requests)
    assert run_one("catalogue", moved).extra["catalogue_fragment"] == "replaced"
    [xml] = ours(pres)
    assert "Harbour, revised" in xml
    assert len(fragment_reads(pres, before)) == 1   # the one extra GET of replacing


def test_a_write_lost_after_its_record_is_not_taken_for_an_edit(catalogue, pres, jobs):
    """The record is set before the PUT: a PUT that fails leaves the old content there, which stays accepted."""
    [ingest] = jobs("catalogue")
    assert run_one("catalogue", ingest).state == journal.DONE
    catalogue.add_record("HM/1887/12", RECORD.format("Harbour, revised"))
    [moved] = jobs("catalogue", trigger="MOVED")
    pres.fail_next(1, 500, path_prefix=f"/api/entity/information-objects/{ASSET}/metadata/", method="PUT")
    from handlers.core.errors import SafeError
    with pytest.raises(SafeError, match="HTTP 500 to update_metadata"):
        run_one("catalogue", moved)
    assert "revised" not in ours(pres)[0]
    assert run_one("catalogue", moved, attempt=2).extra["catalogue_fragment"] == "replaced"
    assert "Harbour, revised" in ours(pres)[0]


def test_an_unrecorded_fragment_that_is_the_very_record_is_replaced(catalogue, pres, jobs):
    """Written before the app recorded its writes: identical to what it would write, so nothing is lost."""
    pres.add_metadata(ASSET, SCHEMA, RECORD.format("Harbour"))
    [raw] = jobs("catalogue")
    assert run_one("catalogue", raw).extra["catalogue_fragment"] == "replaced"


def test_a_fragment_past_the_read_bound_is_not_read_whole_or_replaced(catalogue, pres, jobs, monkeypatch):
    monkeypatch.setattr(fragments, "FRAGMENT_BYTES", 200)
    pres.add_metadata(ASSET, SCHEMA, RECORD.format("x" * 500))
    [raw] = jobs("catalogue")
    outcome = run_one("catalogue", raw)
    assert outcome.state == "skipped" and "larger than this app writes" in outcome.reason
    assert "x" * 500 in ours(pres)[0]


def test_a_fragment_answered_in_another_form_has_the_same_digest():
    from handlers.core import canonical
    sent = f"<record xmlns='{SCHEMA}' b='1' a='2'><id>7</id><title>Harbour &amp; wall</title></record>"
    answered = (f'<?xml version="1.0"?>\n<c:record a="2" b="1" xmlns:c="{SCHEMA}" xmlns:u="urn:unused">\n'
                f'  <c:id>7</c:id>\n  <!-- a comment -->\n  <c:title><![CDATA[Harbour & wall]]></c:title>\n</c:record>')
    assert canonical.digest_xml(sent) == canonical.digest_xml(answered)
    for edit in ("Harbour &amp; walls", ):
        assert canonical.digest_xml(sent.replace("Harbour &amp; wall", edit)) != canonical.digest_xml(sent)
    assert canonical.digest_xml(sent.replace("a='2'", "a='3'")) != canonical.digest_xml(sent)
    assert canonical.digest_xml(sent.replace(f"xmlns='{SCHEMA}'", "xmlns='urn:other'")) != canonical.digest_xml(sent)
