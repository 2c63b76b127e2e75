"""The app's functions as the Python worker learns them (the module's one FunctionApp,
`get_functions()`, each function's raw bindings), and calling one as the worker does."""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import sys
import typing
from pathlib import Path

import azure.functions as func

SUPPORTED = {"httpTrigger", "http", "queueTrigger", "timerTrigger"}


class RunnerError(RuntimeError):
    """The app cannot be served: what the host would refuse, or what this runner does not do."""


class Out:
    """What the worker passes for a `func.Out[...]` parameter."""
    value = None

    def set(self, value):
        self.value = value

    def get(self):
        return self.value


class Function:
    """One indexed function, described only by its own raw bindings."""
    def __init__(self, fn):
        self.name = fn.get_function_name()
        self.user = fn.get_user_function()
        self.bindings = [json.loads(b) for b in fn.get_raw_bindings()]
        for b in self.bindings:
            if b.get("type") not in SUPPORTED:
                raise RunnerError(f"function {self.name!r}: binding {b.get('name')!r} of type "
                                  f"{b.get('type')!r} is not supported by the local runner")
        triggers = [b for b in self.bindings if b["type"].endswith("Trigger")]
        if len(triggers) != 1:
            raise RunnerError(f"function {self.name!r} has {len(triggers)} triggers, needs exactly one")
        self.trigger = triggers[0]
        self.outputs = [b for b in self.bindings if str(b.get("direction", "")).lower() == "out"]
        params = set(inspect.signature(self.user).parameters)
        bound = {b["name"] for b in self.bindings} - {"$return"}
        if params != bound:  # the worker refuses both kinds of mismatch (its `context` is not supported here)
            raise RunnerError(f"function {self.name!r}: parameters {sorted(params)} do not match "
                              f"bindings {sorted(bound)}")
        self.trigger_type = typing.get_type_hints(self.user).get(self.trigger["name"])


def route_regex(prefix: str, route: str) -> re.Pattern:
    """ASP.NET-style templates: {name}, {name:constraint} (constraint ignored), {name?}, {*rest}."""
    rx = "/" + re.escape(prefix) if prefix else ""
    for seg in filter(None, route.strip("/").split("/")):
        m = re.fullmatch(r"\{(\*?)(\w+)(?::[^}?]*)?(\??)\}", seg)
        if not m:
            rx += "/" + re.escape(seg)
        elif m[1] or m[3]:
            rx += f"(?:/(?P<{m[2]}>{'.*' if m[1] else '[^/]+'}))?"
        else:
            rx += f"/(?P<{m[2]}>[^/]+)"
    return re.compile(rx + "/?", re.IGNORECASE)  # the host's routing ignores case


def load(app_dir: Path, module: str) -> dict[str, Function]:
    """Import the app and learn its functions from its own bindings, as the worker does."""
    # A fresh import with the app folder first, as in a new worker (get_functions() works once
    # per FunctionApp); then sys.modules and sys.path are put back (the app folder kept last for
    # the app's later imports), so that apps loaded in one process do not shadow each other.
    app, saved_path, before = str(app_dir), list(sys.path), sys.modules.pop(module, None)
    sys.path.insert(0, app)
    try:
        mod = importlib.import_module(module)
    finally:
        sys.path[:] = saved_path + ([app] if app not in saved_path else [])
        sys.modules.pop(module, None)
        if before is not None:
            sys.modules[module] = before
    apps = [v for v in vars(mod).values() if isinstance(v, func.FunctionRegister)]
    if len(apps) != 1:
        raise RunnerError(f"{module}.py must define exactly one FunctionApp, found {len(apps)}")
    functions = {f.name: f for f in map(Function, apps[0].get_functions())}
    if not functions:
        raise RunnerError(f"{module}.py defines no functions (the host would find 0 functions)")
    return functions


def invoke(fn: Function, trigger_value, loop: asyncio.AbstractEventLoop) -> dict:
    """Call the function; return {output binding name: value}."""
    outs = {b["name"]: Out() for b in fn.outputs if b["name"] != "$return"}
    result = fn.user(**{fn.trigger["name"]: trigger_value}, **outs)
    if inspect.isawaitable(result):  # async def runs on one shared loop, as in the worker
        result = asyncio.run_coroutine_threadsafe(result, loop).result()
    return {name: o.get() for name, o in outs.items()} | {"$return": result}
