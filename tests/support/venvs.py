"""scripts/venv_cache.py (the per-user cache of the suite's auxiliary venvs), loaded from its file: scripts/ is
no package, and the script must stay runnable by any python3 on its own (scripts/checkov.sh calls it so)."""
import importlib.util
import sys

from tests.support.paths import ROOT

_spec = importlib.util.spec_from_file_location("venv_cache", ROOT / "scripts" / "venv_cache.py")
assert _spec and _spec.loader
venv_cache = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("venv_cache", venv_cache)
_spec.loader.exec_module(venv_cache)
