"""`hookops backfill` and `hookops reconcile`: run the routed actions for what Preservica already
holds, and ask Preservica's event log now what the webhooks missed."""
from __future__ import annotations

import datetime as dt
import sys

import click

from handlers.core import settings
from hookops.cli import _fail, _storage, main, printable

PREVIEW = 5


def _since(ctx, param, value: str) -> dt.datetime:
    from handlers.core.envelope import parse_timestamp
    when = parse_timestamp(value.strip()) if value else None
    if when is None:
        raise click.BadParameter(f"{value!r} is not a date or time such as 2024-01-31 or 2024-01-31T09:00:00Z")
    if when > dt.datetime.now(dt.timezone.utc):
        raise click.BadParameter("is in the future")
    return when


def _trigger(ctx, param, value: str) -> str:
    import re
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", value or ""):
        raise click.BadParameter(f"{printable(value)!r} is not a trigger name such as FULL_TEXT_INDEXED")
    return value.upper()


def _folder(ctx, param, value):
    from handlers.core.envelope import is_ref
    if value and not is_ref(value):
        raise click.BadParameter(f"{value!r} is not a folder reference (a UUID)")
    return value.lower() if value else None


def _preservica():
    from handlers.clients.secrets import default
    secrets = default()
    missing = settings.preservica_missing(secrets)
    if missing:
        _fail(f"Preservica is not configured: set {', '.join(missing)}")
    return secrets


def _walk(secrets, since: dt.datetime, folder: str | None) -> list[str]:
    """Assets updated since `since` (and under `folder`), sorted; progress on stderr."""
    from handlers.clients import eventlog, preservica
    from handlers.core.envelope import is_ref
    from handlers.core.errors import SafeError
    budget = eventlog.Budget(10**9)  # the operator asked for all of it; PRESERVICA_MAX_RPS paces it
    try:
        click.echo(f"Listing assets updated since {since.isoformat()} ...", err=True)
        now = dt.datetime.now(dt.timezone.utc)
        kinds = preservica.call(secrets, lambda api: {r.lower(): k for page, _ in eventlog.updated(api, since, now, 0, budget)
                                                      for r, k in page if k == "IO" and is_ref(r)})
        if folder:
            click.echo(f"Walking folder {folder} ...", err=True)
            under = preservica.call(secrets, lambda api: {e.reference.lower() for e in api.all_descendants(folder)
                                                          if e.entity_type.value == "IO"})
            kinds = {r: k for r, k in kinds.items() if r in under}
    except SafeError as exc:
        _fail(f"cannot list assets: {printable(exc)}")
    click.echo(f"{len(kinds)} asset(s) found with {budget.used} listing request(s).", err=True)
    return sorted(kinds)


@main.command("backfill")
@click.option("--since", required=True, callback=_since, metavar="DATE",
              help="Assets updated in Preservica since this date or time (UTC), e.g. 2015-01-01 for everything "
                   "ingested since then.")
@click.option("--folder", callback=_folder, metavar="REF", help="Only assets under this folder (any depth).")
@click.option("--trigger", "-t", default="FULL_TEXT_INDEXED", show_default=True, callback=_trigger,
              help="Run the actions routed for this trigger (PRESERVICA_ROUTES).")
@click.option("--dry-run", is_flag=True, help="Count the assets and show the first few; queue nothing.")
def backfill(since, folder, trigger, dry_run):
    """Queue the routed actions for every asset Preservica already holds (or a folder's), as if each had
    just been ingested. Resumable: run the same command again and what is done is skipped. Preservica
    is asked at PRESERVICA_MAX_RPS at most, by this command and by the app that performs the actions."""
    import json

    from handlers.actions import registry
    from handlers.clients import delivery_queue, journal, reconcile_state
    from handlers.core import envelope, reconcile
    actions = registry.routes().actions_for(trigger)
    if not actions:
        _fail(f"PRESERVICA_ROUTES routes no action for {trigger}: nothing would run")
    secrets = _preservica()
    refs = _walk(secrets, since, folder)
    if dry_run:
        click.echo(f"Would queue {', '.join(actions)} for {len(refs)} asset(s) (trigger {trigger}); first ones:")
        for r in refs[:PREVIEW]:
            click.echo(f"  {printable(r)}")  # refs as Preservica listed them
        return
    if not refs:
        click.echo("Nothing to backfill.")
        return
    store = _storage()
    job = reconcile.job_id(since.isoformat(), folder, trigger)
    state = reconcile_state.default()
    progress = state.backfill(job)
    started = envelope.parse_timestamp(str((progress or {}).get("started") or "")) or dt.datetime.now(dt.timezone.utc)
    if progress:
        click.echo(f"Resuming the backfill begun {started.isoformat()}: what is done is skipped.")
    else:
        state.save_backfill(job, {"started": started.isoformat(), "since": since.isoformat(),
                                  "folder": folder or "", "trigger": trigger})
    docs = reconcile.backfill_deliveries((("IO", r) for r in refs), trigger, started,
                                         settings.get("PRESERVICA_TENANT") or "",
                                         settings.get_int("MAX_EVENTS_PER_DELIVERY", minimum=1))
    book, queued, done = journal.default(), 0, 0
    with click.progressbar(docs, label="Queuing", item_show_func=lambda d: None, file=sys.stderr) as bar:
        for doc in bar:
            body = json.dumps(doc, separators=(",", ":"))
            delivery = envelope.delivery_from_doc(doc)
            rows = book.rows_with_prefix(envelope.journal_partition(delivery),
                                         envelope.journal_row_prefix(delivery, ""))
            # done, or queued by the interrupted run and still on its way: not again (failed ones are)
            finished = sum(1 for r in rows.values()
                           if all(journal.state_of(r, a) not in (None, journal.FAILED) for a in actions))
            if finished == len(doc["events"]):
                done += finished
                continue
            delivery_queue.enqueue(store, envelope.delivery_id(body.encode()), journal.now_iso(), body,
                                   source=reconcile.BACKFILL)
            queued += len(doc["events"]) - finished
            done += finished
    state.save_backfill(job, {"queued": queued, "done": done, "finished": journal.now_iso()})
    click.echo(f"Queued {', '.join(actions)} for {queued} asset(s); {done} already done or on their way. "
               f"Follow them with `hookops events`.")


@main.command("reconcile")
@click.option("--dry-run", is_flag=True, help="Report what the webhooks missed; queue nothing, keep the watermark.")
def reconcile_cmd(dry_run):
    """Run one reconciliation now (the app does it on RECONCILE_SCHEDULE): ask Preservica's event log
    what happened since the watermark and queue what the webhooks missed. Prints the gap report."""
    from handlers import reconcile
    from handlers.core.errors import SafeError
    _preservica()
    _storage()
    try:
        report = reconcile.run(dry_run=dry_run)
    except SafeError as exc:
        _fail(str(exc))
    if "start" not in report:
        click.echo("Nothing to reconcile yet: the window (up to RECONCILE_DELAY_MINUTES ago) is empty.")
        return
    click.echo(f"window {report['start']} .. {report['end']}: found {report['found']}, already delivered "
               f"{report['delivered']}, {'would queue' if dry_run else 'queued'} {report['queued']}"
               + (f", re-checked by publish {report['rechecked']}" if report["rechecked"] else "")
               + (f", deleted {report['deleted']}" if report["deleted"] else "")
               + (f", not usable {report['unusable']}" if report["unusable"] else "")
               + f" ({report['requests']} Preservica requests)")
    if report["error"]:
        click.echo(f"stopped early: {printable(report['error'])}; the next run resumes where this one stopped")
