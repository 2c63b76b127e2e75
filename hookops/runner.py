"""`python -m hookops.runner` and `from hookops.runner import Runner`: the local stand-in for the
Functions host, which lives in hookops/host/ (one module per job); this module keeps the old names."""
from __future__ import annotations

import sys

from hookops.host.functions import Function, RunnerError, route_regex
from hookops.host.runner import LEASE_SECONDS, Runner, main

__all__ = ["Function", "LEASE_SECONDS", "Runner", "RunnerError", "main", "route_regex"]

if __name__ == "__main__":
    sys.exit(main())
