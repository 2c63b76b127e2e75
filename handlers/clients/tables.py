"""Calls to the app's tables that create a missing table first (local runs: Bicep creates them in Azure)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def table_call(table, fn: Callable[[], T]) -> T:
    """`fn()`, creating the table first if it is missing (local runs; Bicep creates the tables in Azure). A
    transaction says so as TableTransactionError, not ResourceNotFoundError (azure-data-tables _base_client.py
    decodes a batch's failure with error_type=TableTransactionError, keeping its error_code)."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.data.tables import TableTransactionError
    try:
        return fn()
    except (ResourceNotFoundError, TableTransactionError) as exc:
        if _error_code(exc) != "TableNotFound":
            raise
        try:
            table.create_table()
        except ResourceExistsError:
            pass
        return fn()


def _error_code(exc) -> str | None:
    """The Table service's error code: the SDK's (a str enum, TableErrorCode, or a str), or, where it re-raises the
    error undecoded (_table_client.py create_entity: `raise error` after decoding it), the answer's own
    (`odata.error.code` in the body, as azure-data-tables _error.py _decode_error reads it, or x-ms-error-code)."""
    if code := getattr(exc, "error_code", None):
        return code   # compared as it is: str() of a str enum is its name, not its value
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        found = json.loads(response.text()).get("odata.error", {}).get("code")
    except (ValueError, AttributeError):
        found = None
    return found or response.headers.get("x-ms-error-code")
