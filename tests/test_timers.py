"""Every timer is set by one *_SCHEDULE setting: unset runs it on its default, set empty leaves no timer
function at all, and a value that is not six NCRONTAB fields turns that timer off and is reported."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

TIMERS = {"RECONCILE_SCHEDULE": "reconcile_timer", "PUBLISH_SWEEP_SCHEDULE": "publish_sweep_timer"}


def indexed(env: dict[str, str]) -> set[str]:
    """The function names the Python worker would index from function_app with these settings."""
    code = "import json, function_app; print(json.dumps([f.get_function_name() for f in function_app.app.get_functions()]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("name", sorted(TIMERS))
def test_setting_a_schedule_empty_turns_its_timer_off(name):
    on = indexed({k: "" if k != name else "0 0 1 * * *" for k in TIMERS})
    off = indexed({k: "" for k in TIMERS})
    assert TIMERS[name] in on and TIMERS[name] not in off


def test_every_schedule_setting_is_checked_by_settings_problems():
    from handlers.actions.registry import all_settings
    schedules = [s for s in all_settings() if s.name.endswith("_SCHEDULE")]
    assert {s.name for s in schedules} >= set(TIMERS)
    for s in schedules:
        assert s.problem({s.name: "every night"}) and s.problem({s.name: ""}) is None
