"""`hookops poison list` and `replay`: messages the Functions host gave up on (`<queue>-poison`).
Registered on the `hookops` group (hookops/cli.py)."""
from __future__ import annotations

import datetime as dt
import json

import click

from handlers.core import settings
from hookops.cli import _storage, main, printable


@main.group()
def poison():
    """Inspect and replay messages the Functions host gave up on (`<queue>-poison`)."""


def _pipeline_queues() -> list[str]:
    from handlers.actions import registry
    return [settings.DELIVERY_QUEUE] + [settings.action_queue(a) for a in registry.names()]


def _raw_queue(name: str):
    # Poison messages are moved byte for byte, still base64 as the host reads them.
    return _storage().queue(name, raw=True)


def _count(name: str) -> int:
    from azure.core.exceptions import ResourceNotFoundError
    try:
        return _raw_queue(name).get_queue_properties().approximate_message_count or 0
    except ResourceNotFoundError:
        return 0


def _expiry(when: dt.datetime | None) -> str:
    """When a message expires, and how long is left; Azure reports 9999-12-31 for "never"."""
    if when is None:
        return "unknown"
    if when.year >= 9999:
        return "never"
    when = when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    left = when - dt.datetime.now(dt.timezone.utc)
    hint = f"in {left.days}d {left.seconds // 3600}h" if left.total_seconds() > 0 else "expired"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({hint})"


def _describe_message(doc: dict) -> str:
    """What a pipeline message was for: the delivery, or the action and the events of its batch."""
    events = doc.get("events")
    if "action" not in doc or not isinstance(events, list):
        if isinstance(doc.get("id"), str):
            return f"action=dispatch delivery={doc['id']}"
        raise ValueError("not a pipeline message")
    refs = [str(e["event"].get("entityRef") or "-") if isinstance(e, dict) and isinstance(e.get("event"), dict) else "?"
            for e in events[:3]]
    more = f" and {len(events) - 3} more" if len(events) > 3 else ""
    return (f"action={doc.get('action')} kind={doc.get('kind', 'event')} delivery={doc.get('deliveryId')} "
            f"events={len(events)} refs={','.join(refs)}{more}")


@poison.command("list")
@click.option("--show", default=5, show_default=True, type=click.IntRange(0, 32), help="Messages to show per queue.")
def poison_list(show):
    """Count and show poison messages of every pipeline queue, with when each expires: the Functions
    host gives a poison message the storage default of 7 days, after which it is gone unreplayed."""
    import base64
    total = 0
    for queue in _pipeline_queues():
        n = _count(queue + "-poison")
        total += n
        click.echo(f"{queue}-poison: {n}")
        if n and show:
            for m in _raw_queue(queue + "-poison").peek_messages(max_messages=show):
                try:
                    what = _describe_message(json.loads(base64.b64decode(m.content)))
                except (ValueError, AttributeError, TypeError):  # not base64, UTF-8 or JSON, or not an object
                    what = "not a pipeline message"
                click.echo(f"  {m.id} inserted {m.inserted_on:%Y-%m-%d %H:%M:%S} expires {_expiry(m.expires_on)} "
                           f"{printable(what)}")
    click.echo(f"total: {total}")


@poison.command("replay")
@click.option("--queue", "-q", "queues", multiple=True, type=click.Choice(_pipeline_queues()),
              help="Queue to replay into (repeatable). Default: all.")
@click.option("--limit", default=0, type=click.IntRange(0), help="Replay at most this many per queue (0: all).")
def poison_replay(queues, limit):
    """Move poison messages back to their queue, so the functions run them again (fresh retry budget)."""
    from hookops.host.queues import ensure
    moved = 0
    for queue in queues or _pipeline_queues():
        if not _count(queue + "-poison"):
            continue
        # The host creates its trigger queues; one removed by hand since would fail every send.
        source, target = _raw_queue(queue + "-poison"), ensure(_raw_queue(queue))
        n = 0
        while not limit or n < limit:
            batch = list(source.receive_messages(max_messages=32, visibility_timeout=60))
            if not batch:
                break
            for m in batch[: (limit - n) if limit else None]:
                # Send first: a crash in between duplicates, never loses. With no expiry: the storage
                # default (7 days) would drop it unprocessed if the app stayed down that long.
                target.send_message(m.content, time_to_live=-1)
                source.delete_message(m)
                n += 1
            click.echo(f"{queue}: {n} replayed", err=True)
        moved += n
        click.echo(f"{queue}-poison -> {queue}: {n} message(s)")
    click.echo(f"replayed {moved} message(s)")
