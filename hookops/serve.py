"""`hookops run`: everything a fresh machine needs to serve the app on port 7071."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading

import click

from handlers.core import hosting
from handlers.core.hosting import LOCAL_CONSOLE
from hookops import azurite, localsettings
from hookops.common import fail

ROOT = localsettings.ROOT


def _logging() -> None:
    # One line per request and per invocation, as `func start` shows; the SDKs' HTTP chatter stays out.
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("azure", "urllib3", "httpx", "pyPreservica"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(port: int = 7071, use_runner: bool | None = None) -> None:
    _logging()
    if localsettings.ensure(localsettings.PATH):
        click.echo(f"Created {localsettings.PATH.name} with a newly generated webhook secret.")
    func = shutil.which("func")
    if use_runner is None:
        use_runner = func is None
    if not use_runner and func is None:
        raise click.ClickException("Azure Functions Core Tools (`func`) is not installed; use --runner.")
    # `func start` reads local.settings.json itself and says what it skips; it gets the environment as it was.
    child_env = {**localsettings.inherited(os.environ), LOCAL_CONSOLE: "1"}
    localsettings.load(localsettings.PATH, say=click.echo if use_runner else None)
    _check_settings()
    # Local console mode, opt-in and only here: the app serves it only with development storage and
    # never where the host's rules say Azure (handlers/core/hosting.local_console).
    os.environ[LOCAL_CONSOLE] = "1"
    if hosted := hosting.hosted_by(os.environ):
        click.echo(f"The local console is off: {', '.join(hosted)} set here, which the Functions host reads as "
                   "running in Azure (see handlers/core/hosting.py). Unset it to use the console locally.")

    store = None
    if azurite.ports_in_use():
        click.echo("Azurite (or another storage emulator) already listens on 10000-10002; using it.")
    else:
        click.echo("Starting Azurite (data in .azurite/) ...")
        store = azurite.Azurite(ROOT / ".azurite", azurite.DEFAULT_PORTS).start()

    url = f"http://localhost:{port}/api/preservica/webhook"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if use_runner:
            from hookops.runner import Runner
            click.echo("Azure Functions Core Tools not found: serving with the project's local runner.")
            token = _local_token()
            runner = Runner(ROOT, port=port, admin_token=token, local_settings=False).start()
            _banner(url, port, token)
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            finally:
                runner.stop()
        else:
            _banner(url, port, None)
            proc = subprocess.Popen([func, "start", "--port", str(port)], cwd=ROOT, env=child_env)
            try:
                proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
                proc.wait()
    finally:
        if store:
            click.echo("Stopping Azurite ...")
            store.stop()
        click.echo("Stopped.")


def _check_settings() -> None:
    """Fail before starting anything when a setting cannot work (e.g. a typo in PRESERVICA_ROUTES)."""
    from handlers.pipeline import registry
    problems = registry.problems()
    if problems:
        raise click.ClickException(f"{'; '.join(problems)} (in {localsettings.PATH.name} or the environment)")


def _local_token() -> str:
    """The local console's token, also the key of the runner's admin call (hookops/host/admin.py)."""
    from handlers.console.routes import local_token
    return local_token()


def console_link(port: int) -> str:
    """The local console's link with its token (from the key the app itself reads, in local storage)."""
    from azure.core.exceptions import AzureError

    from handlers.core.errors import StorageUnavailable
    try:
        token = _local_token()
    except (AzureError, StorageUnavailable) as exc:
        fail(f"Local storage is unavailable ({type(exc).__name__}): start the app with `hookops run` first.")
    return f"http://127.0.0.1:{port}/api/console/overview?token={token}"


def _banner(url: str, port: int, admin_token: str | None) -> None:
    console = console_link(port)
    timer = (f"Run a timer:  curl -X POST -H 'x-functions-key: {admin_token}' http://127.0.0.1:{port}/admin/functions/<name>\n"
             if admin_token else "")
    click.echo(
        f"\nWebhook URL:  {url}\n"
        f"Secret:       PRESERVICA_WEBHOOK_SECRET in {localsettings.PATH.name} (never printed)\n"
        f"Console:      {console}\n"
        f"{timer}"
        "Try it:       .venv/bin/hookops send-test-event    (another terminal)\n"
        "              .venv/bin/hookops events\n"
        "Stop:         Ctrl-C\n", err=False)
    sys.stdout.flush()
