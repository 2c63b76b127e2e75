"""Handlers of the Preservica webhook app. Each module has one job; see docs/architecture.md."""
