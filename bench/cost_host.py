"""Row 10's stand-in for the Functions host's Queue trigger: each queue read 16 messages at a time (host.json
`batchSize`), each message handed to its function and deleted; and the order the action queues are read in.

Deployed, every routed action's queue is read side by side. An action that waits for others (`after=`:
describe after ocr) is short while it waits, and ocr waits on Document Intelligence, so describe first sees an
event before ocr has finished it and puts it back on its queue, invisible for a while (handlers/pipeline/
waits.py): one more invocation, a journal read, a queue write and a journal note. So the row reads each such
action's queue once before any other action runs (its first look: every message it holds), then drains the
queues in the order the routes name them, then the put-back messages once visible. Each put-back is counted
from the queue (a message received whose events were put back: `deferrals` >= 1), and the first look's own
invocations, seconds, storage operations and telemetry are kept apart, so the row can say what waiting cost.

The put-back's invisibility (waits.FIRST_DELAY, 30 s) is shortened to PUT_BACK_DELAY for the run, as the
order tests do: every upstream queue is drained before the put-back messages are read, so it changes how long
the harness waits, not how many put-backs there are. A backlog longer than 30 s puts an event back again
(30, 60, 120 ... s apart): each time costs what the first look measured per event.
"""
from __future__ import annotations

import base64
import time
from contextlib import contextmanager

HOST_BATCH = 16          # host.json extensions.queues.batchSize
PUT_BACK_DELAY = 1       # s: storage counts visibility in whole seconds
HANG_GUARD = 120         # s: put-back messages that never show up fail the row rather than hang it
SERVICES = ("queue", "blob", "table")


def timed(calls: list, fn, *args, **kwargs):
    t = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        calls.append(time.perf_counter() - t)


def host_loop(conn: str, queue_name: str, run, calls: list, limit: int | None = None) -> int:
    """Receive up to HOST_BATCH messages at a time, run each, delete it, until the queue answers none (or
    `limit` messages are done); the messages run."""
    from azure.storage.queue import QueueClient
    q = QueueClient.from_connection_string(conn, queue_name)
    done = 0
    while limit is None or done < limit:
        n = HOST_BATCH if limit is None else min(HOST_BATCH, limit - done)
        # One Get Messages of up to n, as the host's: with max_messages alone the SDK asks one message per request
        # (azure-storage-queue, azure/storage/queue/_models.py MessagesPaged._get_next_cb: results_per_page 1).
        batch = list(q.receive_messages(messages_per_page=n, max_messages=n))
        if not batch:
            break
        for m in batch:
            timed(calls, run, base64.b64decode(m.content), m)
            q.delete_message(m)
            done += 1
    return done


def deferred(raw: bytes) -> int:
    """Events in an action message that had been put back (0 for a first delivery)."""
    from handlers.core import messages
    jobs = messages.read_batch(raw)
    return len(jobs) if jobs[0].deferrals else 0


@contextmanager
def short_put_back():
    from handlers.pipeline import waits
    saved, waits.FIRST_DELAY = waits.FIRST_DELAY, PUT_BACK_DELAY
    try:
        yield
    finally:
        waits.FIRST_DELAY = saved


def drain_actions(conn: str, routes: str, calls: list, counter, tel) -> dict:
    """Run every routed action's queue as described above; the put-backs: {"messages", "events",
    "invocations", "execution_s", "storage", "telemetry"} (the last four: the first look's)."""
    from handlers.core import settings
    from handlers.pipeline import registry, runner
    routed = sorted(registry.routes(routes).all_actions(), key=routes.find)
    waiting = [a for a in routed if set(registry.get(a).after) & set(routed)]
    seen = {"messages": 0, "events": 0}

    def run(action):
        def go(raw, m):
            if action in waiting and (n := deferred(raw)):
                seen["messages"] += 1
                seen["events"] += n
            return runner.run(action, raw, message_id=m.id)
        return go

    if not waiting:
        for action in routed:
            host_loop(conn, settings.action_queue(action), run(action), calls)
        return {**seen, "invocations": 0, "execution_s": 0.0, "storage": {}, "telemetry": {}}
    first: list = []
    with short_put_back():
        before, tel_before = counter.snapshot(), tel.measure()
        for action in waiting:   # its first look: every message queued for it so far, once
            queued = _count(conn, settings.action_queue(action), counter)
            host_loop(conn, settings.action_queue(action), run(action), first, limit=queued)
        looked = time.monotonic()
        after, tel_after = counter.snapshot(), tel.measure()
        for action in routed:
            host_loop(conn, settings.action_queue(action), run(action), calls)
        put_back = _diff(after, before).get("app|queue|put", 0)
        deadline = looked + HANG_GUARD
        while seen["messages"] < put_back and time.monotonic() < deadline:   # those not visible yet
            time.sleep(max(0.0, looked + PUT_BACK_DELAY + 0.2 - time.monotonic()))
            looked = time.monotonic() - PUT_BACK_DELAY   # if still short, look again in 0.2 s
            for action in waiting:
                host_loop(conn, settings.action_queue(action), run(action), calls)
    if seen["messages"] != put_back:
        raise RuntimeError(f"{put_back} put-back message(s) sent, {seen['messages']} received")
    calls.extend(first)
    storage = {k.split("|", 1)[1]: v for k, v in _diff(after, before).items() if k.split("|")[1] in SERVICES}
    telemetry = {k: {"items": v["items"] - tel_before.get(k, {}).get("items", 0),
                     "bytes": v["bytes"] - tel_before.get(k, {}).get("bytes", 0)} for k, v in tel_after.items()}
    return {**seen, "invocations": len(first), "execution_s": sum(first), "storage": storage,
            "telemetry": {k: v for k, v in telemetry.items() if v["items"]}}


def _diff(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _count(conn: str, queue_name: str, counter) -> int:
    """Messages in a queue (exact here: nothing else reads it), asked with the counter out of the way: the
    harness's question, not an operation the app or the host would make."""
    from azure.storage.queue import QueueClient
    counter.remove()
    try:
        return QueueClient.from_connection_string(conn, queue_name).get_queue_properties().approximate_message_count
    finally:
        counter.install()
