"""Index a function app the way the Azure Functions Python worker does, and print the result as JSON.

    python scripts/host_index.py APP_DIR [--mode worker|sdk] [--module function_app]

--mode worker (default when `azure_functions_runtime` is importable, i.e. Python 3.13+ with the
  `azure-functions-runtime` package): runs the worker's own code, `load_binding_registry`,
  `index_function_app` and `process_indexed_function` with its function `Registry`, which checks
  every parameter against its binding. Only the gRPC message classes the host would supply are
  stood in for (see `protos`).
--mode sdk (any Python with azure-functions): imports the app, takes its one FunctionApp and
  checks each function's raw bindings against its signature with the library's own converters,
  the checks the worker makes that matter here.

Prints {"ok": true, "mode", "python", "functions": [{"name", "bindings"}]} and exits 0, or
{"ok": false, "mode", "python", "stage", "error", "traceback"} and exits 1. Run it in a fresh
process: the point is to see what a cold worker sees.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import traceback
import types
import typing
from pathlib import Path


class IndexError_(Exception):
    def __init__(self, stage: str, error: BaseException):
        super().__init__(f"{stage}: {error}")
        self.stage, self.error = stage, error


def protos_stand_in() -> types.SimpleNamespace:
    """The few gRPC message classes the worker's indexing constructs (the host normally hands them
    over); the enum numbers are those of FunctionRpc.proto's BindingInfo."""
    class Message:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    class BindingInfo(Message):
        undefined, string, binary, stream = 0, 1, 2, 3   # DataType
        out, inout = 1, 2                                 # Direction (`in` = 0 is a keyword)
    setattr(BindingInfo, "in", 0)
    return types.SimpleNamespace(BindingInfo=BindingInfo, RpcFunctionMetadata=Message,
                                 RpcRetryOptions=Message)


def index_worker(app_dir: Path, module: str) -> list[dict]:
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry
    from azure_functions_runtime.loader import index_function_app, process_indexed_function

    load_binding_registry()  # as worker_init_request does before indexing
    try:
        indexed = index_function_app(str(app_dir / f"{module}.py"))
    except Exception as exc:
        raise IndexError_("import" if isinstance(exc, ImportError) else "find_app", exc) from exc
    if not indexed:  # the worker then reports no functions: the host starts with 0 functions
        raise IndexError_("find_app", ValueError("get_functions() returned no functions"))
    try:
        metadata, _ = process_indexed_function(protos_stand_in(), Registry(), indexed, str(app_dir))
    except Exception as exc:
        raise IndexError_("validate", exc) from exc
    return [{"name": m.name, "bindings": [json.loads(b) for b in m.raw_bindings]} for m in metadata]


def _is_typing_generic(t) -> bool:
    # The worker accepts typing.List[str] but not list[str] (types.GenericAlias) inside func.Out.
    return type(t).__module__ == "typing" and typing.get_origin(t) is not None


def _check_function(fn, registry, out_cls) -> list[dict]:
    name = fn.get_function_name()
    user = fn.get_user_function()
    bindings = [json.loads(b) for b in fn.get_raw_bindings()]
    params = set(inspect.signature(user).parameters)
    hints = typing.get_type_hints(user)
    bound = {b["name"] for b in bindings} - {"$return"}
    if params - bound - {"context"}:
        raise ValueError(f"{name}: parameters not in any binding: {sorted(params - bound - {'context'})}")
    if bound - params:
        raise ValueError(f"{name}: bindings with no parameter: {sorted(bound - params)}")
    if sum(b["type"].endswith("Trigger") for b in bindings) != 1:
        raise ValueError(f"{name}: needs exactly one trigger binding")
    for b in bindings:
        is_out = str(b.get("direction", "")).upper() == "OUT"
        anno = hints.get("return" if b["name"] == "$return" else b["name"])
        if anno is None:
            continue
        converter = registry.get(b["type"])
        if b["name"] != "$return" and is_out:
            if typing.get_origin(anno) is not out_cls:
                raise ValueError(f"{name}: output binding {b['name']} must be annotated func.Out[...]")
            (anno,) = typing.get_args(anno)
            if not (isinstance(anno, type) or _is_typing_generic(anno)):
                raise ValueError(f"{name}: binding {b['name']} has invalid non-type annotation {anno!r} "
                                 "(the worker rejects builtin generics such as list[str]; use typing.List)")
        elif typing.get_origin(anno) is out_cls:
            raise ValueError(f"{name}: input binding {b['name']} is annotated func.Out")
        elif not (isinstance(anno, type) or _is_typing_generic(anno)):
            raise ValueError(f"{name}: binding {b['name']} has invalid non-type annotation {anno!r}")
        if anno in (str, bytes) and not is_out:
            continue  # the worker's generic binding
        if converter is None:
            raise ValueError(f"{name}: no converter for binding type {b['type']!r}")
        check = converter.check_output_type_annotation if is_out else converter.check_input_type_annotation
        if not check(anno):
            raise ValueError(f"{name}: annotation {anno!r} does not fit binding {b['name']} ({b['type']})")
    return bindings


def index_sdk(app_dir: Path, module: str) -> list[dict]:
    import importlib

    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise IndexError_("import", exc) from exc
    import azure.functions as func

    apps = [getattr(mod, n) for n in mod.__dir__() if isinstance(getattr(mod, n, None), func.FunctionRegister)]
    if len(apps) != 1:
        raise IndexError_("find_app", ValueError(f"expected one top-level FunctionApp, found {len(apps)}"))
    try:
        functions = apps[0].get_functions()
    except Exception as exc:
        raise IndexError_("find_app", exc) from exc
    if not functions:
        raise IndexError_("find_app", ValueError("get_functions() returned no functions"))
    registry = func.get_binding_registry()
    out_cls = typing.get_origin(func.Out[str])
    try:
        return [{"name": f.get_function_name(), "bindings": _check_function(f, registry, out_cls)}
                for f in functions]
    except Exception as exc:
        raise IndexError_("validate", exc) from exc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("app_dir", type=Path)
    p.add_argument("--mode", choices=("worker", "sdk"))
    p.add_argument("--module", default="function_app")
    a = p.parse_args(argv)
    app_dir = a.app_dir.resolve()
    mode = a.mode
    if mode is None:
        try:
            import azure_functions_runtime  # noqa: F401
            mode = "worker"
        except ImportError:
            mode = "sdk"
    sys.path[0] = str(app_dir)  # the worker has the app folder first on sys.path (not this script's), as cwd
    os.chdir(app_dir)
    result = {"mode": mode, "python": sys.version.split()[0]}
    try:
        functions = (index_worker if mode == "worker" else index_sdk)(app_dir, a.module)
        result.update(ok=True, functions=functions)
    except IndexError_ as exc:
        result.update(ok=False, stage=exc.stage, error=f"{type(exc.error).__name__}: {exc.error}",
                      traceback="".join(traceback.format_exception(exc.error)))
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
