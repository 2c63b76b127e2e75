"""hookops: the operator's command line for the Preservica webhook app.

Reads the same settings as the app: environment, then local.settings.json, and Key Vault when
KEY_VAULT_URI is set (signed in with `az login` or a managed identity). The `main` group is
here, with the small commands; the others live in modules of their own (hookops/backfill.py,
budget.py, demo.py, eventlog_types.py, poison.py, subscriptions.py, verify.py), which define their click
commands without importing this module, and are registered on `main` at the bottom. What commands
share is in hookops/common.py, below them all.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import uuid

import click

from handlers.core import settings
from hookops import backfill, budget, custody, demo, eventlog_types, localsettings, poison, subscriptions, verify
from hookops.common import check_endpoint, fail, printable, storage, webhook_secret

DEFAULT_URL = "http://localhost:7071/api/preservica/webhook"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Operate the Preservica webhook app: test it, inspect its journal, recover poison messages,
    and manage Preservica subscriptions."""
    localsettings.load()


# ---- send-test-event -----------------------------------------------------------------------

def _refs(values: tuple[str, ...]) -> tuple[str, ...]:
    from handlers.core.envelope import entity_ref, is_ref
    for value in values:
        if not is_ref(entity_ref({"entityRef": value})):
            raise click.BadParameter(f"{value!r} is not a Preservica reference: a UUID such as "
                                     f"7fdea7e0-1e72-4fb1-aadb-d7f9ee6ed8c2 (the intake refuses anything else)",
                                     param_hint="--ref")
    return values


@main.command("send-test-event")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="Webhook URL to POST to.")
@click.option("--trigger", "-t", default="FULL_TEXT_INDEXED", show_default=True,
              help="Trigger type, e.g. FULL_TEXT_INDEXED, MOVED, INGEST_FAILED.")
@click.option("--ref", "refs", multiple=True, callback=lambda ctx, param, value: _refs(value),
              help="Entity reference (a UUID) of an event; repeat for several. Default: one random.")
@click.option("--entity-type", default="IO", show_default=True, type=click.Choice(["IO", "SO", "CO"]),
              help="Entity type of the events.")
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1, 100000),
              help="How many deliveries to send, one after another.")
@click.option("--secret", envvar="HOOKOPS_SECRET", help="Sign with this secret instead of the configured one.")
@click.option("--timestamp", metavar="TIME", help="The delivery's timestamp (UTC, e.g. 2026-11-30T08:00:00), "
              "as for an event Preservica sends late. Default: now.")
def send_test_event(url, trigger, refs, entity_type, count, secret, timestamp):
    """Sign and POST deliveries exactly as Preservica does (chunked body, Preservica-Signature header)
    and print the status of each."""
    import httpx

    from handlers.core import signature
    from handlers.core.envelope import parse_timestamp
    if timestamp is not None and parse_timestamp(timestamp) is None:
        raise click.BadParameter(f"{timestamp!r} is not a time such as 2026-11-30T08:00:00", param_hint="--timestamp")
    key = secret or webhook_secret()
    failures = 0
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            now = timestamp or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            doc = {"subscriptionId": uuid.uuid4().hex, "timestamp": now,
                   "tenant": settings.get("PRESERVICA_TENANT") or "TEST",
                   "version": "7.7", "trigger": trigger.upper(),
                   "events": [{"event": "TestEvent", "entityType": entity_type, "entityRef": r, "identifiers": []}
                              for r in (refs or [str(uuid.uuid4())])]}
            body = json.dumps(doc).encode()
            headers = {"Preservica-Signature": signature.sign(key, body), "Content-Type": "application/json"}
            try:
                # An iterator body makes httpx send Transfer-Encoding: chunked, as Preservica does.
                resp = client.post(url, content=iter([body]), headers=headers)
                status, detail = resp.status_code, resp.text[:200]
            except httpx.HTTPError as exc:
                status, detail = "no answer", type(exc).__name__
            ok = status == 200
            failures += not ok
            # The endpoint's text (and the operator's trigger) escaped: shown, never obeyed by the terminal.
            click.echo(f"[{i + 1}/{count}] {printable(trigger.upper())} {len(doc['events'])} event(s): {status} "
                       f"{printable(detail)}")
    if failures:
        fail(f"{failures} of {count} deliveries were not accepted")


# ---- verify-endpoint -----------------------------------------------------------------------

@main.command("verify-endpoint")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="Webhook URL to check.")
def verify_endpoint(url):
    """Send the subscription challenge as Preservica would and say whether the answer is right."""
    ok, why = check_endpoint(url, webhook_secret())
    if not ok:
        fail(why)
    click.echo(f"OK: {url} {why}")


# ---- events --------------------------------------------------------------------------------

@main.command("events")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def events(limit, as_json):
    """Recent journaled events, newest first, with each routed action's state."""
    from handlers.clients import journal
    storage()
    try:
        rows = journal.default().recent(limit)
    except Exception as exc:  # storage down or not configured: say so plainly
        fail(f"cannot read the journal: {type(exc).__name__}")
    if not rows:
        click.echo("No events journaled yet.")
        return
    for row in rows:
        states = journal.action_states(row)
        if as_json:  # ensure_ascii escapes every character outside printable ASCII, DEL included
            click.echo(json.dumps({k: row.get(k) for k in ("timestamp", "trigger", "entityType", "entityRef", "key",
                                                           "source")}
                                  | {"actions": {a: {"state": s, "reason": r} for a, (s, r) in states.items()}},
                                  ensure_ascii=True))
            continue
        actions = " ".join(f"{a}:{printable(s)}" + (f"({printable(r)})" if r else "") for a, (s, r) in states.items())
        click.echo(f"{printable(row.get('timestamp', '')):23} {printable(row.get('trigger', '')):20} "
                   f"{printable(row.get('entityType', '')):2} {printable(row.get('entityRef', '')):36} {actions}")


@main.command("prune-events")
@click.option("--older-than", "days", required=True, type=click.IntRange(1), metavar="DAYS",
              help="Delete journal rows of events more than DAYS days old (by Preservica's timestamp).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def prune_events(days, yes):
    """Delete old journal rows: Table Storage keeps them for ever otherwise. Undated events are kept."""
    from handlers.clients import journal
    storage()
    cut = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)
    if not yes:
        click.confirm(f"Delete every journaled event dated before {cut.isoformat()}?", abort=True)
    try:
        count = journal.default().prune(cut)
    except Exception as exc:
        fail(f"cannot prune the journal: {type(exc).__name__}")
    click.echo(f"deleted {count} journal row(s) dated before {cut.isoformat()}")


# ---- settings ------------------------------------------------------------------------------

WHERE = {settings.APP: "app setting", settings.LOCAL: "local only", settings.HOST: "Functions host"}


def settings_table() -> str:
    """The configuration table (docs/configuration.md), made from the pipeline's and every action's declared settings."""
    from handlers.pipeline import registry
    lines = ["| Setting | Default | Set where | Meaning |", "|---|---|---|---|"]
    for s in registry.all_settings():
        default = f"`{s.default}`" if s.default else ""
        lines.append(f"| `{s.name}` | {default} | {WHERE[s.where]} | {s.meaning} |")
    return "\n".join(lines)


@main.command("settings")
@click.option("--check", is_flag=True, help="Also validate the current values (routes, numbers, storage).")
def settings_cmd(check):
    """Print every app setting with its default and meaning (docs/configuration.md); --check validates values."""
    click.echo(settings_table())
    if not check:
        return
    from handlers.pipeline import registry
    problems = registry.problems()
    if problems:
        fail("; ".join(problems))
    click.echo("\nsettings OK")


# ---- run -----------------------------------------------------------------------------------

@main.command("run")
@click.option("--port", default=7071, show_default=True, help="HTTP port (the Functions host's default).")
@click.option("--runner/--func", "use_runner", default=None,
              help="Force the project's local runner, or Azure Functions Core Tools. Default: func if installed.")
def run(port, use_runner):
    """Start Azurite and the app locally (the README's first command calls this)."""
    from hookops.serve import serve  # here: the others need neither Azurite's nor the runner's modules
    serve(port, use_runner)


@main.command("console-url")
@click.option("--port", default=7071, show_default=True, help="The port `hookops run` serves on.")
def console_url(port):
    """The local operator console's link. It carries a token from the console's own random key (kept in
    local storage): the console of a local run answers only browsers that opened it (`hookops run` prints it too)."""
    from hookops.serve import console_link
    click.echo(console_link(port))


# ---- commands in modules of their own --------------------------------------------------------

for command in (backfill.backfill, backfill.reconcile_cmd, budget.budget, custody.custody, demo.doubles,
                eventlog_types.eventlog_types, poison.poison, subscriptions.subscribe, subscriptions.subscriptions,
                subscriptions.unsubscribe, verify.verify_deployment):
    main.add_command(command)

if __name__ == "__main__":  # `python -m hookops.cli`: the imported module's group has every command
    from hookops.cli import main as hookops
    sys.exit(hookops())
