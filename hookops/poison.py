"""`hookops poison list` and `replay`: messages the Functions host gave up on (`<queue>-poison`).
Registered on the `hookops` group (hookops/cli.py). The work is handlers/clients/poison.py's, which
the console shares."""
from __future__ import annotations

import click

from handlers.clients import poison as core
from hookops.common import printable, storage as _storage


@click.group()
def poison():
    """Inspect and replay messages the Functions host gave up on (`<queue>-poison`)."""


def _pipeline_queues() -> list[str]:
    from handlers.pipeline import registry
    return core.pipeline_queues(registry.names())


@poison.command("list")
@click.option("--show", default=5, show_default=True, type=click.IntRange(0, 32), help="Messages to show per queue.")
def poison_list(show):
    """Count and show poison messages of every pipeline queue, with when each expires: the Functions
    host gives a poison message the storage default of 7 days, after which it is gone unreplayed."""
    store, total = _storage(), 0
    for queue in _pipeline_queues():
        n = core.count(store, queue)
        total += n
        click.echo(f"{queue}-poison: {n}")
        if n and show:
            for m in core.peek(store, queue, show):
                click.echo(f"  {m.id} inserted {m.inserted:%Y-%m-%d %H:%M:%S} expires {core.expiry(m.expires)} "
                           f"{printable(m.what)}")
    click.echo(f"total: {total}")


@poison.command("replay")
@click.option("--queue", "-q", "queues", multiple=True, type=click.Choice(_pipeline_queues()),
              help="Queue to replay into (repeatable). Default: all.")
@click.option("--limit", default=0, type=click.IntRange(0), help="Replay at most this many per queue (0: all).")
def poison_replay(queues, limit):
    """Move poison messages back to their queue, so the functions run them again (fresh retry budget)."""
    store, moved = _storage(), 0
    for queue in queues or _pipeline_queues():
        if not core.count(store, queue):
            continue
        n = core.replay(store, queue, limit, progress=lambda n, q=queue: click.echo(f"{q}: {n} replayed", err=True))
        moved += n
        click.echo(f"{queue}-poison -> {queue}: {n} message(s)")
    click.echo(f"replayed {moved} message(s)")
