"""`hookops budget`: who shares Preservica's request budget now, from the heartbeat rows each worker process keeps
(handlers/clients/heartbeat.py). Registered on the `hookops` group (hookops/cli.py). Read only: it writes no row,
so it takes no share and the processes' counts do not see it."""
from __future__ import annotations

import json

import click

from hookops.common import fail, printable, storage


@click.command("budget")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def budget(as_json):
    """Who shares Preservica's request budget (PRESERVICA_MAX_RPS) now: each worker process that called
    Preservica lately, with its claim (the requests a second it may be using), whether it wants a share, and how
    long ago it counted. Live: counted within the last 4 s by the Table service's clock (to half a second: its
    Date header names whole seconds); the live claims add up
    to at most the budget. Many processes wanting a share, more than the budget, is what the `taking turns` log
    line reports (docs/operations.md, "One Preservica budget for the whole app")."""
    from handlers.clients import heartbeat, ratelimit
    from handlers.core import settings
    total = settings.get_int("PRESERVICA_MAX_RPS", minimum=1)
    try:
        rows = heartbeat.look(storage().table(settings.RECONCILE_TABLE), ratelimit.TTL_SECONDS)
    except Exception as exc:   # storage down or refusing: say so plainly (its text may quote a URL)
        fail(f"cannot read the heartbeat rows (table {settings.RECONCILE_TABLE!r}): {type(exc).__name__}")
    live = [r for r in rows if r.live]
    claimed = sum(r.claim for r in live)
    wanting = sum(1 for r in live if r.wants)
    if as_json:
        def finite(r) -> dict:   # JSON has no infinity: a claim that is not a rate is null
            return {**r._asdict(), "claim": None if r.claim == float("inf") else r.claim}
        click.echo(json.dumps({"budget": total, "live": len(live), "wanting": wanting,
                               "claimed": None if claimed == float("inf") else claimed,
                               "processes": [finite(r) for r in rows]}, ensure_ascii=True))
        return
    if not live:
        click.echo(f"PRESERVICA_MAX_RPS={total}: no process has counted in the last {ratelimit.TTL_SECONDS:g} s "
                   "(none calling Preservica now)")
    else:
        click.echo(f"PRESERVICA_MAX_RPS={total}: {len(live)} live process(es), {wanting} wanting a share"
                   f"{' (more than the budget: taking turns)' if wanting > total else ''}; claims {claimed:g} of "
                   f"{total}")
    for r in rows:
        age = "?" if r.age is None else f"{r.age:.0f} s ago"
        state = "live" if r.live else "lapsed"
        claim = "all (not a rate)" if r.claim == float("inf") else f"{r.claim:g}"
        click.echo(f"  {printable(r.process)[:60]:60} claim {claim:>5}  {'wants' if r.wants else 'rests'}  "
                   f"{state}, counted {age}")
    if len(rows) > len(live):
        click.echo(f"{len(rows) - len(live)} lapsed row(s): processes that wait with nothing claimed, or stopped "
                   "without leaving (killed while busy: a count deletes the row 10 minutes after its last write); no "
                   "count reads their claims")
