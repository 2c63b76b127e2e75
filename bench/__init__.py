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
  probes          what is measured inside the app's process: stage timers (with the events of each batch),
                  storage requests at the client, a CPU sampler over every thread
  pipeline        rows 2 and 3 (through the local runner), 4 and 5 (in process)
  floor           the storage floor of rows 2 and 3: the row's own storage requests repeated by a bare
                  client loop in its own process, same concurrency, same Azurite (`python -m bench.floor SPEC`)
  storage_cpu     CPU per queue put through the app's client, with and without requests' per-request
                  environment look-ups (`python -m bench.storage_cpu`)
  cost            rows 6 and 7 (Preservica and storage requests per event, five actions) and 8 (the
                  Preservica request rate under load)
"""
