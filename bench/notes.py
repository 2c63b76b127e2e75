"""The notes under the benchmark table: how each row is measured, and why the sizes are what they are."""
from __future__ import annotations


def sizes_note(a, rows) -> str:
    """Why the sizes are below the issue's, with what they would cost here, from this run's own rates."""
    text = (f"- Sizes: {a.deliveries:,} deliveries (row 2) and {a.events:,} events (row 3), not the issue's 2,000 "
            f"and 10,000, to keep `make bench` short: with every row it takes about a quarter of an hour on this 2-core "
            f"machine, row 4's `MAX_BODY_BYTES` delivery (35 pages) a few minutes of it. Row 3 is long enough that its "
            f"queue hand-overs weigh little: each waits for the next poll of an idle queue, up to `maxPollingInterval` "
            f"(2 s), a fixed few seconds a run, which at 600 events (its size until 2026-12-08) were a third of a run.")
    r2, r3 = rows.get(2), rows.get(3)
    try:
        thumbs = a.deliveries / r2["ours"]["all_thumbnails_s"]
        events = r3["events_per_s"]
        minutes = a.runs * (2000 / thumbs + 10000 / events) / 60
        text += (f" Here the app's one process stores ~{thumbs:.0f} thumbnails/s behind its acknowledgements (row 2 "
                 f"waits for them between runs) and moves ~{events:.0f} events/s end to end, so the issue's sizes "
                 f"would take about {minutes:.0f} min for rows 2 and 3")
    except (TypeError, KeyError, ZeroDivisionError):
        pass
    return text + "; `python -m bench --deliveries 2000 --events 10000` runs them."


NOTES = [
    "- Each figure is the median of the runs; each ratio is taken within one run, then its median.",
    "- Row 2: latency runs from a delivery's first attempt to the end of the answer that acknowledged it. Senders "
    "(their own process; `http.client`, chunked bodies, keep-alive where the server allows it) retry a failed "
    "connection or a 5xx after 1 s for up to 120 s. Closed loop: each sender sends its next delivery once the last is "
    "answered, so latency ≈ senders ÷ throughput.",
    "- Reference: pyPreservica's `WebHookHandler`, by default served as its documentation shows (`HTTPServer`: one "
    "request at a time, listen backlog 5), `do_WORK` = `EntityAPI.asset` + `EntityAPI.thumbnail` + a Blob upload "
    "per event, with one "
    "`EntityAPI` built at start (the documented example builds one per delivery: a login and two more calls each). It "
    "answers HTTP/1.0 without a length, so its answer ends only when `do_WORK` returns; its listen queue overflows "
    "under concurrent senders (connection resets). It gets 1.5 deliveries per sender (`--ref-deliveries`), since it "
    "serves one at a time: its latencies stay below its steady state (senders × action time), which flatters it.",
    "- App: the local runner with the project's `host.json` (queue polling up to 2 s; at the 100 ms minimum the "
    "runner's idle pollers alone took ~28% of a core here and Azurite ~23%). The runner's listen backlog is "
    "512, as Kestrel's in front of the real host (http.server's default of 5 resets connections of 32 concurrent "
    "senders). \"Intake alone\" is a runner with no queue trigger: Flex Consumption scales HTTP "
    "functions on instances apart from queue-triggered ones; in \"one process\" the thumbnail work shares its CPU.",
    "- Row 3: per-stage wall time and CPU from timers around `intake.handle`, `dispatch.dispatch` and "
    "`pipeline.runner.run` in the runner's process (wall includes waiting on storage and for the GIL); a stage's CPU "
    "includes the thread pools it hands work to (Preservica snapshots, queue puts, a batch's events); \"host/runner\" "
    "is the rest of that process (queue polling, receive and delete, HTTP). An action message carries a batch of "
    "events: the run ends when every event is performed (the outcomes `pipeline.runner.run` returns), not after a "
    "number of invocations. Azurite's and the double's CPU from /proc. \"Where the CPU went\" is one more run, "
    "not in the medians, with a sampler that every 10 ms charges each thread's CPU (its own CPU clock) to the stack "
    "it is on (`bench/cpu_sampler.py` `CpuSampler`; cProfile with a per-thread CPU timer slowed the run 5× and charged "
    "its per-call overhead to the most-called functions); the full breakdown is in the JSON (`rows.3.profile`). A "
    "thread's CPU since the last sample goes to the stack it is on at the sample, so work done just before a thread "
    "blocks is charged to where it blocks: in `top_functions` the Preservica budget's `take` (where the action threads "
    "wait their turn) showed 0.7 s of 4.4 s, while it costs about 17 µs of CPU a request measured alone (48 threads "
    "at a budget that never binds; a scratch script, not kept).",
    "- Storage floors (rows 2 and 3), measured after each run on the same Azurite by `bench/floor.py` in its own "
    "process: threads as many as the senders (`--concurrency`), each with its own SDK clients built with the "
    "defaults, repeat the row's storage requests with their sizes. Row 2: one queue put of intake's message per "
    "delivery sent (base64, as the app sends it); \"of the puts' rate\" is deliveries acknowledged per second "
    "over puts per second, so 50% means intake takes twice a bare put per delivery. Row 3: the run's requests as "
    "counted at the client (the app's, and the runner's receives and deletes; not the empty polls, which depend "
    "on time, nor the one-off creation of queues, containers and tables), a receive repeated with its deletes, "
    "a table transaction with as many upserts as the app's had; the floor is the run's events over the floor's "
    "wall time. The counter is installed during row 3's runs (a few µs per request). The floor leaves out "
    "Preservica and the app's own CPU: it is what the storage allows, not what the app could do.",
    "- `PRESERVICA_MAX_RPS` is set to 100,000 (never binding here) in rows 2, 3, 6 and 7, so that they measure the "
    "pipeline as the figures of 2026-11-29 did, before the limit existed; row 8 sets a binding one.",
    "- Row 4: a delivery of five dispatcher pages (5,000 events at `MAX_EVENTS_PER_DELIVERY`'s default; until the "
    "paging dispatcher, anything over 1,000 events was answered 400) and one of as many events as fit in "
    "`MAX_BODY_BYTES` (4 MiB: about 34,000), each acknowledged by `intake.handle` and then dispatched a message "
    "at a time from the delivery queue, as the queue trigger would; the app's storage requests counted at the "
    "client, every event's journal job and row counted after. The second delivery runs once (35 pages).",
    "- Rows 6 and 7: one delivery POSTed through the local runner, all five actions routed and configured against "
    "local doubles (Preservica in its own process; Teams, catalogue and relay receiver in another), run until every "
    "event's journal row has all five done; once with each event carrying its identifiers (`\"identifiers\": "
    "[{\"catalogue\": \"C/1\"}]`, what a subscription made with includeIdentifiers=true sends), once without, so "
    "the dispatcher asks Preservica for them. Preservica requests are counted at the double, by endpoint; login "
    "and version happen once per process and are not counted per event. Storage requests are counted "
    "at the client (a wrapper around azure-core's `RequestsTransport.send`, installed in the benchmark's process), "
    "the app's and the local runner's (which stands in for the host's receive and delete), retries included: an "
    "action claims its batch with one read and one conditional transaction, and one that lost a race with another "
    "action's write to the same journal rows reads and writes again (after three lost races, one event at a time; "
    "a lost conditional write shows as 412). The figures of 2026-11-29 are quoted from the README of that date: the "
    "design they measured is not in the tree any more.",
    "- Row 8: arrival times at the Preservica double. The app's token bucket books requests 1/rate apart (at most "
    "rate × T + 1 in any T seconds, after a pause as at the start) and lets one go only while fewer than the rate "
    "occupy the second before it, each from its release until a second after its answer: so at most the rate "
    "arrive in any one second, however late a request arrives.",
    "- Row 5: each timing is the best of 5 within a run (timeit's advice: the others measure other load), then the "
    "median across runs; the floor is `hmac.digest` (one OpenSSL call) over the signed bytes.",
    "- The Preservica double, the load generator and the reference each run in their own process; all on 127.0.0.1.",
    "- Row 10: each configuration is one delivery run through intake, the dispatcher and the routed action's queue "
    "in the benchmark's process (after one unmeasured pass that creates the queues, tables and containers); its "
    "assumptions, the price table (`bench/prices.toml`, with each price's page, date and status) and what each line "
    "buys are in docs/benchmarks.md.",
]

