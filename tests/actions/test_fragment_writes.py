"""Record safety of the catalogue's metadata write: what it writes, where, and how often.

The real runner, the real pyPreservica client against the Preservica double, real Azurite, the catalogue double.
"""
from __future__ import annotations

import pytest

from handlers.clients import journal
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


def test_a_fragment_staff_added_since_the_snapshot_is_replaced_not_doubled(catalogue, pres, jobs):
    [raw] = jobs("catalogue")
    pres.add_metadata(ASSET, SCHEMA, RECORD.format("Typed in by hand"))   # after the dispatcher's read
    assert run_one("catalogue", raw).state == journal.DONE
    assert len(ours(pres)) == 1


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
