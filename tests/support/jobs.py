"""Running one action message and reading its job and journal row, as the queue function would."""
from handlers.clients import journal


def read_job(raw) -> "object":
    """The one job of an action message that holds one event."""
    from handlers.core import messages
    [job] = messages.read_batch(raw)
    return job


def run_one(action: str, raw, **kwargs):
    """Run an action message that holds one event; its outcome (None: finished or busy elsewhere)."""
    from handlers.pipeline import runner
    [outcome] = runner.run(action, raw, **kwargs)
    return outcome


def run_traced(action: str, raw):
    """run_one with tracemalloc on: (outcome, peak traced bytes of the whole process meanwhile)."""
    import tracemalloc
    tracemalloc.start()
    try:
        outcome = run_one(action, raw)
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def row(raw) -> dict:
    """The journal row of an action message's one event."""
    job = read_job(raw)
    return journal.default().get(job.pk, job.rk)


def dispatched(action: str, ref: str, entity_type: str = "IO", trigger: str = "FULL_TEXT_INDEXED") -> bytes:
    """Dispatch a delivery routed to `action` alone; its one action message, as the queue function gets it."""
    import os

    from handlers import dispatch
    from handlers.clients.storage import default
    from handlers.core import envelope, messages, settings
    from hookops.doubles.deliveries import delivery, encode
    os.environ["PRESERVICA_ROUTES"] = f"*={action}"
    try:
        body = encode(delivery(trigger=trigger, refs=[ref], entity_type=entity_type))
        dispatch.dispatch(messages.intake_message(envelope.delivery_id(body), "2026-11-30T06:00:00Z", body.decode()).encode())
    finally:
        del os.environ["PRESERVICA_ROUTES"]
    queue = default().queue(settings.action_queue(action))
    [m] = queue.receive_messages(max_messages=2)
    queue.delete_message(m)
    return m.content
