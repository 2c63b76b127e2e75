"""Actions: the contract (contract.py), the registry that finds one module per action (registry.py),
the runner (runner.py) and the queue functions generated from the registry (functions.py).
An action is one module here declaring ACTION = contract.Action(...). Imports handlers.core and .clients."""
