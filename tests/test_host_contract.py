"""The app must index the way the Azure Functions Python worker indexes it.

An import error, no FunctionApp, no functions or a parameter the worker rejects all leave the host
with "0 functions found" and nothing to tell why. Each check runs scripts/host_index.py in a fresh
process: under this suite's Python with the azure-functions library's checks (`sdk`), and under
Python 3.13 with the worker's own indexing code from `azure-functions-runtime` (`worker`), in a
venv built once per machine in the per-user cache of scripts/venv_cache.py and reused. The toy apps
prove each check can fail.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.venvs import WORKER_PINS, venv_cache, worker_pip_args

ROOT = Path(__file__).resolve().parent.parent
TOYS = Path(__file__).resolve().parent / "support" / "toyapp"
SCRIPT = ROOT / "scripts" / "host_index.py"


def _runs_313(candidate: str) -> bool:
    try:
        out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def find_python313() -> str | None:
    """A Python 3.13 that actually runs: `python3.13` on PATH (a pyenv shim may exist but refuse),
    then pyenv's installed versions."""
    candidates = [shutil.which("python3.13")]
    roots = [os.environ.get("PYENV_ROOT")]
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        roots.append(out.stdout.strip() if out.returncode == 0 else None)
    roots.append(str(Path.home() / ".pyenv"))
    for root in filter(None, roots):
        candidates += sorted(glob.glob(os.path.join(root, "versions", "3.13*", "bin", "python3.13")), reverse=True)
    return next((c for c in dict.fromkeys(filter(None, candidates)) if _runs_313(c)), None)


@pytest.fixture(scope="session")
def python313() -> str:
    """The 3.13 venv's interpreter, with the worker package, azure-functions and the app's requirements."""
    base = find_python313()
    if base is None:
        pytest.skip("no Python 3.13 found (tried python3.13 on PATH and pyenv's versions/3.13*): "
                    "the worker-indexing check needs one")
    t0 = time.monotonic()
    try:
        venv = venv_cache.ensure("host313", base, worker_pip_args(), "azure_functions_runtime")
    except venv_cache.BuildError as e:
        pytest.skip(f"could not build the Python 3.13 worker venv with {base}: {e}")
    print(f"\nworker venv {venv} ready in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    return str(venv / "bin" / "python")


def _app_env() -> dict:
    """The settings an app sees at import: local.settings.json's Values if present (as `func start`
    would give them), else storage pointed at the development default."""
    env = {**os.environ, "FUNCTIONS_WORKER_RUNTIME": "python"}
    settings = ROOT / "local.settings.json"
    values = json.loads(settings.read_text()).get("Values", {}) if settings.exists() else {}
    defaults = {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "TOY_RECORD_QUEUE": "toy-record", "TOY_FAIL_QUEUE": "toy-fail"}  # the good toy app's
    for k, v in {**defaults, **values}.items():
        env.setdefault(k, str(v))
    env.pop("PYTHONPATH", None)  # the worker sees the app folder and its packages, nothing of ours
    return env


def index(python: str, mode: str, app_dir: Path) -> dict:
    out = subprocess.run([python, str(SCRIPT), str(app_dir), "--mode", mode], capture_output=True,
                         text=True, timeout=300, env=_app_env(), cwd=app_dir)
    try:
        result = json.loads(out.stdout)
    except ValueError:
        pytest.fail(f"host_index.py printed no JSON (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    assert (out.returncode == 0) == result["ok"], out.stderr
    result["stderr"] = out.stderr
    return result


@pytest.fixture(params=["sdk", "worker"])
def indexer(request):
    """index(app_dir) under this suite's Python (`sdk`) or the real worker code on 3.13 (`worker`)."""
    if request.param == "sdk":
        return lambda app_dir: index(sys.executable, "sdk", app_dir)
    python = request.getfixturevalue("python313")
    return lambda app_dir: index(python, "worker", app_dir)


def describe(result: dict) -> str:
    return f"[{result['mode']} on {result['python']}] {result.get('stage')}: {result.get('error')}\n" \
           f"{result.get('traceback', '')}{result['stderr'][-3000:]}"


# ---- the toy apps: each check can fail, and a good app passes ---------------------------------

def test_the_worker_venv_holds_the_pinned_versions(python313):
    """The cached venv has what its key names: each pin's version, asked of the venv's own metadata."""
    names = [pin.split("==")[0] for pin in WORKER_PINS]
    code = "import json, sys; from importlib.metadata import version; print(json.dumps([version(n) for n in sys.argv[1:]]))"
    out = subprocess.run([python313, "-c", code, *names], capture_output=True, text=True, timeout=120, check=True)
    assert dict(zip(names, json.loads(out.stdout), strict=True)) == dict(p.split("==") for p in WORKER_PINS)

def test_good_toy_app_indexes(indexer):
    result = indexer(TOYS / "good")
    assert result["ok"], describe(result)
    assert {f["name"] for f in result["functions"]} == {"echo", "item", "boom", "record", "always_fail"}


@pytest.mark.parametrize("app, stage, error", [
    ("import_error", "import", "ModuleNotFoundError"),
    ("no_functions", "find_app", "no functions"),
    ("out_builtin_list", "validate", "non-type annotation"),   # func.Out[list[str]]
    ("unbound_param", "validate", "message"),                 # arg_name="msg", parameter `message`
])
def test_broken_toy_apps_are_reported(indexer, app, stage, error):
    result = indexer(TOYS / app)
    assert not result["ok"], f"{app} indexed although the worker refuses it"
    assert result["stage"] == stage, describe(result)
    assert error in result["error"], describe(result)


# ---- the real app ------------------------------------------------------------------------------

def _real_app_result(indexer) -> dict:
    # fail, never skip: an app that is missing or does not index is exactly what this guards against
    assert (ROOT / "function_app.py").exists(), "function_app.py is missing: the host would find 0 functions"
    result = indexer(ROOT)
    assert result["ok"], describe(result)
    return result


def test_real_app_indexes_with_webhook_and_queue_functions(indexer):
    functions = _real_app_result(indexer)["functions"]
    triggers = {f["name"]: next(b for b in f["bindings"] if b["type"].endswith("Trigger")) for f in functions}
    http = [t for t in triggers.values() if t["type"] == "httpTrigger"]
    assert [t.get("route") for t in http].count("preservica/webhook") == 1, triggers
    webhook = next(t for t in http if t.get("route") == "preservica/webhook")
    assert "POST" in [m.upper() for m in webhook.get("methods") or ["POST"]], webhook
    assert any(t["type"] == "queueTrigger" for t in triggers.values()), f"no queue-triggered function: {triggers}"
    # The reconciler's timer, with the default schedule the worker accepted.
    assert triggers["reconcile_timer"]["type"] == "timerTrigger", triggers
    assert triggers["reconcile_timer"]["schedule"] == "0 */15 * * * *"


@pytest.mark.parametrize("app", ["toy", "real"])
def test_runner_sees_what_the_worker_sees(indexer, app):
    """The local runner must serve exactly the functions and bindings the worker indexes."""
    app_dir = TOYS / "good" if app == "toy" else ROOT
    result = indexer(app_dir) if app == "toy" else _real_app_result(indexer)
    assert result["ok"], describe(result)
    expected = {f["name"]: sorted(json.dumps(b, sort_keys=True) for b in f["bindings"])
                for f in result["functions"]}
    code = ("import json, sys; from pathlib import Path; from hookops.runner import Runner; "
            "fns = Runner(Path(sys.argv[1])).load(); "
            "print(json.dumps({n: sorted(json.dumps(b, sort_keys=True) for b in f.bindings) for n, f in fns.items()}))")
    env = {**_app_env(), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(app_dir)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == expected
