"""Operator tooling: the `hookops` CLI and the local runner that stands in for the Functions host."""
