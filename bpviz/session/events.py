"""Plain-Python events: the session emits, the UI adapts them to Qt signals in one place."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Event:
    kind: str          # "architecture", "settings", "data", "phase", "nonfinite", "error", "file"
    payload: Any = None
    detail: dict = field(default_factory=dict)


class Emitter:
    def __init__(self):
        self._listeners: list[Callable[[Event], None]] = []

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, kind: str, payload=None, **detail) -> None:
        event = Event(kind, payload, detail)
        for listener in list(self._listeners):
            listener(event)
