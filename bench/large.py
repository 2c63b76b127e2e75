"""Row 4: large deliveries, accepted and paged. A delivery of `--large` events (default 5,000: five pages) and
one as near `MAX_BODY_BYTES` as whole events allow are each signed and handed to `intake.handle` in this
process against Azurite; then the dispatcher is run on the delivery queue as the queue trigger would run it, a
message at a time, each page's invocation queuing the next (handlers/dispatch.py), until the queue is empty.

Measured: the acknowledgement (time, and the storage writes it made: the claim-checked body and one queue
message), the pages dispatched and each page's time, the app's storage requests while dispatching, and that
every event was dispatched exactly once: one journal job per event on the journal queue (routes `*=journal`)
and one journal row per event. Storage requests are counted at the client (bench.probes.StorageCounter); the
benchmark's own receives, deletes and checks are not the app's and are left out."""
from __future__ import annotations

import time
from collections import Counter

from bench.common import delivery_body, median, ref
from bench.pipeline import environment, new_subscription, now_ms, signed_request
from bench.probes import StorageCounter

WRITES = ("put", "transaction", "update", "delete", "insert", "upsert", "merge")
# --quick (CI: every path, tiny sizes): pages of 200 events, a 128 KiB body limit, a first delivery of five pages.
QUICK = {"MAX_EVENTS_PER_DELIVERY": "200", "MAX_BODY_BYTES": str(128 * 1024)}


def body_of_events(events: int, subscription: str) -> bytes:
    return delivery_body([ref(i) for i in range(events)], subscription, now_ms())


def body_near(limit: int, subscription: str) -> tuple[bytes, int]:
    """The largest delivery of whole events within `limit` bytes, and its events (they are all the same size)."""
    one, two = (len(body_of_events(n, subscription)) for n in (1, 2))
    events = max(1, (limit - (one - (two - one))) // (two - one))
    body = body_of_events(events, subscription)
    while len(body) > limit and events > 1:
        events -= 1
        body = body_of_events(events, subscription)
    return body, events


def _writes(detail: dict) -> dict[str, int]:
    """The app's storage writes by "service operation" (a blob put names its container)."""
    out: Counter = Counter()
    for key, v in detail.items():
        owner, service, op = key.split("|")
        verb, _, rest = op.partition(" ")   # a blob operation names its container: "put deliveries"
        if owner == "app" and verb in WRITES:
            out[f"{service} {verb}" + (f" ({rest})" if rest else "")] += v["requests"]
    return dict(out)


def _drain(queue) -> None:
    from azure.core.exceptions import ResourceExistsError
    try:
        queue.create_queue()
    except ResourceExistsError:
        queue.clear_messages()


def _dispatch_all(queue, dispatch) -> list[float]:
    """Run the dispatcher on every message of the delivery queue, one at a time, as the trigger would (the
    message deleted after the invocation returns); the wall time of each page."""
    pages = []
    while True:
        msgs = list(queue.receive_messages(max_messages=1, visibility_timeout=600))
        if not msgs:
            return pages
        t = time.perf_counter()
        dispatch.dispatch(msgs[0].content)
        pages.append(time.perf_counter() - t)
        queue.delete_message(msgs[0])


def _dispatched_once(journal_queue, subscription: str, events: int) -> dict:
    """How many events have exactly one journal job queued, and how many journal rows the delivery made."""
    from handlers.clients import journal
    from handlers.core import messages
    keys: Counter = Counter()
    while batch := list(journal_queue.receive_messages(max_messages=32, visibility_timeout=600)):
        for m in batch:
            keys.update(job.key for job in messages.read_batch(m.content))
    rows = sum(1 for _ in journal.default().table.query_entities(
        "subscriptionId eq @s", parameters={"s": subscription}, select=["RowKey"], results_per_page=1000))
    return {"jobs": sum(keys.values()), "events_once": sum(1 for v in keys.values() if v == 1),
            "events_twice_or_more": sum(1 for v in keys.values() if v > 1), "journal_rows": rows,
            "every_event_once": len(keys) == events and all(v == 1 for v in keys.values()) and rows == events}


def _one(body: bytes, events: int, subscription: str, counter: StorageCounter, queues: dict) -> dict:
    from handlers import dispatch, intake
    for q in queues.values():
        _drain(q)
    counter.reset()
    t = time.perf_counter()
    resp = intake.handle(signed_request(body))
    ack_ms = (time.perf_counter() - t) * 1000
    ack_writes = _writes(counter.detail())
    counter.reset()
    t = time.perf_counter()
    pages = _dispatch_all(queues["delivery"], dispatch)
    dispatch_s = time.perf_counter() - t
    detail = counter.detail()
    # Rows the journal sent the app: its queries' and its point reads' (a page reads the rows it took for new
    # that were there, one at a time: handlers/dispatch.py), each row once however it was asked for.
    rows_read = sum(v["items"] for k, v in detail.items() if k.startswith(("app|table|query", "app|table|get")))
    table_reads = sum(v["requests"] for k, v in detail.items() if k.startswith(("app|table|query", "app|table|get")))
    return {"events": events, "body_bytes": len(body), "status": resp.status_code, "ack_ms": ack_ms,
            "ack_writes": ack_writes, "pages": len(pages), "page_s_median": median(pages) if pages else None,
            "page_s_max": max(pages, default=None), "page_s": pages, "dispatch_s": dispatch_s,
            "dispatch_writes": _writes(detail), "journal_rows_read": rows_read,
            "journal_reads": table_reads,
            **_dispatched_once(queues["journal"], subscription, events)}


def large_delivery(env: dict, *, events: int, runs: int, quick: bool = False, progress=print) -> dict:
    """Row 4: `events` in the first delivery (with `quick`, five pages of QUICK's size)."""
    from handlers.clients.storage import default as storage
    from handlers.core import messages, settings
    values = dict(env, **(QUICK if quick else {}))
    events = 5 * int(QUICK["MAX_EVENTS_PER_DELIVERY"]) if quick else events
    counter = StorageCounter(env["AzureWebJobsStorage"]).install()
    try:
        with environment(values):
            page = settings.get_int("MAX_EVENTS_PER_DELIVERY", minimum=1)
            limit = settings.get_int("MAX_BODY_BYTES", minimum=1)
            queues = {"delivery": storage().queue(settings.DELIVERY_QUEUE),
                      "journal": storage().queue(settings.action_queue("journal"))}
            # Queues, container and tables made, clients warm: not measured. Over the queue payload: claim-checked.
            warm = new_subscription()
            _one(*body_near(messages.MAX_QUEUE_PAYLOAD + 4096, warm), warm, counter, queues)
            out = {"page": page, "max_body_bytes": limit, "runs": runs, "deliveries": {}}
            for label, count in (("events", events), ("max_body", None)):
                samples = []
                for r in range(runs if label == "events" else 1):
                    subscription = new_subscription()
                    if count:
                        body, n = body_of_events(count, subscription), count
                    else:
                        body, n = body_near(limit, subscription)
                    s = _one(body, n, subscription, counter, queues)
                    samples.append(s)
                    progress(f"  large delivery {label} run {r + 1}: {n} events, {len(body) / 1024:.0f} KiB -> "
                             f"{s['status']} in {s['ack_ms']:.0f} ms ({s['ack_writes']}); {s['pages']} pages in "
                             f"{s['dispatch_s']:.1f} s; every event once: {s['every_event_once']}")
                mid = sorted(samples, key=lambda s: s["ack_ms"])[len(samples) // 2]
                out["deliveries"][label] = {**mid, "ack_ms": median([s["ack_ms"] for s in samples]),
                                            "every_event_once": all(s["every_event_once"] for s in samples),
                                            "runs": len(samples), "per_run": samples}
            return out
    finally:
        counter.remove()


def _n(x, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def row_text(r: dict) -> str:
    """Row 4 of the table."""
    def writes(w: dict) -> str:
        return ", ".join(f"{v:,} {k}" for k, v in sorted(w.items(), key=lambda kv: -kv[1])) or "none"

    def side(d: dict) -> str:
        pages = (f"; {d['pages']} pages dispatched in {_n(d['dispatch_s'], 1)} s (a page {_n(d['page_s_median'], 2)} s "
                 f"at the median, {_n(d['page_s_max'], 2)} s at most; the first {_n(d['page_s'][0], 2)} s, the last "
                 f"{_n(d['page_s'][-1], 2)} s)") if d["pages"] else "; no page dispatched"
        return (f"{_n(d['events'])} events ({_n(d['body_bytes'] / 1024)} KiB): answer {d['status']} in "
                f"{_n(d['ack_ms'])} ms after {writes(d['ack_writes'])}{pages}")
    ev, mx = r["deliveries"]["events"], r["deliveries"]["max_body"]
    once = all(d["every_event_once"] for d in (ev, mx))
    detail = "; ".join(
        f"{name}: app's storage writes while dispatching {writes(d['dispatch_writes'])}, journal rows read "
        f"{d['journal_rows_read']:,} ({_n(d['journal_rows_read'] / max(1, d['events']), 1)} per event) in "
        f"{d.get('journal_reads', 0):,} table reads; "
        f"{d['jobs']:,} journal jobs "
        f"for {d['events']:,} events ({d['events_once']:,} once, {d['events_twice_or_more']:,} more than once), "
        f"{d['journal_rows']:,} journal rows" for name, d in (("first", ev), ("second", mx)))
    return (f"| 4 | Large deliveries: {_n(ev['events'])} events, and one as near `MAX_BODY_BYTES` "
            f"({_n(r['max_body_bytes'])} B) as whole events go, each in one POST, in process against Azurite, then "
            f"the dispatcher a page (`MAX_EVENTS_PER_DELIVERY` {_n(r['page'])}) per invocation (first: median of "
            f"{ev['runs']}; second: {mx['runs']} run) | {side(ev)}; {side(mx)} | – | – | every event dispatched "
            f"once: {'met' if once else '**not met**'} | Over the 48 KiB queue payload the body goes to the "
            f"`deliveries` container and the queue message names it (claim check); each page's invocation reads "
            f"the body, dispatches its page and queues the next. {detail} |")
