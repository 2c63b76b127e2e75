"""`hookops eventlog-types`: which event types this archive's own Preservica logs, so that
RECONCILE_EVENT_TYPES maps the types the server really writes (public sources show `Ingest`, `Moved`
and `Modified`; nothing public documents the whole list)."""
from __future__ import annotations

import datetime as dt

import click

from hookops.common import fail as _fail, printable


@click.command("eventlog-types")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="How far back to look.")
@click.option("--max-requests", default=50, show_default=True, type=click.IntRange(1, 10000),
              help="Most Preservica requests to make (pages of events, then one per type for an example entity).")
def eventlog_types(days, max_requests):
    """List the distinct event types Preservica logged in the last DAYS days, with how many of each and
    an example event and entity, and the trigger RECONCILE_EVENT_TYPES maps each to. Run it once after
    deploying and set RECONCILE_EVENT_TYPES from what your server logs."""
    from handlers.clients import eventlog, preservica
    from handlers.core import reconcile, settings
    from handlers.core.errors import SafeError
    from hookops.common import preservica_secrets as _preservica
    secrets = _preservica()
    mapping = reconcile.parse_types(settings.get("RECONCILE_EVENT_TYPES"))
    now = dt.datetime.now(dt.UTC)
    budget = eventlog.Budget(max_requests)
    counts: dict[str, int] = {}
    example: dict[str, str] = {}

    def read(api) -> bool:
        """Count the types page by page; False when the budget ran out before the end."""
        try:
            for page, after in eventlog.events(api, None, now - dt.timedelta(days=days), now, 0, budget):
                for e in page:
                    counts[e["eventType"]] = counts.get(e["eventType"], 0) + 1
                    example.setdefault(e["eventType"], e["Ref"])
                click.echo(f"  {after} event(s) read ...", err=True)
            return True
        except eventlog.BudgetSpent:
            return False

    def entity(api, event_ref: str) -> str:
        try:
            for page, _ in eventlog.touched(api, event_ref, 0, budget):
                return page[0][0] if page else "-"
        except eventlog.BudgetSpent:
            return "?"
        return "-"

    click.echo(f"Reading Preservica's event log for the last {days} day(s) ...", err=True)
    try:
        complete = preservica.call(secrets, read)
        entities = {t: preservica.call(secrets, lambda api, r=example[t]: entity(api, r)) if example[t] else "-"
                    for t in sorted(counts)}
    except SafeError as exc:
        _fail(f"cannot read the event log: {exc}")
    if not counts:
        click.echo(f"No events logged in the last {days} day(s).")
    for t in sorted(counts, key=lambda t: (-counts[t], t)):
        click.echo(f"{printable(t)}\t{counts[t]}\tevent {printable(example[t] or '-')}\tentity {printable(entities[t])}"
                   f"\t-> {mapping.get(t, '(not reconciled)')}")
    if not complete:
        click.echo(f"(stopped after {budget.used} requests: counts are of the pages read; "
                   "raise --max-requests for all)")
    missing = sorted(set(mapping) - set(counts))
    if missing:
        click.echo("Mapped in RECONCILE_EVENT_TYPES but not logged in this period: "
                   + ", ".join(printable(t) for t in missing))
