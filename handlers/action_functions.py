"""One queue-triggered function per action, so one action's failures never re-run another."""
from __future__ import annotations

import azure.functions as func

from . import settings

bp = func.Blueprint()


def _register(action: str) -> None:
    @bp.function_name(f"action_{action}")
    @bp.queue_trigger(arg_name="msg", queue_name=settings.action_queue(action), connection="AzureWebJobsStorage")
    def perform(msg: func.QueueMessage) -> None:
        from .action_runner import run
        run(action, msg.get_body(), attempt=msg.dequeue_count or 1, message_id=msg.id)


for _action in settings.ACTIONS:
    _register(_action)
