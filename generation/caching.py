"""Reads a process keeps for a few seconds: rows that every pipeline step reads and that
change rarely (the survey's variables, the physician roles, a model's prices, a chapter's
example candidates). A worker runs hundreds of steps a minute; reading them once per
step was a good share of its database statements.

    @kept_for("REFERENCE_CACHE_SECONDS")
    def active_roles() -> tuple[PhysicianRole, ...]: ...

The time is the named setting's, read at each call (0 reads every time: the test suite's
setting). A change made by an admin reaches every worker within that time. What a kept
read returns is shared between the worker's threads, so it must be immutable: tuples,
frozen dataclasses, mappings nobody changes.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, ParamSpec, TypeVar

from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")


class KeptRead(Generic[P, R]):
    """A read whose results, per argument list, are kept for the setting's number of seconds."""

    def __init__(self, read: Callable[P, R], *, setting: str) -> None:
        self._read, self._setting = read, setting
        self._kept: dict[Hashable, tuple[float, R]] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, read)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        keep_for: float = getattr(settings, self._setting)
        key, now = (args, tuple(sorted(kwargs.items()))), time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < keep_for:
            return kept[1]
        value = self._read(*args, **kwargs)
        if keep_for > 0:
            with self._lock:
                self._kept[key] = (now, value)
        return value

    def forget(self) -> None:
        """Drop what is kept, so the next call reads again."""
        with self._lock:
            self._kept.clear()


def kept_for(setting: str) -> Callable[[Callable[P, R]], KeptRead[P, R]]:
    def decorate(read: Callable[P, R]) -> KeptRead[P, R]:
        return KeptRead(read, setting=setting)

    return decorate
