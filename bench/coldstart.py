"""Row 1: what the app adds to a cold start, and what the HTTP intake imports on first use.

Each sample is a fresh interpreter that times one import statement (interpreter start-up excluded;
the process's whole wall time is kept too). The two imports alternate, after one warm-up each,
so that disk caches and machine load treat them alike.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

from bench.common import PYTHON, ROOT, SECRET, median, ratio

_TIME_IMPORT = ("import time\nt = time.perf_counter()\nimport {module}\n"
                "print(time.perf_counter() - t)\n")

# Runs in a fresh interpreter: import the app as the worker does, then serve one signed delivery
# through intake.handle with storage on Azurite, and report which modules that first call loaded.
_INTAKE_IMPORTS = r'''
import json, os, sys, sysconfig, time
import azure.functions
base = set(sys.modules)
import function_app
after_app = set(sys.modules)
from handlers import intake
from handlers.core import signature
from hookops.doubles.deliveries import delivery, encode
body = encode(delivery("FULL_TEXT_INDEXED", refs=["bench-io-00000"]))
sig = signature.sign(os.environ["PRESERVICA_WEBHOOK_SECRET"], body)
req = azure.functions.HttpRequest("POST", "http://127.0.0.1/api/preservica/webhook", body=body,
                                  headers={"Preservica-Signature": sig, "Content-Type": "application/json"})
t = time.perf_counter()
resp = intake.handle(req)
first = time.perf_counter() - t
t = time.perf_counter()
resp2 = intake.handle(req)
second = time.perf_counter() - t
loaded = set(sys.modules) - after_app
site = {os.path.realpath(p) for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}

def package(name):
    """The distribution-level package of a module: one level down through namespace packages (azure.*)."""
    parts = name.split(".")
    for n in range(1, len(parts) + 1):
        prefix = ".".join(parts[:n])
        mod = sys.modules.get(prefix)
        if mod is None or getattr(mod, "__file__", None) is not None:
            return prefix
    return name

def third_party(name):
    f = getattr(sys.modules.get(name), "__file__", None)
    return bool(f) and any(os.path.realpath(f).startswith(s + os.sep) for s in site)

def packages(names):
    return sorted({package(n) for n in names if third_party(n)})

print(json.dumps({"status": resp.status_code, "status2": resp2.status_code, "first_ms": first * 1000,
                  "second_ms": second * 1000, "intake_third_party": packages(loaded),
                  "intake_new_modules": len(loaded),
                  "app_third_party": packages(after_app - base), "app_new_modules": len(after_app - base)}))
'''


def _clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PRESERVICA", "AzureWebJobs"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def time_import(module: str) -> tuple[float, float]:
    """(seconds for the import statement, seconds for the whole process) in a fresh interpreter."""
    t = time.perf_counter()
    out = subprocess.run([PYTHON, "-c", _TIME_IMPORT.format(module=module)], cwd=ROOT, env=_clean_env(),
                         capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.strip()), time.perf_counter() - t


def intake_imports(storage: str) -> dict:
    env = _clean_env({"AzureWebJobsStorage": storage, "PRESERVICA_WEBHOOK_SECRET": SECRET})
    out = subprocess.run([PYTHON, "-c", _INTAKE_IMPORTS], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"intake import probe failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(samples: int, storage: str, progress=print) -> dict:
    for module in ("azure.functions", "function_app"):   # warm-up: pyc files, disk cache
        time_import(module)
    app, base, app_wall, base_wall, ratios = [], [], [], [], []
    for _ in range(samples):
        a, aw = time_import("function_app")
        b, bw = time_import("azure.functions")
        app.append(a)
        base.append(b)
        app_wall.append(aw)
        base_wall.append(bw)
        ratios.append(ratio(a, b))
    progress(f"  cold start: function_app {median(app) * 1000:.0f} ms, azure.functions {median(base) * 1000:.0f} ms")
    probe = intake_imports(storage)
    return {"samples": samples, "app_ms": median(app) * 1000, "base_ms": median(base) * 1000,
            "ratio": median(ratios), "ratio_of_medians": ratio(median(app), median(base)),
            "app_process_ms": median(app_wall) * 1000, "base_process_ms": median(base_wall) * 1000,
            "app_ms_all": [x * 1000 for x in app], "base_ms_all": [x * 1000 for x in base], **probe}
