"""What a cold start loads: the modules a fresh interpreter holds after `import function_app`."""
import functools
import json
import subprocess
import sys

from tests.support.paths import ROOT


@functools.cache   # one interpreter per test process: what indexing imports does not change during a run
def cold_start_modules() -> frozenset[str]:
    """Every module a fresh interpreter holds after `import function_app`, as the worker's indexing loads it."""
    code = "import sys, function_app; print(__import__('json').dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return frozenset(json.loads(out.stdout))
