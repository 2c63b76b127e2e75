"""ocfl-py, the maintained OCFL validator the custody tests hold every object to, run from its own venv in the
suite's per-user cache (scripts/venv_cache.py). Not in requirements-dev.txt: its dependencies bring aiohttp
(ocfl-py -> fs-s3fs/s3fs -> aiobotocore), and with aiohttp installed azure-core's transport package imports
it on the intake's first storage call (azure/core/pipeline/transport/__init__.py __getattr__, reached from
azure/storage/queue/_shared/authentication.py), so the app's venv would load what Azure never installs and
bench row 1 would measure it."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.venvs import venv_cache

PIP = ["ocfl-py>=2.1,<3"]
_VALIDATE = """import json, sys
from ocfl.validator import Validator
out = []
for path in sys.argv[1:]:
    v = Validator(log_warnings=True)
    out.append([bool(v.validate_object(path)), v.status_str()])
print(json.dumps(out))
"""


@functools.cache
def _python() -> Path:
    try:
        return venv_cache.ensure("ocfl", sys.executable, PIP, "ocfl") / "bin" / "python"
    except venv_cache.BuildError as e:
        pytest.skip(f"could not build ocfl-py's venv to validate OCFL objects with: {e}")


def validate(objects: list[Path]) -> list[tuple[bool, str]]:
    """(valid, ocfl-py's status text) for each object folder, in one run of ocfl-py's Validator."""
    done = subprocess.run([str(_python()), "-c", _VALIDATE, *map(str, objects)], capture_output=True, text=True,
                          timeout=600, check=True)
    return [(ok, status) for ok, status in json.loads(done.stdout)]
