"""The action framework, apart from the actions (handlers/actions/):

- contract.py: what an action is and everything it may use (Action, Outcome, Context, Secret, Setting, Job,
  NEEDS/USES/NO, DONE/SKIPPED/GONE, ActionError, NotFound). It sits below the actions: the one module they
  import from the framework.
- registry.py: finds the actions (every module or package in handlers/actions/), readiness, the settings list.
- runner.py: runs one action message (claim, perform, record).
- functions.py: one queue function per action, generated from the registry.
registry, runner and functions sit above the actions (tests/test_layout.py)."""
