"""One queue-triggered function per action, generated from the registry, so one action's failures
never re-run another."""
from __future__ import annotations

import azure.functions as func

from ..core import settings
from . import registry


def blueprint(names: tuple[str, ...] | None = None) -> func.Blueprint:
    bp = func.Blueprint()
    for name in registry.module_names() if names is None else names:   # no action imported at indexing
        _register(bp, name)
    return bp


def _register(bp: func.Blueprint, action: str) -> None:
    @bp.function_name(f"action_{action}")
    @bp.queue_trigger(arg_name="msg", queue_name=settings.action_queue(action), connection="AzureWebJobsStorage")
    def perform(msg: func.QueueMessage) -> None:
        from .runner import run
        run(action, msg.get_body(), attempt=msg.dequeue_count or 1, message_id=msg.id)


bp = blueprint()
