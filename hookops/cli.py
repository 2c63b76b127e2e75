"""hookops: the operator's command line for the Preservica webhook app.

Reads the same settings as the app: environment, then local.settings.json, and Key Vault when
KEY_VAULT_URI is set (signed in with `az login` or a managed identity).
"""
from __future__ import annotations

import datetime as dt
import json
import secrets as pysecrets
import sys
import time
import unicodedata
import uuid
from typing import NoReturn

import click

from handlers.core import settings
from hookops import localsettings

DEFAULT_URL = "http://localhost:7071/api/preservica/webhook"


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _webhook_secret() -> str:
    from handlers.clients.secrets import SecretUnavailable, default
    try:
        return default().webhook_secrets()[0]
    except SecretUnavailable as exc:
        _fail(f"{exc}. Run `make run` once to create local.settings.json, or set KEY_VAULT_URI.")


def _storage():
    from handlers.clients.storage import StorageUnavailable, default
    try:
        return default()
    except StorageUnavailable as exc:
        _fail(str(exc))


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
def send_test_event(url, trigger, refs, entity_type, count, secret):
    """Sign and POST deliveries exactly as Preservica does (chunked body, Preservica-Signature header)
    and print the status of each."""
    import httpx

    from handlers.core import signature
    key = secret or _webhook_secret()
    failures = 0
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            doc = {"subscriptionId": uuid.uuid4().hex, "timestamp": now, "tenant": settings.get("PRESERVICA_TENANT") or "TEST",
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
            click.echo(f"[{i + 1}/{count}] {trigger.upper()} {len(doc['events'])} event(s): {status} {detail}")
    if failures:
        _fail(f"{failures} of {count} deliveries were not accepted")


# ---- verify-endpoint -----------------------------------------------------------------------

def check_endpoint(url: str, secret: str) -> tuple[bool, str]:
    """Perform Preservica's subscription challenge against `url`; (ok, explanation)."""
    import httpx

    from handlers.core import signature
    code = pysecrets.token_hex(16)
    try:
        resp = httpx.post(url, params={"challengeCode": code}, timeout=30)
    except httpx.HTTPError as exc:
        return False, f"no answer from {url}: {type(exc).__name__}"
    if resp.status_code != 200:
        return False, f"answered {resp.status_code}, expected 200"
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return False, "answer is not application/json"
    try:
        doc = resp.json()
    except ValueError:
        return False, "answer is not JSON"
    if not isinstance(doc, dict) or doc.get("challengeCode") != code:
        return False, "answer does not echo the challengeCode"
    if str(doc.get("challengeResponse", "")).lower() != signature.challenge_response(secret, code):
        return False, "challengeResponse is wrong: the endpoint uses a different secret"
    return True, "challenge answered correctly"


@main.command("verify-endpoint")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="Webhook URL to check.")
def verify_endpoint(url):
    """Send the subscription challenge as Preservica would and say whether the answer is right."""
    ok, why = check_endpoint(url, _webhook_secret())
    if not ok:
        _fail(why)
    click.echo(f"OK: {url} {why}")


# ---- events --------------------------------------------------------------------------------

# Control and format characters (ESC, CR, DEL, C1, bidi overrides, zero-width ones), line and
# paragraph separators, and lone surrogates: in sender-controlled text they could rewrite the
# operator's screen (erase lines, fake hyperlinks, reorder text), or fail to encode at all.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def printable(value) -> str:
    """`value` as text safe for a terminal: every unprintable character shown as an escape, as
    Python writes them (\\r, \\x1b, \\u202e, ...)."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the usual case, in one C call (what it refuses is a superset)
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


def _escape(c: str) -> str:
    o = ord(c)
    if c in "\t\n\r":
        return repr(c)[1:-1]
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


@main.command("events")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def events(limit, as_json):
    """Recent journaled events, newest first, with each routed action's state."""
    from handlers.clients import journal
    _storage()
    try:
        rows = journal.default().recent(limit)
    except Exception as exc:  # storage down or not configured: say so plainly
        _fail(f"cannot read the journal: {type(exc).__name__}")
    if not rows:
        click.echo("No events journaled yet.")
        return
    for row in rows:
        states = journal.action_states(row)
        if as_json:  # ensure_ascii escapes every character outside printable ASCII, DEL included
            click.echo(json.dumps({k: row.get(k) for k in ("timestamp", "trigger", "entityType", "entityRef", "key")}
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
    _storage()
    cut = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=days)
    if not yes:
        click.confirm(f"Delete every journaled event dated before {cut.isoformat()}?", abort=True)
    try:
        count = journal.default().prune(cut)
    except Exception as exc:
        _fail(f"cannot prune the journal: {type(exc).__name__}")
    click.echo(f"deleted {count} journal row(s) dated before {cut.isoformat()}")


# ---- poison --------------------------------------------------------------------------------

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
    moved = 0
    for queue in queues or _pipeline_queues():
        if not _count(queue + "-poison"):
            continue
        source, target = _raw_queue(queue + "-poison"), _raw_queue(queue)
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


# ---- settings ------------------------------------------------------------------------------

WHERE = {settings.APP: "app setting", settings.LOCAL: "local only", settings.HOST: "Functions host"}


def settings_table() -> str:
    """The README's configuration table, made from the pipeline's and every action's declared settings."""
    from handlers.actions import registry
    lines = ["| Setting | Default | Set where | Meaning |", "|---|---|---|---|"]
    for s in registry.all_settings():
        default = f"`{s.default}`" if s.default else ""
        lines.append(f"| `{s.name}` | {default} | {WHERE[s.where]} | {s.meaning} |")
    return "\n".join(lines)


@main.command("settings")
@click.option("--check", is_flag=True, help="Also validate the current values (routes, numbers, storage).")
def settings_cmd(check):
    """Print every app setting with its default and meaning (the README table); --check validates values."""
    click.echo(settings_table())
    if not check:
        return
    from handlers.actions import registry
    problems = registry.problems()
    if problems:
        _fail("; ".join(problems))
    click.echo("\nsettings OK")


# ---- subscriptions -------------------------------------------------------------------------

# Preservica's trigger names (what deliveries carry) -> pyPreservica's TriggerType member.
TRIGGERS = {"FULL_TEXT_INDEXED": "INDEXED", "MOVED": "MOVED", "CHANGED_SECURITY_DESCRIPTOR": "SECURITY_CHANGED",
            "INGEST_FAILED": "INGEST_FAILED", "CHANGE_ASSET_VISIBILITY": "CHANGE_ASSET_VISIBILITY"}
ALIASES = {"INDEXED": "FULL_TEXT_INDEXED", "SECURITY_CHANGED": "CHANGED_SECURITY_DESCRIPTOR"}  # the SDK's names


def _trigger_name(value: str) -> str:
    name = value.strip().upper()
    name = ALIASES.get(name, name)
    if name not in TRIGGERS:
        _fail(f"unknown trigger {value!r}; use one of {', '.join(TRIGGERS)}")
    return name


def redact_url(url: str) -> str:
    """The URL without its query string (a function key `code=` or a `sig=` lives there)."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(str(url or ""))
    return urlunsplit(parts._replace(query="<redacted>" if parts.query else "", fragment=""))


def _webhooks():
    """A logged-in pyPreservica WebHooksAPI, or a clear error naming the settings to fix."""
    import logging

    from handlers.clients import preservica
    from handlers.actions.contract import ActionError
    from handlers.clients.secrets import SecretUnavailable, default
    # Errors are reported below without URLs; pyPreservica's own log lines would repeat them with URLs.
    logging.getLogger("pyPreservica").setLevel(logging.CRITICAL)
    logging.getLogger("handlers.clients.preservica").setLevel(logging.CRITICAL)  # its error lines repeat what we print
    try:
        return preservica.webhooks_api(default())
    except (ActionError, SecretUnavailable) as exc:
        _fail(f"{exc}. Set them in the environment or local.settings.json (KEY_VAULT_URI for Key Vault).")


def _refused(what: str, exc: Exception, url: str = "") -> None:
    """Fail with what Preservica said, never with a subscriber URL's query string."""
    from handlers.clients import preservica
    problem = preservica.classify(exc)
    if isinstance(problem, preservica.NotFound):
        _fail(f"could not {what}: no such subscription")
    reason = str(problem) if problem is not None else (str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__)
    detail = str(getattr(exc, "msg", "") or "")[:300]
    if url:
        detail = detail.replace(url, redact_url(url))
    _fail(f"could not {what}: {reason}" + (f" ({detail})" if detail else ""))


@main.command("subscribe")
@click.option("--url", required=True, help="Public URL of this app's webhook, e.g. "
              "https://<app>.azurewebsites.net/api/preservica/webhook.")
@click.option("--trigger", "-t", "triggers", multiple=True, required=True, metavar="TRIGGER",
              help="Trigger to subscribe to (repeat for several): " + ", ".join(TRIGGERS) + ".")
def subscribe(url, triggers):
    """Subscribe URL to Preservica events, one subscription per trigger.

    First sends Preservica's challenge to URL with the configured webhook secret (what
    `verify-endpoint` does) and refuses if the answer is wrong: Preservica would then reject the
    subscription or, worse, sign events the app rejects. Needs PRESERVICA_SERVER,
    PRESERVICA_USERNAME, PRESERVICA_TENANT and the password (PRESERVICA_PASSWORD, or the Key Vault
    secret `preservica-password` when KEY_VAULT_URI is set), for a user with a manager role.
    Prints the id of each new subscription.
    """
    names = list(dict.fromkeys(_trigger_name(t) for t in triggers))
    secret = _webhook_secret()
    if any(c in url or c in secret for c in '"\\') or not url.startswith(("https://", "http://")):
        # pyPreservica writes the request JSON with an f-string: a quote or backslash would break it.
        _fail("the URL must be http(s) and neither the URL nor the secret may contain '\"' or '\\'")
    ok, why = check_endpoint(url, secret)
    if not ok:
        _fail(f"not subscribing: the endpoint did not answer the challenge correctly "
              f"({why.replace(url, redact_url(url))})")
    click.echo(f"challenge answered correctly by {redact_url(url)}")
    from pyPreservica.webHooksAPI import TriggerType
    api = _webhooks()
    for name in names:
        try:
            created = json.loads(api.subscribe(url, TriggerType[TRIGGERS[name]], secret))
        except Exception as exc:  # HTTPException, RuntimeError (roles), requests errors
            _refused(f"subscribe {name}", exc, url)
        click.echo(f"subscribed {name}: {created.get('id')}")


@main.command("subscriptions")
def subscriptions():
    """List the Preservica tenant's webhook subscriptions (URLs shown without their query string)."""
    api = _webhooks()
    try:
        subs = api.subscriptions()
    except Exception as exc:
        _refused("list subscriptions", exc)
    if not subs:
        click.echo("No subscriptions.")
        return
    for sub in subs:
        click.echo(f"{sub.get('id', '?'):34} {str(sub.get('triggerType', '?')):28} {redact_url(sub.get('url'))}")


@main.command("unsubscribe")
@click.argument("subscription_id", required=False)
@click.option("--all", "remove_all", is_flag=True, help="Remove every subscription of the tenant, not only this app's.")
@click.option("--yes", is_flag=True, help="Confirm --all.")
def unsubscribe(subscription_id, remove_all, yes):
    """Remove the subscription SUBSCRIPTION_ID (see `subscriptions`), or with `--all --yes` every
    subscription of the Preservica tenant."""
    if bool(subscription_id) == remove_all:
        _fail("give either a SUBSCRIPTION_ID or --all")
    if remove_all and not yes:
        _fail("--all removes every webhook subscription of the tenant, including other systems'; add --yes to confirm")
    api = _webhooks()
    try:
        ids = [s["id"] for s in api.subscriptions()] if remove_all else [subscription_id]
        for sub_id in ids:
            api.unsubscribe(sub_id)
            click.echo(f"unsubscribed {sub_id}")
    except Exception as exc:
        _refused("unsubscribe", exc)
    if remove_all and not ids:
        click.echo("No subscriptions.")


# ---- run -----------------------------------------------------------------------------------

@main.command("run")
@click.option("--port", default=7071, show_default=True, help="HTTP port (the Functions host's default).")
@click.option("--runner/--func", "use_runner", default=None,
              help="Force the project's local runner, or Azure Functions Core Tools. Default: func if installed.")
def run(port, use_runner):
    """Start Azurite and the app locally (the README's first command calls this)."""
    from hookops.serve import serve
    serve(port, use_runner)


if __name__ == "__main__":
    sys.exit(main())
