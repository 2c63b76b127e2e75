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


def row(raw) -> dict:
    """The journal row of an action message's one event."""
    job = read_job(raw)
    return journal.default().get(job.pk, job.rk)
