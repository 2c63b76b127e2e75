"""The actions: one module or package per action, each declaring ACTION = contract.Action(...).
Only actions live here (the registry takes every module or package for one); the framework is
handlers/pipeline/. An action imports handlers.pipeline.contract, handlers.core and handlers.clients,
never another action."""
