"""Attack 6, inside the actions: Preservica and catalogue data chosen by someone else.

Uses test_actions' fixtures: the real pyPreservica client against the Preservica double, real Azurite.
"""
import pytest

from handlers.clients import journal
from hookops.doubles.deliveries import ref
from hookops.doubles.receivers import CatalogueDouble
from tests.support.actions import SCHEMA
from tests.support.jobs import row, run_one


@pytest.mark.parametrize("identifier", [".", ".."])
def test_catalogue_identifier_that_is_a_dot_segment_does_not_move_the_request(env, pres, jobs, monkeypatch,
                                                                             identifier):
    with CatalogueDouble() as cat:
        monkeypatch.setenv("CATALOGUE_URL_TEMPLATE", cat.url_template)
        monkeypatch.setenv("CATALOGUE_SCHEMA", SCHEMA)
        pres.add_asset(ref("dots"), "Dots", identifiers={"catalogue": identifier})
        [raw] = jobs("catalogue", refs=["dots"])
        outcome = run_one("catalogue", raw)
        assert outcome.state == journal.SKIPPED and "not usable" in outcome.reason
        assert cat.received == []          # never asked for /records/.. (that is /, or the parent path)
        assert row(raw)["catalogue_state"] == "skipped"
