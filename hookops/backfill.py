"""`hookops backfill` and `hookops reconcile`: run the routed actions for what Preservica already
holds, and ask Preservica's event log now what the webhooks missed. The work is the stages'
(handlers/backfill.py, handlers/reconcile.py); these commands check their input and print progress."""
from __future__ import annotations

import datetime as dt
import sys

import click

from hookops.common import fail as _fail, preservica_secrets as _preservica, printable, storage as _storage

PREVIEW = 5


def _since(ctx, param, value: str) -> dt.datetime:
    from handlers.core.envelope import parse_timestamp
    when = parse_timestamp(value.strip()) if value else None
    if when is None:
        raise click.BadParameter(f"{value!r} is not a date or time such as 2024-01-31 or 2024-01-31T09:00:00Z")
    if when > dt.datetime.now(dt.UTC):
        raise click.BadParameter("is in the future")
    return when


def _trigger(ctx, param, value: str) -> str:
    from handlers.core.routing import TRIGGERS, trigger_name
    name = trigger_name(value)
    if name is None:
        raise click.BadParameter(f"{printable(value)!r} is not a trigger name; use one of {', '.join(TRIGGERS)}")
    return name


def _folder(ctx, param, value):
    from handlers.core.envelope import is_ref
    if value and not is_ref(value):
        raise click.BadParameter(f"{value!r} is not a folder reference (a UUID)")
    return value.lower() if value else None


@click.command("backfill")
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
    from handlers import backfill as stage
    from handlers.core.errors import SafeError
    from handlers.pipeline import registry
    actions = registry.routes().actions_for(trigger)
    if not actions:
        _fail(f"PRESERVICA_ROUTES routes no action for {trigger}: nothing would run")
    secrets = _preservica()
    try:
        refs = stage.assets(secrets, since, folder, lambda line: click.echo(line, err=True))
    except SafeError as exc:
        _fail(f"cannot list assets: {printable(exc)}")
    if dry_run:
        click.echo(f"Would queue {', '.join(actions)} for {len(refs)} asset(s) (trigger {trigger}); first ones:")
        for r in refs[:PREVIEW]:
            click.echo(f"  {printable(r)}")  # refs as Preservica listed them
        return
    if not refs:
        click.echo("Nothing to backfill.")
        return
    store = _storage()
    plan = stage.plan(refs, since, folder, trigger)
    if plan.resumed:
        click.echo(f"Resuming the backfill begun {plan.started.isoformat()}: what is done is skipped.")
    with click.progressbar(plan.docs, label="Queuing", item_show_func=lambda d: None, file=sys.stderr) as bar:
        queued, done = stage.queue(plan, actions, store, bar)
    click.echo(f"Queued {', '.join(actions)} for {queued} asset(s); {done} already done or on their way. "
               f"Follow them with `hookops events`.")


@click.command("reconcile")
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
