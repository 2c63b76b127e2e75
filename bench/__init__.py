"""Benchmarks of the Preservica webhook app, side by side with pyPreservica's reference receiver.

`make bench` (or `.venv/bin/python -m bench`) starts what it needs (Azurite, the local runner, a
Preservica test double, Teams/catalogue/relay doubles, the reference `WebHookHandler` server), runs
the eight measurements and prints one markdown table, also saved to `bench/results/latest.md` (and
`.json`). See `--help`.

Modules:
  __main__        `python -m bench`: run, print and save the table (.md and .json)
  options         the options, `--quick`'s sizes and `--rows`
  orchestrate     the run: which services each row asked for needs, each row in turn, all stopped at the end
  table           the table: a line per row (1, 2 and 5 here), the floors' cells, a failed row's line
  row_text        the text of rows 3, 6, 7 and 8; fmt: number formats; notes: the notes under the table
  common          paths, settings, statistics, machine description, helper processes
  coldstart       row 1: import cost and what the intake imports
  load            the load generator (run as its own process: `python -m bench.load SPEC`)
  reference       the reference receiver (`python -m bench.reference ...`): pyPreservica's WebHookHandler
  preservica_proc the Preservica double in its own process (`python -m bench.preservica_proc ...`), counting
                  requests by endpoint and when they arrived
  receivers_proc  the Teams, catalogue and relay doubles in their own process (`python -m bench.receivers_proc`)
  probes          storage requests at the client, by owner, service and operation; measured inside the app's
                  process with stage_clock (stage timers, with the events of each batch) and cpu_sampler (a
                  CPU sampler over every thread)
  pipeline        row 3 (through the local runner) and what rows 2-9 share: settings, load, signed requests
  ack             row 2: acknowledgement latency, the intake alone and in one process, against the reference
  large           row 4; intake_cpu: row 5 (in process); budget: row 9; custody: row 11
  cost_row        row 10 with costmodel (the prices), cost_host (the host's queue reading, put-backs),
                  cost_ai and cost_telemetry
  floor           the storage floor of rows 2 and 3: the row's own storage requests repeated by a bare
                  client loop in its own process, same concurrency, same Azurite (`python -m bench.floor SPEC`)
  storage_cpu     CPU per queue put through the app's client, with and without requests' per-request
                  environment look-ups (`python -m bench.storage_cpu`)
  cost            rows 6 and 7 (Preservica and storage requests per event, five actions) and 8 (the
                  Preservica request rate under load)
"""
