"""A local stand-in for the Azure Functions host, one job per module.

- `functions`: learn the app's functions the way the Python worker does, and call them;
- `http`: the HTTP front end, with the limits a real front end has;
- `queues`: the queue-trigger poller, by host.json's rules (batches, back-off, poison);
- `runner`: `Runner` (settings, start, stop, waiting for work) and `python -m hookops.runner`.
"""
