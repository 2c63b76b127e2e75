"""The action framework, apart from the actions (handlers/actions/):

- contract.py: what an action is and everything it may use (Action, Outcome, Context, Secret, Setting, Job,
  NEEDS/USES/NO, DONE/SKIPPED/GONE, ActionError, NotFound). It sits below the actions: the one module they
  import from the framework.
- registry.py: finds the actions (every module or package in handlers/actions/), readiness, the settings list.
- runner.py: runs one action message (claim, perform, record).
- waits.py: order between actions: an action declared `after` others puts back the events they have not
  finished, on its own queue, for a while (describe after ocr and transcribe).
- functions.py: one queue function per action, generated from the registry.
registry, runner, waits and functions sit above the actions (tests/test_layout.py)."""
