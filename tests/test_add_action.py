"""docs/actions.md's "Add an action", followed exactly as written: its example module, dropped into a
temporary actions folder (no file edited), is found, gets a queue function, is queued, runs and is journaled."""
import re
import sys

import pytest

from handlers.clients import journal
from handlers.core import messages
from handlers.pipeline import registry
from hookops.doubles.deliveries import delivery, encode
from tests.support.paths import ROOT

PAGE = ROOT / "docs" / "actions.md"


def example() -> tuple[str, str]:
    """The first ```python block of the "Add an action" section, and the action name it declares."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Add an action\n"):]
    block = re.search(r"^```python\n(.*?)^```$", section, re.S | re.M)
    assert block, "no python example under Add an action"
    name = re.search(r'\bname="(\w+)"', block.group(1))
    assert name, "the example declares no action name"
    return name.group(1), block.group(1)


@pytest.fixture
def documented_action(tmp_path, monkeypatch):
    """The docs' module as handlers/actions/<name>.py, from a folder added to the package's path."""
    import handlers.actions
    name, code = example()
    folder = tmp_path / "documented_actions"
    folder.mkdir()
    (folder / f"{name}.py").write_text(code, encoding="utf-8")
    monkeypatch.setattr(handlers.actions, "__path__", [*handlers.actions.__path__, str(folder)])
    registry._actions.reset()
    yield name
    sys.modules.pop(f"handlers.actions.{name}", None)
    registry._actions.reset()


def test_the_documented_action_is_found_and_gets_a_queue_function(documented_action):
    import azure.functions as func

    from handlers.pipeline import functions
    assert documented_action in registry.names()
    app = func.FunctionApp()
    app.register_functions(functions.blueprint())
    assert f"action_{documented_action}" in {f.get_function_name() for f in app.get_functions()}


def test_the_documented_action_is_queued_run_and_journaled(documented_action, app_env, monkeypatch):
    from handlers import dispatch
    from handlers.clients.storage import default
    from handlers.core import envelope, settings
    from handlers.pipeline import runner

    name = documented_action
    monkeypatch.setenv("PRESERVICA_ROUTES", f"*=journal,{name}")      # the route the page gives as its example
    body = encode(delivery(refs=["hello-ref"]))
    intake = messages.intake_message(envelope.delivery_id(body), "2026-11-29T10:00:01Z", body.decode()).encode()
    assert dispatch.dispatch(intake)["messages"] == 2                  # journal's and the new action's
    [msg] = list(default().queue(settings.action_queue(name)).receive_messages())
    assert settings.action_queue(name) == f"action-{name}"             # the queue name the page tells Bicep
    assert runner.run(name, msg.content, message_id=msg.id)[0].state == journal.DONE
    job = messages.read_batch(msg.content)[0]
    row = journal.default().get(job.pk, job.rk)
    assert row[f"{name}_state"] == journal.DONE
    assert row[f"{name}_entity"] == job.entity_ref                     # the example's own journal column
