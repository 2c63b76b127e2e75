"""`journal.table_call` creates a table that is not there yet (local runs: Bicep creates them in Azure), whichever
call meets it first, against the real Azurite. azure-data-tables re-raises a create_entity's error undecoded
(_table_client.py), with no error_code: before, a create as the first call on a table failed with TableNotFound."""
import datetime as dt

import pytest
from azure.core.exceptions import ResourceNotFoundError

from handlers.clients import journal, storage
from handlers.clients.reconcile_state import ReconcileState


@pytest.fixture
def fresh(app_env):
    table = storage.default().table("freshtable")
    table.delete_table()   # nothing there: the call under test is the table's first
    return table


def test_a_create_as_the_first_call_makes_the_table(fresh):
    journal.table_call(fresh, lambda: fresh.create_entity({"PartitionKey": "p", "RowKey": "r", "x": 1}))
    assert journal.get_row(fresh, "p", "r")["x"] == 1


def test_a_transaction_as_the_first_call_makes_the_table(fresh):
    journal.table_call(fresh, lambda: fresh.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": "t"})]))
    assert journal.get_row(fresh, "p", "t") is not None


def test_the_watermarks_first_write_on_fresh_storage(fresh):
    seen = ReconcileState(fresh).advance(dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC), None)
    assert ReconcileState(fresh).watermark() == (dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC), {**seen})


def test_another_not_found_is_not_taken_for_a_missing_table(fresh):
    journal.table_call(fresh, lambda: fresh.create_entity({"PartitionKey": "p", "RowKey": "r"}))
    with pytest.raises(ResourceNotFoundError):   # the row is missing, not the table: nothing is created or retried
        journal.table_call(fresh, lambda: fresh.update_entity({"PartitionKey": "p", "RowKey": "gone", "x": 1}))
