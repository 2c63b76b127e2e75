"""The test suite's auxiliary virtual environments, built once per machine in a per-user cache.

checkov's venv (scripts/checkov.sh) and the Python 3.13 worker venv (tests/test_host_contract.py) take minutes
to build, so they live outside the checkout, where a fresh clone finds them:

    ${HOOKOPS_VENV_CACHE:-${XDG_CACHE_HOME:-~/.cache}/preservica-webhooks-azure/venvs}/<name>-<key>

<key> is a sha256 prefix of what decides the venv's content: the pip arguments (a `-r FILE` by the file's text),
the base interpreter's real path and version, and the platform. A change of pins gives a new venv; old ones stay
until the cache folder is removed (docs/development.md).

Concurrent runs (two xdist workers, two clones) take an flock on <name>-<key>.lock, so one builds and the other
waits and reuses. A build goes into .builds/<name>-<key>-<random>/ and is published by renaming a symlink onto
<name>-<key> only once it is complete and verified: a killed build leaves no <name>-<key>, and its folder is
removed by the next build. (The folder itself never moves: a venv's scripts name its path in their shebangs, and
"virtual environments are not considered as movable or copyable", https://docs.python.org/3/library/venv.html.)
Before use a venv is verified (its python runs, imports the expected module, and records the same key); else it
is rebuilt.

    python3 scripts/venv_cache.py NAME --python PY --import MODULE [--dest PATH] -- PIP_ARG...

prints the venv's path, or exits 1 with the reason. Only the standard library: it runs under any python3.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

KEY_FILE = ".venv-cache-key"
KEY_CHARS = 16
INFO = ("import json, os, platform, sys, sysconfig; print(json.dumps({'executable': os.path.realpath("
        "getattr(sys, '_base_executable', sys.executable)), 'version': sys.version, 'implementation': "
        "sys.implementation.cache_tag, 'platform': sysconfig.get_platform(), 'machine': platform.machine()}))")


class BuildError(Exception):
    """The venv could not be built or does not work; the message says why."""


def cache_root() -> Path:
    if os.environ.get("HOOKOPS_VENV_CACHE"):
        return Path(os.environ["HOOKOPS_VENV_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "preservica-webhooks-azure" / "venvs"


def interpreter(python: str) -> dict:
    """The base interpreter's real path, version and platform, asked of the interpreter itself. A venv's python
    reports its base in sys._base_executable (private; what CPython's Lib/venv/__init__.py creates venvs from),
    so every checkout's .venv/bin/python gives the same answer."""
    try:
        out = subprocess.run([python, "-c", INFO], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"{python} does not run: {e}") from e
    if out.returncode != 0:
        raise BuildError(f"{python} does not run: {out.stderr[-800:]}")
    return json.loads(out.stdout)


def key_material(pip_args: list[str]) -> list[str]:
    """The pip arguments, each `-r FILE` replaced by the file's text (where the checkout is does not matter)."""
    material, args = [], iter(pip_args)
    for arg in args:
        if arg in ("-r", "--requirement"):
            material.append("requirements:" + Path(next(args)).read_text())
        else:
            material.append(arg)
    return material


def venv_key(name: str, pip_args: list[str], info: dict) -> str:
    text = json.dumps({"name": name, "pip": key_material(pip_args), "python": info}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def verify(venv: Path, module: str, key: str) -> bool:
    """The venv was built for this key, its python runs and imports the tool."""
    try:
        if (venv / KEY_FILE).read_text() != key:
            return False
        out = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {module}"], capture_output=True,
                             timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def pip_build(python: str, pip_args: list[str]) -> Callable[[Path], None]:
    """The real build: `python -m venv` and `pip install` into the given folder."""
    def build(folder: Path) -> None:
        for step in ([python, "-m", "venv", str(folder)],
                     [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
                      "--disable-pip-version-check", *pip_args]):
            out = subprocess.run(step, capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                raise BuildError(f"{' '.join(step[:5])} failed:\n{(out.stderr or out.stdout)[-2000:]}")
    return build


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def ensure(name: str, python: str, pip_args: list[str], module: str, *, dest: Path | None = None,
           build: Callable[[Path], None] | None = None, info: dict | None = None) -> Path:
    """The path of a working venv for these arguments, built if no verified one exists (see the module doc)."""
    info = info if info is not None else interpreter(python)
    key = venv_key(name, pip_args, info)
    link = dest if dest is not None else cache_root() / f"{name}-{key[:KEY_CHARS]}"
    if verify(link, module, key):
        return link
    link.parent.mkdir(parents=True, exist_ok=True)
    builds = link.parent / ".builds"
    builds.mkdir(exist_ok=True)
    with open(link.parent / f"{link.name}.lock", "w") as lock:
        # Released when the file closes, or by the kernel when the process dies (flock(2): the lock goes with the
        # last descriptor of the open file description).
        fcntl.flock(lock, fcntl.LOCK_EX)
        if verify(link, module, key):      # another process built it while we waited
            return link
        current = link.resolve() if link.is_symlink() else None
        for stale in builds.glob(f"{link.name}-*"):   # killed builds and a broken venv; the lock is ours
            if stale != current:
                _remove(stale)
        folder = Path(tempfile.mkdtemp(prefix=f"{link.name}-", dir=builds))
        try:
            (build or pip_build(python, pip_args))(folder)
            (folder / KEY_FILE).write_text(key)
            if not verify(folder, module, key):
                raise BuildError(f"the new venv's python cannot import {module}")
        except BaseException:
            _remove(folder)
            raise
        staged = link.parent / f".{link.name}.{os.getpid()}.link"
        _remove(staged)
        staged.symlink_to(folder)
        if link.exists() and not link.is_symlink():
            _remove(link)                   # an old in-place venv (a CHECKOV_VENV from before the cache)
        os.replace(staged, link)   # rename(2) is atomic: the name points to a complete venv or to nothing
        if current is not None and current != folder:
            _remove(current)
    return link


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--python", default=sys.executable, help="the base interpreter")
    parser.add_argument("--import", dest="module", required=True, help="a module the venv must import")
    parser.add_argument("--dest", type=Path, help="use this path instead of the cache (e.g. CHECKOV_VENV)")
    parser.add_argument("pip_args", nargs="+", help="what pip installs (after --)")
    args = parser.parse_args(argv)
    try:
        print(ensure(args.name, args.python, args.pip_args, args.module, dest=args.dest))
    except BuildError as e:
        print(f"venv_cache.py: could not build the {args.name} venv: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
