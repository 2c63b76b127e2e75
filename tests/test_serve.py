"""`hookops run` (hookops/serve.py) as a person starts it, in a process of its own with the project's
runner and a real Azurite: it names the local settings the environment overrides, turns the console's
local mode on (and only it does), and prints the link and the admin call that work."""
import json
import os
import re
import signal
import subprocess
import sys
import threading

import httpx

from handlers.core import hosting
from hookops import azurite as az
from tests.support.paths import ROOT

WAIT = 120  # the app's first import and the runner's start, on a busy machine
# What the child runs: local.settings.json from the test's folder; Azurite is the test's (no default ports).
CHILD = ("import sys, pathlib; from hookops import azurite, localsettings; "
         "localsettings.PATH = pathlib.Path(sys.argv[1]); azurite.ports_in_use = lambda *a, **k: True; "
         "from hookops.cli import main; main(['run', '--runner', '--port', sys.argv[2]])")


def _start(tmp_path, azurite, port):
    settings = tmp_path / "local.settings.json"
    example = json.loads((ROOT / "local.settings.json.example").read_text())
    example["Values"].update({"PRESERVICA_WEBHOOK_SECRET": "s" * 32, "REQUESTS_CA_BUNDLE": "/home/me/local-ca.pem"})
    settings.write_text(json.dumps(example))
    env = {k: v for k, v in os.environ.items() if k not in hosting.HOSTED and k != hosting.LOCAL_CONSOLE}
    env.update({"AzureWebJobsStorage": azurite.connection_string, "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca.crt",
                "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
                "PRESERVICA_SERVER": "127.0.0.1:9", "PRESERVICA_PROTOCOL": "http"})  # the reconciler reaches nothing
    return subprocess.Popen([sys.executable, "-c", CHILD, str(settings), str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _read_until(proc, needle: str) -> list[str]:
    lines, found = [], threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if needle in line:
                found.set()
                return
    threading.Thread(target=read, daemon=True).start()
    if not found.wait(WAIT):
        raise AssertionError(f"`hookops run` never printed {needle!r}: {lines}")
    return lines


def test_hookops_run_names_overridden_settings_and_serves_the_local_console_and_admin_call(tmp_path, azurite):
    port = az.free_port()
    proc = _start(tmp_path, azurite, port)
    try:
        out = _read_until(proc, "Run a timer:")
        assert len([line for line in out if line.startswith("Skipping")]) == 4, out  # only what the shell set
        assert ("Skipping 'REQUESTS_CA_BUNDLE' from local settings as it's already defined in current environment "
                "variables.") in out
        assert "Skipping 'AzureWebJobsStorage' from local settings as it's already defined in current environment " \
               "variables." in out
        link = next(re.search(r"http://\S+", line)[0] for line in out if line.startswith("Console:"))
        key = next(re.search(r"x-functions-key: (\S+)'", line)[1] for line in out if line.startswith("Run a timer:"))
        with httpx.Client(timeout=30) as client:
            opened = client.get(link)                        # local mode is on: the link's token is taken
            assert opened.status_code == 303 and "console_local=" in opened.headers["set-cookie"]
            assert client.post(f"http://127.0.0.1:{port}/admin/functions/reconcile_timer",
                               headers={"Origin": "https://evil.example"}).status_code == 403
            assert client.post(f"http://127.0.0.1:{port}/admin/functions/reconcile_timer",
                               headers={"x-functions-key": key}).status_code == 202
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
