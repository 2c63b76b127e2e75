"""What the trigger modules (http, queues, timers) use of the runner, declared below them so that
they need not import hookops/host/runner.py, which imports them to start them."""
from __future__ import annotations

import threading
import typing

from hookops.host.functions import Function
from hookops.hostconfig import HostConfig


class Host(typing.Protocol):
    """The runner as its triggers see it (hookops/host/runner.py's Runner is the one)."""
    config: HostConfig
    port: int
    admin_token: str
    functions: dict[str, Function]
    timers: dict[str, typing.Any]      # function name -> its timers.TimerPoller
    lease_seconds: int
    cond: threading.Condition          # guards the counters below and the runner's stats
    stopping: threading.Event
    header_timeout: float
    idle_timeout: float
    body_grace: float
    min_body_rate: float
    max_connections: int
    http_connections: int
    http_waiting: bool

    @property
    def url(self) -> str: ...

    def invoke(self, fn: Function, trigger_value) -> dict: ...

    def count(self, name: str, key: str) -> None: ...
