"""The layout holds: imports only go downwards (in handlers/: stages -> pipeline (registry, runner,
functions) -> actions -> pipeline.contract -> clients -> core; in hookops/, cli -> commands -> doubles,
host -> common; hookops above all of handlers), no cycles, no file too long to read, and an action is
one module: the registry finds it, the dispatcher routes and readiness-checks it, the queue functions
include it, the runner runs and journals it."""
import ast
import dataclasses
import sys
import textwrap
from pathlib import Path

import pytest

from handlers.clients import journal
from handlers.core import messages
from handlers.pipeline import contract, registry
from hookops.doubles.deliveries import delivery, encode
from tests.support.coldstart import cold_start_modules
from tests.support.paths import ROOT

HANDLERS = ROOT / "handlers"
# The framework (handlers/pipeline/) straddles the actions: its contract, all an action imports of it, sits
# below them; the registry, runner and queue functions, which find and run them, above. A key names a
# package or one module of it (the longer key wins); modules directly in handlers/, and console/, are the
# stages: STAGES.
LAYER = {"core": 0, "clients": 1, "pipeline.contract": 2, "actions": 3, "pipeline": 4}
STAGES = 5
# hookops/, the operator's tools, sits above every layer of handlers/ (which never imports it): what
# commands share at the bottom, then the local host and the doubles, then the commands (every module
# not named here), then the group that registers them.
HOOKOPS = 10
HOOKOPS_LAYER = {"common": 0, "localsettings": 0, "hostconfig": 0, "azurite": 0, "package": 0,
                 "host": 1, "runner": 1, "doubles": 1, "cli": 3, "__main__": 3}
COMMANDS = 2


OURS = ("handlers", "hookops")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    top, *rest = module.split(".")
    if top == "hookops":
        return HOOKOPS + (HOOKOPS_LAYER.get(rest[0], COMMANDS) if rest else 0)
    if not rest:
        return STAGES
    return LAYER.get(".".join(rest[:2]), LAYER.get(rest[0], STAGES))


def imports(path: Path) -> set[str]:
    """Every handlers or hookops module this file imports, at any depth (function-level imports count too)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(OURS)}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(OURS):
                continue
            for alias in node.names:  # `from handlers.core import settings` imports handlers.core.settings
                sub = f"{target}.{alias.name}"
                path = ROOT / Path(*sub.split("."))   # a module, or a package (an action may be one)
                found.add(sub if path.with_suffix(".py").exists() or (path / "__init__.py").exists() else target)
    return found - {here}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for top in OURS for p in (ROOT / top).rglob("*.py")}


def test_imports_only_go_downwards():
    upward = [f"{m} imports {t}" for m, targets in graph().items() for t in targets
              if layer(t) > layer(m) and not t.endswith("__init__")]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}

    def visit(m, path):
        if state.get(m) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for t in sorted(g.get(m, ())):
            if t in g and t.rsplit(".", 1)[0] != m:   # a package importing its own submodule is not a cycle
                visit(t, path + [m])
        state[m] = 2
    for m in sorted(g):
        visit(m, [])


def test_commands_import_no_other_command():
    """What two commands share belongs in hookops.common (or handlers/), not in one of them."""
    def is_command(m):
        return m.startswith("hookops.") and layer(m) == HOOKOPS + COMMANDS
    across = [f"{m} imports {t}" for m, targets in graph().items() if is_command(m) for t in targets
              if is_command(t) and t.split(".")[1] != m.split(".")[1]]
    assert not across, "\n".join(across)


def test_the_walk_sees_real_imports():
    g = graph()
    assert "handlers.core.settings" in g["handlers.clients.storage"]
    assert "handlers.pipeline.registry" in g["handlers.dispatch"]      # a function-level import
    assert "hookops.common" in g["hookops.backfill"]
    assert {"hookops.backfill", "hookops.poison"} <= g["hookops.cli"]
    assert "handlers.backfill" in g["hookops.backfill"]                # hookops may import handlers
    assert "hookops.host.http" in g["hookops.host.runner"]
    assert "handlers.actions.teams.cards" in g["handlers.actions.teams"]    # `from . import cards`, in a function


def test_the_framework_straddles_the_actions():
    """An action may import the contract, never the registry, runner or queue functions that run it."""
    assert layer("handlers.clients.journal") < layer("handlers.pipeline.contract") < layer("handlers.actions.teams") \
        < layer("handlers.pipeline.registry") == layer("handlers.pipeline.runner") < layer("handlers.dispatch")
    assert layer("handlers.actions.publish.source") == layer("handlers.actions.publish")   # an action's own helpers


def test_actions_hold_only_actions():
    """Every module or package in handlers/actions/ is an action: the framework lives in handlers/pipeline/."""
    found = {p.stem if p.suffix == ".py" else p.name for p in (HANDLERS / "actions").iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert found == set(registry.names())


def test_actions_import_no_other_action():
    """What two actions share lives in core or clients: an action (module or package) reaches no other."""
    def action_of(m):
        parts = m.split(".")
        return parts[2] if len(parts) > 2 and parts[:2] == ["handlers", "actions"] else None
    across = [f"{m} imports {t}" for m, targets in graph().items() if action_of(m) for t in targets
              if action_of(t) and action_of(t) != action_of(m)]
    assert not across, "\n".join(across)


def test_the_layers_order_hookops_above_handlers():
    assert layer("handlers.reconcile") < layer("hookops.common") < layer("hookops.host.runner") \
        < layer("hookops.backfill") < layer("hookops.cli")
    assert layer("hookops.doubles.preservica.double") == layer("hookops.host.http")


def test_the_cli_group_registers_its_commands():
    """Command modules define their commands without importing the group; the group adds them."""
    from hookops import backfill, cli
    assert cli.main.commands["backfill"] is backfill.backfill
    assert cli.main.commands["reconcile"] is backfill.reconcile_cmd


@pytest.mark.parametrize("folder", ["handlers", "hookops", "bench"])
def test_no_file_over_300_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def test_bench_imports_nothing_from_tests():
    for path in (ROOT / "bench").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + \
                [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n == "tests" or n.startswith("tests.")], path


# ---- adding an action is one module ------------------------------------------------------------

PROBE = '''
"""A throwaway action for the layout test: it records what it saw."""
from handlers.pipeline.contract import APP, DONE, NO, Action, Outcome, Setting

GREETING = Setting("PROBE_GREETING", None, APP, "What the probe action writes.")
SEEN = []


def perform(job, ctx):
    SEEN.append(job.entity_ref)
    return Outcome(DONE, "", {"probe_greeting": GREETING.value()})


ACTION = Action(name="probe", perform=perform, settings=(GREETING,), required=(GREETING,), secrets=(),
                preservica=NO, reads=frozenset(), repeatable=False)
'''


@pytest.fixture
def probe_package(tmp_path, monkeypatch):
    """A temporary folder added to the actions package's path holding one new module: no file edited."""
    import handlers.actions
    folder = tmp_path / "more_actions"
    folder.mkdir()
    (folder / "probe.py").write_text(textwrap.dedent(PROBE))
    monkeypatch.setattr(handlers.actions, "__path__", [*handlers.actions.__path__, str(folder)])
    registry._actions.reset()
    yield folder
    sys.modules.pop("handlers.actions.probe", None)
    registry._actions.reset()


def test_a_new_action_module_is_queued_checked_run_and_journaled(probe_package, app_env, monkeypatch):
    from handlers import dispatch
    from handlers.clients.storage import default
    from handlers.core import envelope, settings
    from handlers.pipeline import runner

    assert "probe" in registry.names()
    assert "PROBE_GREETING" in {s.name for s in registry.all_settings()}
    monkeypatch.setenv("PRESERVICA_ROUTES", "*=journal,probe")
    body = encode(delivery(refs=["p"]))
    intake = messages.intake_message(envelope.delivery_id(body), "2026-11-29T10:00:01Z", body.decode()).encode()

    assert dispatch.dispatch(intake)["messages"] == 1                     # not configured: skipped, not queued
    [row] = journal.default().recent(1)
    assert row["probe_state"] == "skipped" and row["probe_reason"] == "not configured: PROBE_GREETING"

    monkeypatch.setenv("PROBE_GREETING", "hello")                        # configured: a new event is queued
    body = encode(delivery(refs=["q"]))
    intake = messages.intake_message(envelope.delivery_id(body), "2026-11-29T10:00:02Z", body.decode()).encode()
    assert dispatch.dispatch(intake)["messages"] == 2
    q = default().queue(settings.action_queue("probe"))
    [msg] = list(q.receive_messages())
    assert runner.run("probe", msg.content, message_id=msg.id)[0].state == "done"     # the client decodes base64
    row = journal.default().get(*(lambda j: (j.pk, j.rk))(messages.read_batch(msg.content)[0]))
    assert row["probe_state"] == "done" and row["probe_greeting"] == "hello"


def test_functions_are_generated_for_every_action(probe_package):
    import azure.functions as func

    from handlers.pipeline import functions
    app = func.FunctionApp()
    app.register_functions(functions.blueprint())
    found = {f.get_function_name() for f in app.get_functions()}   # get_functions() works once per app
    assert found == {f"action_{n}" for n in registry.names()} and "action_probe" in found


def test_indexing_the_app_imports_no_action():
    """The functions are generated from the actions package's listing (registry.module_names), and the custody
    audit timer's settings live below the actions (clients/custody_config.py), so indexing at cold start
    imports no action module."""
    assert not [m for m in cold_start_modules() if m.startswith("handlers.actions.")]


# What an action uses while it runs, not what indexing needs: the contract (which re-exports the journal's
# states and the messages' Job) comes in with the first action the registry loads, the journal with the
# first event. core.journal is the journal's alone.
@pytest.mark.parametrize("module", [
    "handlers.pipeline.contract", "handlers.clients.journal", "handlers.core.journal", "handlers.core.messages"])
def test_indexing_the_app_imports_neither_the_contract_nor_the_journal(module):
    assert module not in cold_start_modules()


@pytest.mark.parametrize("field", ["repeatable", "reads", "preservica", "secrets", "required", "settings"])
def test_a_declaration_left_out_fails_at_import(probe_package, field):
    text = (probe_package / "probe.py").read_text()
    line = next(part for part in ("repeatable=False", "reads=frozenset()", "preservica=NO", "secrets=()",
                                  "required=(GREETING,)", "settings=(GREETING,)") if part.startswith(field))
    (probe_package / "probe.py").write_text(text.replace(line + ",", "").replace(", " + line, "").replace(line, ""))
    with pytest.raises(TypeError, match=field):
        registry.actions()


def test_a_module_without_a_declaration_fails_clearly(probe_package):
    (probe_package / "probe.py").write_text("def perform(job, ctx):\n    return None\n")
    with pytest.raises(registry.DeclarationError, match="declares no ACTION"):
        registry.actions()


def test_every_action_declares_what_it_needs():
    for name, action in registry.actions().items():
        assert isinstance(action, contract.Action) and action.name == name
        assert all(s in action.settings for s in action.required)
        assert dataclasses.is_dataclass(action)


def test_one_error_tree():
    """Every exception the app defines is in core/errors.py, under SafeError, and drawn in its docstring."""
    import inspect

    from handlers.core import errors
    elsewhere = [f"{p.relative_to(ROOT)}: {node.name}" for p in HANDLERS.rglob("*.py") if p != HANDLERS / "core" / "errors.py"
                 for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ClassDef)
                 and any(isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception")) or b.id in ("NotFound", "Conflict"))
                         for b in node.bases)]
    assert not elsewhere, elsewhere
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert all(issubclass(c, errors.SafeError) for c in classes)
    drawn = errors.__doc__ or ""
    assert not [c.__name__ for c in classes if f" {c.__name__} " not in drawn.replace("\n", " \n")], "not drawn"


# ---- the runner owns the common opening -----------------------------------------------------------

def _declared(gone=None):
    seen: list[str] = []

    def perform(job, ctx):
        seen.append(job.entity_ref)
        if job.entity_ref == "deleted":
            raise contract.NotFound()
        return contract.Outcome(contract.DONE)
    return seen, contract.Action(name="probe", perform=perform, settings=(), required=(), secrets=(),
                                 preservica=contract.NO, reads=frozenset(), repeatable=True,
                                 entities=("asset",), gone=gone)


def _job(entity_type: str, ref: str) -> contract.Job:
    return contract.Job(action="probe", key=ref, pk="p", rk=ref, delivery_id="d", trigger="MOVED", tenant="t",
                        subscription_id="s", timestamp="", event={"entityType": entity_type, "entityRef": ref})


def test_the_runner_journals_what_the_declaration_says_for_other_entities_and_gone_ones():
    from handlers.pipeline import runner
    seen, declared = _declared(gone=contract.Outcome(contract.SKIPPED, "not found", {"probe_gone": True}))
    folder = runner._outcome(declared, _job("SO", "folder"), None)
    assert (folder.state, folder.reason) == (contract.SKIPPED, "not an asset") and seen == []   # perform not called
    gone = runner._outcome(declared, _job("IO", "deleted"), None)
    assert (gone.state, gone.reason, gone.extra) == (contract.SKIPPED, "not found", {"probe_gone": True})
    gone.extra["changed"] = 1                                       # each event gets its own outcome
    assert declared.gone.extra == {"probe_gone": True}
    assert runner._outcome(declared, _job("IO", "here"), None).state == contract.DONE and seen == ["deleted", "here"]


def test_without_a_gone_declaration_not_found_is_a_failure():
    from handlers.pipeline import runner
    _, declared = _declared()
    with pytest.raises(contract.NotFound):
        runner._outcome(declared, _job("IO", "deleted"), None)


def test_entity_types_are_checked_at_declaration():
    with pytest.raises(ValueError, match="entities"):
        _declared()[1].__class__(name="x", perform=lambda j, c: None, settings=(), required=(), secrets=(),
                                 preservica=contract.NO, reads=frozenset(), repeatable=True, entities=("IO",))
    assert contract.Action.refuses(_declared()[1], "CO") == "not an asset"


def test_the_four_actions_that_opened_alike_declare_it_instead():
    for name in ("thumbnail", "catalogue"):
        declared = registry.get(name)
        assert declared.entities == ("asset",), name
    assert registry.get("publish").entities == ("asset", "folder", "content object")  # a folder re-checks its assets, a content object its asset
    assert registry.get("transcribe").entities == ("asset", "content object")   # a file closed: its asset's fragment
    assert all(registry.get(n).gone == contract.Outcome(contract.SKIPPED, "not found")
               for n in ("thumbnail", "catalogue", "transcribe"))
    assert registry.get("publish").gone is None                     # it withdraws what a deleted asset left public
