"""`hookops subscribe`, `subscriptions` and `unsubscribe`: the Preservica tenant's webhook
subscriptions, through pyPreservica's WebHooksAPI. Registered on the `hookops` group (hookops/cli.py)."""
from __future__ import annotations

import json

import click

from handlers.core.routing import SDK_TRIGGERS, TRIGGERS, trigger_name
from hookops.common import check_endpoint, fail, printable, redact_url, webhook_secret


def _trigger_name(value: str) -> str:
    name = trigger_name(value)
    if name is None:
        fail(f"unknown trigger {value!r}; use one of {', '.join(TRIGGERS)}")
    return name


def _webhooks():
    """A logged-in pyPreservica WebHooksAPI, or a clear error naming the settings to fix."""
    import logging

    from handlers.clients import preservica
    from handlers.clients.secrets import default
    from handlers.core.errors import SafeError
    # Errors are reported below without URLs; pyPreservica's own log lines would repeat them with URLs, and
    # ours repeat what we print. Quiet for this command only: the levels come back when it ends.
    for name in ("pyPreservica", "handlers.clients.preservica"):
        logger = logging.getLogger(name)
        click.get_current_context().call_on_close(lambda lg=logger, lv=logger.level: lg.setLevel(lv))
        logger.setLevel(logging.CRITICAL)
    try:
        return preservica.webhooks_api(default())
    except SafeError as exc:   # settings, credentials, Key Vault
        fail(f"{exc}. Set them in the environment or local.settings.json (KEY_VAULT_URI for Key Vault).")


def _refused(what: str, exc: Exception, url: str = "") -> None:
    """Fail with what Preservica said, never with a subscriber URL's query string."""
    from handlers.clients import preservica
    problem = preservica.classify(exc)
    if isinstance(problem, preservica.NotFound):
        fail(f"could not {what}: no such subscription")
    reason = str(problem) if problem is not None else (str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__)
    detail = str(getattr(exc, "msg", "") or "")[:300]
    if url:
        detail = detail.replace(url, redact_url(url))
    # Preservica's words are shown, not obeyed: escaped like everything else from outside (printable()).
    fail(f"could not {what}: {printable(reason)}" + (f" ({printable(detail)})" if detail else ""))


@click.command("subscribe")
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
    secret = webhook_secret()
    if any(c in url or c in secret for c in '"\\') or not url.startswith(("https://", "http://")):
        # pyPreservica writes the request JSON with an f-string: a quote or backslash would break it.
        fail("the URL must be http(s) and neither the URL nor the secret may contain '\"' or '\\'")
    if not secret.isascii():
        # The HMAC key's bytes: pyPreservica's receivers take the secret as latin-1 (webHooksAPI.py), the app as
        # UTF-8 (core/signature.py); Preservica's own encoding is not public (inferred: docs/deploy.md facts).
        fail("the webhook secret must be ASCII (e.g. secrets.token_urlsafe(32)): for other characters Preservica's "
             "key bytes are not known, and deliveries could fail the signature check")
    ok, why = check_endpoint(url, secret)
    if not ok:
        fail(f"not subscribing: the endpoint did not answer the challenge correctly "
              f"({why.replace(url, redact_url(url))})")
    click.echo(f"challenge answered correctly by {redact_url(url)}")
    from pyPreservica.webHooksAPI import TriggerType
    api = _webhooks()
    for name in names:
        try:
            created = json.loads(api.subscribe(url, TriggerType[SDK_TRIGGERS[name]], secret))
        except Exception as exc:  # HTTPException, RuntimeError (roles), requests errors
            _refused(f"subscribe {name}", exc, url)
        click.echo(f"subscribed {name}: {printable(created.get('id'))}")


@click.command("subscriptions")
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
        # What Preservica returns is shown, not obeyed: control characters are escaped like `events` does.
        click.echo(f"{printable(str(sub.get('id', '?'))):34} {printable(str(sub.get('triggerType', '?'))):28} "
                   f"{printable(redact_url(sub.get('url')))}")


@click.command("unsubscribe")
@click.argument("subscription_id", required=False)
@click.option("--all", "remove_all", is_flag=True, help="Remove every subscription of the tenant, not only this app's.")
@click.option("--yes", is_flag=True, help="Confirm --all.")
def unsubscribe(subscription_id, remove_all, yes):
    """Remove the subscription SUBSCRIPTION_ID (see `subscriptions`), or with `--all --yes` every
    subscription of the Preservica tenant."""
    if bool(subscription_id) == remove_all:
        fail("give either a SUBSCRIPTION_ID or --all")
    if remove_all and not yes:
        fail("--all removes every webhook subscription of the tenant, including other systems'; add --yes to confirm")
    api = _webhooks()
    try:
        ids = [s["id"] for s in api.subscriptions()] if remove_all else [subscription_id]
        for sub_id in ids:
            api.unsubscribe(sub_id)
            click.echo(f"unsubscribed {printable(sub_id)}")  # with --all, an id as Preservica listed it
    except Exception as exc:
        _refused("unsubscribe", exc)
    if remove_all and not ids:
        click.echo("No subscriptions.")
