"""One rule for process-wide clients: built on first use (never at import: cold start), reused
across invocations, rebuilt when the settings they were built from change, reset in tests."""
from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
_every: weakref.WeakSet[Shared] = weakref.WeakSet()


class Shared(Generic[T]):
    def __init__(self, build: Callable[[], T], key: Callable[[], Hashable] = lambda: None):
        self._build, self._key = build, key
        self._lock = threading.Lock()
        self._held: tuple[Hashable, T] | None = None
        _every.add(self)

    def get(self) -> T:
        key, held = self._key(), self._held
        if held is not None and held[0] == key:
            return held[1]
        with self._lock:  # one build however many invocations arrive together
            if self._held is None or self._held[0] != key:
                self._held = (key, self._build())
            return self._held[1]

    def reset(self) -> None:
        with self._lock:
            self._held = None


def reset_all() -> None:
    """A new "process" for tests: every shared client is built again on next use."""
    for shared in list(_every):
        shared.reset()
