"""`hookops verify-deployment`: the checks a person would otherwise make by hand after `azd up`,
against the live app, each printed as one PASS/FAIL (or SKIP) line with what to do when it fails.
Registered on the `hookops` group (hookops/cli.py).

Every request has a bounded timeout and follows no redirect: where a request is sent is part of what is
checked. What the endpoint answers (status, Location, a body excerpt) is shown through printable(), and
the webhook secret is never printed.
"""
from __future__ import annotations

import base64
import json
import sys
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import click

from handlers.core import settings
from hookops.common import check_endpoint, printable, redact_url

WEBHOOK, HEALTH, CONSOLE = "/api/preservica/webhook", "/api/health", "/api/console/overview"
TIMEOUT = 20.0          # seconds per request: a cold start on Flex takes a few
SESSION_COOKIE = "AppServiceAuthSession"  # the built-in authentication's session cookie (see hookops/doubles/easyauth.py)
BROWSER = {"Accept": "text/html,application/xhtml+xml", "User-Agent": "hookops-verify-deployment"}
EXCLUDE = ("add {path} to excludedPaths of the app's authsettingsV2 (bicep/modules/consoleauth.bicep) "
           "and run `azd provision`")


@dataclass(frozen=True)
class Result:
    name: str
    status: str          # PASS, FAIL or SKIP
    detail: str
    advice: str = ""

    def line(self) -> str:
        text = f"{self.status} {self.name}: {self.detail}"
        return text + (f" -> {self.advice}" if self.status == "FAIL" and self.advice else "")


def _answer(resp) -> str:
    """What the endpoint said, short and safe for a terminal."""
    where = resp.headers.get("location")
    text = f"{resp.status_code}" + (f" to {printable(redact_url(where)[:200])}" if where else "")
    body = resp.text[:160].strip() if not where else ""
    return text + (f" {printable(body)}" if body else "")


def to_sign_in(resp) -> bool:
    """A redirect to the built-in authentication's login endpoint (`/.auth/login/<provider>`), or straight
    to the identity provider's authorize endpoint. RedirectToLoginPage and excludedPaths: the authsettingsV2
    GlobalValidation reference (learn.microsoft.com/javascript/api/@azure-rest/arm-appservice/globalvalidation);
    the status code and Location form are inferred (hookops/doubles/easyauth.py), which is why any 3xx counts."""
    if resp.status_code not in (301, 302, 303, 307, 308):
        return False
    try:
        loc = urlsplit(resp.headers.get("location") or "")
    except ValueError:
        return False
    return loc.path.startswith("/.auth/login/") or ((loc.hostname or "").startswith("login.") and "/oauth2/" in loc.path)


def _json_doc(resp):
    try:
        return resp.json() if resp.headers.get("content-type", "").startswith("application/json") else None
    except ValueError:
        return None


def check_unsigned(client, base: str) -> Result:
    name = "unsigned-delivery"
    body = json.dumps({"subscriptionId": uuid.uuid4().hex, "trigger": "MOVED", "events": []}).encode()
    resp = client.post(base + WEBHOOK, content=body, headers={"Content-Type": "application/json"})
    doc = _json_doc(resp)
    if resp.status_code == 401 and isinstance(doc, dict) and "error" in doc:
        return Result(name, "PASS", "answered 401 with the app's JSON error (the route is not behind sign-in)")
    if to_sign_in(resp):
        return Result(name, "FAIL", f"redirected to sign-in ({_answer(resp)})", EXCLUDE.format(path=WEBHOOK))
    if 200 <= resp.status_code < 300:
        return Result(name, "FAIL", f"an unsigned delivery was accepted ({_answer(resp)})",
                      "the signature check is not running: stop the app and check the deployed package")
    if resp.status_code == 503:
        return Result(name, "FAIL", f"the app cannot read its webhook secret ({_answer(resp)})",
                      "give the app's identity `Key Vault Secrets User` on the vault and check KEY_VAULT_URI")
    return Result(name, "FAIL", f"expected the app's 401 JSON, got {_answer(resp)}",
                  "check the URL (https://<app>.azurewebsites.net) and that the deployment finished")


def check_challenge(base: str, secret: str | None, why_none: str) -> Result:
    name = "challenge"
    if not secret:
        return Result(name, "FAIL", f"no webhook secret to check with: {why_none}",
                      "run `az login` as someone who may read the vault's secrets, give --vault-url, "
                      "or pipe the secret to --secret-stdin")
    ok, why = check_endpoint(base + WEBHOOK, secret)   # no redirects followed, bounded timeout
    if ok:
        return Result(name, "PASS", why)
    advice = ("the app reads another secret than the one checked: compare WEBHOOK_SECRET_NAME with the vault, "
              "and restart the app after a rotation" if "different secret" in why else
              EXCLUDE.format(path=WEBHOOK) if "answered 30" in why else
              "see the app's log (Application Insights traces) for the challenge")
    return Result(name, "FAIL", printable(why.replace(secret, "<secret>")), advice)


def check_health(client, base: str) -> Result:
    name = "health"
    resp = client.get(base + HEALTH)
    doc = _json_doc(resp)
    if resp.status_code == 200 and isinstance(doc, dict) and doc.get("status") == "ok":
        return Result(name, "PASS", "/api/health answered 200 ok")
    if to_sign_in(resp):
        return Result(name, "FAIL", f"redirected to sign-in ({_answer(resp)})", EXCLUDE.format(path=HEALTH))
    return Result(name, "FAIL", f"/api/health answered {_answer(resp)}",
                  "the app cannot reach its storage account: check AzureWebJobsStorage__* settings and the "
                  "identity's storage roles")


def forged_principal() -> str:
    """A principal header as the platform writes it (base64 JSON of claims), with the operator role."""
    doc = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
           "claims": [{"typ": "name", "val": "forged-by-verify-deployment"},
                      {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": str(uuid.uuid4())},
                      {"typ": "roles", "val": "Console.Operator"}]}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def check_console(client, base: str, forged: bool) -> Result:
    name = "console-forged-principal" if forged else "console-anonymous"
    headers = dict(BROWSER)
    if forged:  # the platform removes these from any request (configure-authentication-user-identities)
        headers.update({"X-MS-CLIENT-PRINCIPAL": forged_principal(), "X-MS-CLIENT-PRINCIPAL-NAME": "forged",
                        "X-MS-CLIENT-PRINCIPAL-ID": str(uuid.uuid4()), "X-MS-CLIENT-PRINCIPAL-IDP": "aad"})
    resp = client.get(base + CONSOLE, headers=headers)
    if to_sign_in(resp):
        return Result(name, "PASS", f"redirected to sign-in{' although a principal header was sent' if forged else ''}")
    if resp.status_code == 503:
        return Result(name, "FAIL", f"the console is off ({_answer(resp)})",
                      "set consoleClientId (bicep/main.bicepparam) and run `azd provision`, "
                      "or pass --no-console if the console is off on purpose")
    if forged and resp.status_code == 200:
        return Result(name, "FAIL", "a forged X-MS-CLIENT-PRINCIPAL header was believed: the console served an "
                      "anonymous caller", "turn built-in authentication on for the app (authsettingsV2 "
                      "platform.enabled) and remove any WEBSITE_AUTH_ENABLED app setting; until then stop the app")
    return Result(name, "FAIL", f"expected a redirect to sign-in, got {_answer(resp)}",
                  "built-in authentication must require sign-in (requireAuthentication, RedirectToLoginPage "
                  "in bicep/modules/consoleauth.bicep); run `azd provision`")


def check_headers(client, base: str, session: str | None) -> Result:
    name = "security-headers"
    if not session:
        return Result(name, "SKIP", "needs a signed-in session: sign in to the console in a browser and pass its "
                      f"{SESSION_COOKIE} cookie in HOOKOPS_AUTH_SESSION")
    from handlers.console.render import SECURITY_HEADERS
    resp = client.get(base + CONSOLE, headers={**BROWSER, "Cookie": f"{SESSION_COOKIE}={session}"})
    if to_sign_in(resp):
        return Result(name, "FAIL", "the session cookie was not accepted (redirected to sign-in)",
                      "copy a fresh AppServiceAuthSession cookie from a signed-in browser")
    missing = [h for h, v in SECURITY_HEADERS.items() if resp.headers.get(h) != v]
    if missing:
        return Result(name, "FAIL", f"the console answered {resp.status_code} without {', '.join(missing)}",
                      "a proxy in front of the app may strip them; check the deployed package is this version")
    return Result(name, "PASS", f"the console answered {resp.status_code} with {len(SECURITY_HEADERS)} security headers")


def check_https(client, base: str) -> Result:
    name = "https-only"
    parts = urlsplit(base)
    if parts.scheme != "https":
        local = (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")
        return Result(name, "SKIP" if local else "FAIL", "the URL is not https" + (" (a local run)" if local else ""),
                      "give the app's https:// URL")
    # httpsOnly (bicep/modules/functionapp.bicep) redirects plain http to https: "Enforce HTTPS",
    # learn.microsoft.com/azure/app-service/configure-ssl-bindings. The exact status is not relied on.
    resp = client.get(f"http://{parts.netloc}{HEALTH}")
    if resp.status_code in (301, 302, 307, 308) and (resp.headers.get("location") or "").startswith("https://"):
        return Result(name, "PASS", "plain http is redirected to https")
    return Result(name, "FAIL", f"plain http answered {_answer(resp)}", "set httpsOnly on the site and run `azd provision`")


def vault_secret(vault_url: str, name: str) -> str:
    """The webhook secret, read with the caller's own identity (az login, environment, managed identity)."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient
    client = SecretClient(vault_url, DefaultAzureCredential(), retry_total=1, connection_timeout=10, read_timeout=20)
    return (client.get_secret(name).value or "").strip()


def base_url(url: str) -> str:
    """scheme://host[:port] of the app from what a person pastes: the app URL, or the deployment's webhookUrl
    output (its path and any `?code=` query are dropped)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        parts = None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{printable(url)!s} is not an http(s) URL such as https://<app>.azurewebsites.net",
                                 param_hint="--url")
    return f"{parts.scheme}://{parts.netloc}"


def run_checks(url: str, secret: str | None, why_none: str = "", console: bool = True,
               session: str | None = None, timeout: float = TIMEOUT) -> list[Result]:
    import httpx
    base = base_url(url)
    results = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        steps = [("unsigned-delivery", lambda: check_unsigned(client, base)),
                 ("challenge", lambda: check_challenge(base, secret, why_none)),
                 ("health", lambda: check_health(client, base)), ("https-only", lambda: check_https(client, base))]
        if console:
            steps += [("console-anonymous", lambda: check_console(client, base, False)),
                      ("console-forged-principal", lambda: check_console(client, base, True)),
                      ("security-headers", lambda: check_headers(client, base, session))]
        for name, step in steps:
            try:
                results.append(step())
            except httpx.HTTPError as exc:  # one unreachable path fails its check, not the run
                results.append(Result(name, "FAIL", f"no answer ({type(exc).__name__})",
                                      "check the URL and that the app is running"))
    return results


@click.command("verify-deployment")
@click.option("--url", required=True, help="The app's URL, e.g. https://<app>.azurewebsites.net, or the "
              "deployment's webhookUrl output (only scheme and host are used).")
@click.option("--vault-url", envvar="KEY_VAULT_URI", help="Key Vault to read the webhook secret from with your own "
              "identity (az login). Default: KEY_VAULT_URI, the deployment's keyVaultUri output.")
@click.option("--secret-stdin", is_flag=True, help="Read the webhook secret from the first line of stdin instead.")
@click.option("--no-console", "no_console", is_flag=True, help="Skip the console checks (deployed without the console).")
@click.option("--timeout", default=TIMEOUT, show_default=True, type=click.FloatRange(1, 120),
              help="Seconds per request.")
def verify_deployment(url, vault_url, secret_stdin, no_console, timeout):
    """Check a deployed app from outside, as a person would by hand after `azd up`:

    \b
    unsigned-delivery         an unsigned POST to the webhook gets the app's own 401 JSON, not a
                              redirect to sign-in (the route is excluded from built-in authentication)
    challenge                 Preservica's subscription challenge is answered with the vault's secret
    health                    /api/health answers 200 ok without sign-in
    https-only                plain http is redirected to https
    console-anonymous         the console redirects an anonymous browser to sign-in
    console-forged-principal  ... and still does when the request carries a forged X-MS-CLIENT-PRINCIPAL
    security-headers          the console's answers carry its security headers (needs a signed-in
                              session: a browser's AppServiceAuthSession cookie value in the
                              environment variable HOOKOPS_AUTH_SESSION, never on the command line)

    Each check prints one line, PASS, FAIL (with what to do) or SKIP; the exit status is 1 when any
    check fails. The secret is read from Key Vault with DefaultAzureCredential (your `az login`, needs
    `Key Vault Secrets User` or `get` on secrets) or from stdin with --secret-stdin; it is never printed.
    No redirect is followed and every request times out.
    """
    import os
    url = base_url(url)   # a wrong URL is refused before the vault is asked
    secret, why_none = None, "no --vault-url, KEY_VAULT_URI or --secret-stdin"
    if secret_stdin:
        secret = sys.stdin.readline().strip() or None
        why_none = "stdin was empty"
    elif vault_url:
        name = settings.get("WEBHOOK_SECRET_NAME")
        try:
            secret = vault_secret(vault_url, name) or None
            why_none = f"Key Vault secret {name!r} is empty"
        except Exception as exc:  # credential or vault errors: named, never with the secret
            why_none = f"could not read Key Vault secret {name!r} ({type(exc).__name__})"
    results = run_checks(url, secret, why_none, console=not no_console,
                         session=os.environ.get("HOOKOPS_AUTH_SESSION") or None, timeout=timeout)
    for r in results:
        line = r.line()
        click.echo(line.replace(secret, "<secret>") if secret else line)
    failed = [r.name for r in results if r.status == "FAIL"]
    if failed:
        raise click.ClickException(f"{len(failed)} check(s) failed: {', '.join(failed)}")
    click.echo(f"all {sum(r.status == 'PASS' for r in results)} checks passed")
