"""The per-user cache of the suite's auxiliary venvs (scripts/venv_cache.py): the key, the lock, the atomic
publication and the check before use. A fake build (a bin/python that is this interpreter) stands in for pip."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.venvs import WORKER_PINS, venv_cache, worker_pip_args

INFO = {"executable": "/opt/python3.13/bin/python3.13", "version": "3.13.1", "implementation": "cpython-313",
        "platform": "linux-x86_64", "machine": "x86_64"}

# A child process asking for the same venv as the test, with a fake build that logs itself to BUILDS and
# waits for RELEASE to exist (so the test decides when a build finishes).
CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.support.venvs import WORKER_PINS, venv_cache, worker_pip_args
root, release = Path(sys.argv[2]), Path(sys.argv[3])

def build(folder):
    with open(root / "BUILDS", "a") as log:
        log.write(f"{folder}\\n")
    while not release.exists():
        time.sleep(0.05)
    (folder / "bin").mkdir()
    (folder / "bin" / "python").symlink_to(sys.executable)

info = {"executable": "/fake/python", "version": "fake", "implementation": "x", "platform": "p", "machine": "m"}
print(venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "json", build=build, info=info))
"""


def fake_build(log: list):
    def build(folder: Path) -> None:
        log.append(folder)
        (folder / "bin").mkdir()
        (folder / "bin" / "python").symlink_to(sys.executable)
    return build


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOKOPS_VENV_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _child(tmp_path: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(cache), str(tmp_path / "RELEASE")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOOKOPS_VENV_CACHE": str(cache)})


def _wait(condition, what: str, procs=(), limit: float = 120) -> None:
    deadline = time.monotonic() + limit   # a hang guard, not a timing
    while not condition():
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, f"a child exited while waiting for {what}: {dead[0].communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {limit}s"
        time.sleep(0.05)


def _builds(cache: Path) -> list[str]:
    log = cache / "BUILDS"
    return log.read_text().split() if log.exists() else []


def _waiting_on_lock(pid: int) -> bool:
    """The process is blocked in flock: /proc/locks lists a waiter (`->`) with its pid (proc(5), /proc/locks)."""
    return any(line.split()[1:3] == ["->", "FLOCK"] and line.split()[5] == str(pid)
               for line in Path("/proc/locks").read_text().splitlines() if len(line.split()) > 5)


# ---- the key ------------------------------------------------------------------------------------

def test_key_is_stable_for_the_same_pins_and_interpreter(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("azure-functions==1.2\n")
    args = ["azure-functions-runtime", "-r", str(reqs)]
    assert venv_cache.venv_key("host313", args, INFO) == venv_cache.venv_key("host313", list(args), dict(INFO))


def test_key_follows_the_requirement_file_text_not_its_path(tmp_path):
    """Two clones (two paths, same pins) share a venv; a changed pin in the file gets a new one."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("azure-functions==1.2\n")
    b.write_text("azure-functions==1.2\n")
    key = venv_cache.venv_key("host313", ["-r", str(a)], INFO)
    assert venv_cache.venv_key("host313", ["-r", str(b)], INFO) == key
    b.write_text("azure-functions==1.3\n")
    assert venv_cache.venv_key("host313", ["-r", str(b)], INFO) != key


@pytest.mark.parametrize("change", [
    {"pip": ["checkov==3.3.31"]}, {"name": "other"}, {"executable": "/usr/bin/python3.13"},
    {"version": "3.13.2"}, {"platform": "macosx-14-arm64"}, {"machine": "aarch64"},
])
def test_key_changes_with_pins_name_interpreter_and_platform(change):
    base = venv_cache.venv_key("checkov", ["checkov==3.3.30"], INFO)
    info = {**INFO, **{k: v for k, v in change.items() if k in INFO}}
    assert venv_cache.venv_key(change.get("name", "checkov"), change.get("pip", ["checkov==3.3.30"]), info) != base



def test_the_worker_venv_pins_every_package_it_names():
    """Nothing the worker venv installs by name floats: a cached venv keeps the versions it was built with, so
    only a pin in its key says which those are (the app's own ranges are keyed by requirements.txt's text)."""
    args = worker_pip_args()
    named = [a for i, a in enumerate(args) if a != "-r" and (i == 0 or args[i - 1] != "-r")]
    assert named and all(re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", a) for a in named), named


@pytest.mark.parametrize("pin", WORKER_PINS)
def test_a_new_worker_pin_is_a_new_venv(pin):
    bumped = [f"{a}.post1" if a == pin else a for a in worker_pip_args()]
    assert venv_cache.venv_key("host313", bumped, INFO) != venv_cache.venv_key("host313", worker_pip_args(), INFO)

def test_interpreter_reports_the_base_of_a_venv():
    """Every checkout's .venv/bin/python is keyed as the interpreter it was made from."""
    info = venv_cache.interpreter(sys.executable)
    assert info["executable"] == os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    assert info["version"] == sys.version


def test_cache_root_is_under_xdg_cache_home_unless_overridden(tmp_path, monkeypatch):
    monkeypatch.delenv("HOOKOPS_VENV_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert venv_cache.cache_root() == tmp_path / "preservica-webhooks-azure" / "venvs"
    monkeypatch.setenv("HOOKOPS_VENV_CACHE", str(tmp_path / "elsewhere"))
    assert venv_cache.cache_root() == tmp_path / "elsewhere"


# ---- build once, publish whole, verify before use ----------------------------------------------

def test_built_once_then_reused(cache):
    log: list = []
    first = venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "json", build=fake_build(log), info=INFO)
    again = venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "json", build=fake_build(log), info=INFO)
    assert first == again and first.parent == cache and len(log) == 1
    assert first.is_symlink() and (first / "bin" / "python").exists()
    other = venv_cache.ensure("fake", sys.executable, ["tool==2.0"], "json", build=fake_build(log), info=INFO)
    assert other != first and len(log) == 2


def test_a_broken_cached_venv_is_rebuilt(cache):
    log: list = []
    venv = venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "json", build=fake_build(log), info=INFO)
    (venv / "bin" / "python").unlink()   # e.g. its base interpreter was removed
    assert venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "json", build=fake_build(log), info=INFO) == venv
    assert len(log) == 2 and (venv / "bin" / "python").exists()
    assert [p.name for p in (cache / ".builds").iterdir()] == [venv.resolve().name]   # the broken one removed


def test_a_venv_that_cannot_import_the_tool_is_an_error_and_not_published(cache):
    with pytest.raises(venv_cache.BuildError, match="cannot import no_such_tool"):
        venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "no_such_tool", build=fake_build([]), info=INFO)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == [".builds"]
    assert list((cache / ".builds").iterdir()) == []


def test_a_failed_real_build_is_a_build_error_with_the_reason(cache, tmp_path):
    with pytest.raises(venv_cache.BuildError, match="does not run"):
        venv_cache.ensure("fake", str(tmp_path / "no-python"), ["tool==1.0"], "json")


def test_an_explicit_destination_replaces_an_old_in_place_venv(cache, tmp_path):
    """CHECKOV_VENV still names a folder; one left by the old checkov.sh (it runs, but records no key) is replaced."""
    dest = tmp_path / "my-checkov"
    (dest / "bin").mkdir(parents=True)
    (dest / "bin" / "python").symlink_to(sys.executable)
    (dest / ".checkov-3.3.30").touch()
    log: list = []
    assert venv_cache.ensure("fake", sys.executable, ["t"], "json", dest=dest, build=fake_build(log), info=INFO) == dest
    assert dest.is_symlink() and (dest / venv_cache.KEY_FILE).exists() and len(log) == 1


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see a waiter")
def test_two_processes_asking_at_once_build_once(cache, tmp_path):
    first = _child(tmp_path, cache)
    _wait(lambda: len(_builds(cache)) == 1, "first build", [first])
    second = _child(tmp_path, cache)
    # The second must be waiting on the lock (or, were there no lock, have started a build of its own).
    _wait(lambda: _waiting_on_lock(second.pid) or len(_builds(cache)) > 1, "second process on the lock", [second])
    (tmp_path / "RELEASE").touch()
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert outs[0][0] == outs[1][0] and Path(outs[0][0].strip()).is_symlink()
    assert len(_builds(cache)) == 1, _builds(cache)


def test_a_killed_build_leaves_nothing_that_is_reused(cache, tmp_path):
    child = _child(tmp_path, cache)
    _wait(lambda: len(_builds(cache)) == 1, "the build", [child])
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    half = Path(_builds(cache)[0])
    assert half.is_dir() and not [p for p in cache.iterdir() if p.name.startswith("fake-") and p.is_symlink()]
    log: list = []
    info = {"executable": "/fake/python", "version": "fake", "implementation": "x", "platform": "p", "machine": "m"}
    venv = venv_cache.ensure("fake", sys.executable, ["tool==1.0"], "json", build=fake_build(log), info=info)
    assert len(log) == 1 and venv.resolve() != half and not half.exists()   # the lock was freed by the kernel
