"""scripts/venv_cache.py (the per-user cache of the suite's auxiliary venvs), loaded from its file: scripts/ is
no package, and the script must stay runnable by any python3 on its own (scripts/checkov.sh calls it so).
Also what the Python 3.13 worker venv (tests/test_host_contract.py) installs."""
import importlib.util
import sys

from tests.support.paths import ROOT

_spec = importlib.util.spec_from_file_location("venv_cache", ROOT / "scripts" / "venv_cache.py")
assert _spec and _spec.loader
venv_cache = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("venv_cache", venv_cache)
_spec.loader.exec_module(venv_cache)

# The worker's packages at the versions this suite was last checked with, so a cached venv holds what its key
# names: unpinned, it kept whatever was newest the day it was built. Both need Python >= 3.13 (their
# Requires-Python); azure-functions 2.x is the line for 3.13+, where the app's .venv (3.11) has 1.x (<3.13).
# A new pin changes the key, so the next run builds a new venv beside the old one.
WORKER_PINS = ("azure-functions-runtime==1.3.0", "azurefunctions-extensions-base==1.2.0", "azure-functions==2.3.0")


def worker_pip_args() -> list[str]:
    """What pip installs into the 3.13 worker venv: the pins and the app's requirements (their text is keyed)."""
    return [*WORKER_PINS, "-r", str(ROOT / "requirements.txt")]
