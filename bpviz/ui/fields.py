"""Validated editors shared by the sidebar: one set of parsing rules, one name per concept.

The parse functions check *syntax* only (empty, not a number, NaN, overflow to infinity, not a
whole number); range rules (> 0, ≥ 1, kernel fits the input...) belong to the core, which
raises a ValueError naming the field, value and rule. Every message names the field and the
text typed, e.g. ``kernel_size 'abc' is not a whole number or an 'h, w' pair``.

``ValueEdit`` is a QLineEdit holding one committed value: on Enter / focus-out it parses the
text and emits ``committed(value)`` (the owner applies it and calls ``setValue`` or
``revert``) or ``rejected(message)`` after putting the old text back.
"""
from __future__ import annotations

import math
import re
from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QLineEdit, QSizePolicy


class FieldError(ValueError):
    """Text typed into a field that does not parse; the message names field and text."""


_SPLIT = re.compile(r"[\s,;x×*]+")


def _empty(text: str, name: str, what: str) -> FieldError:
    return FieldError(f"{name} is empty; enter {what}")


def parse_number(text: str, name: str) -> float:
    """A finite real number ("0.01", "1e-3"); rejects "", "abc", "nan", "inf", "1e999"."""
    s = str(text).strip()
    if not s:
        raise _empty(s, name, "a number")
    try:
        value = float(s)
    except ValueError:
        raise FieldError(f"{name} {s!r} is not a number") from None
    if math.isnan(value):
        raise FieldError(f"{name} {s!r} is not a number (NaN); enter a finite number")
    if math.isinf(value):
        raise FieldError(f"{name} {s!r} is too large (it overflows to infinity); "
                         f"enter a finite number")
    return value


def _whole(s: str, name: str, what: str, text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", s):
        raise FieldError(f"{name} {text!r} is not {what}")
    if len(s.lstrip("+-")) > 9:
        raise FieldError(f"{name} {text!r} is too large for {what}")
    return int(s)


def parse_whole(text: str, name: str) -> int:
    """A whole number ("3", "-1"); rejects "", "3.5", "abc", "nan", "1e999"."""
    s = str(text).strip()
    if not s:
        raise _empty(s, name, "a whole number")
    return _whole(s, name, "a whole number", s)


def _parts(text: str) -> list[str]:
    s = str(text).strip().strip("()[]").strip()
    return [p for p in _SPLIT.split(s) if p] if s else []


def parse_pair(text: str, name: str) -> int | list[int]:
    """One whole number or an "h, w" pair ("3", "3, 5", "(3, 5)", "3×5") → 3 or [3, 5]."""
    what = "a whole number or an 'h, w' pair"
    parts = _parts(text)
    if not parts:
        raise _empty(str(text), name, what)
    if len(parts) > 2:
        raise FieldError(f"{name} {str(text).strip()!r} has {len(parts)} numbers; "
                         f"enter {what}")
    values = [_whole(p, name, what, str(text).strip()) for p in parts]
    return values[0] if len(values) == 1 else values


def parse_shape(text: str, name: str = "input shape") -> tuple[int, ...]:
    """"n" or "C, H, W" → a tuple of whole numbers (the core checks each is ≥ 1)."""
    what = "'n' or 'C, H, W' (whole numbers)"
    parts = _parts(text)
    if not parts:
        raise _empty(str(text), name, what)
    if len(parts) not in (1, 3):
        raise FieldError(f"{name} {str(text).strip()!r} has {len(parts)} sizes; enter {what}")
    return tuple(_whole(p, name, what, str(text).strip()) for p in parts)


def format_number(value) -> str:
    return f"{float(value):.10g}"


def format_pair(value) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}, {value[1]}"
    return str(value)


def format_shape(shape) -> str:
    return ", ".join(str(s) for s in shape)


class ValueEdit(QLineEdit):
    """A line edit holding one committed value, parsed on Enter or focus-out."""

    committed = Signal(object)   # a parsed value different from the current one
    rejected = Signal(str)       # the parse error; the old text is already back

    def __init__(self, parse: Callable[[str], object], fmt: Callable[[object], str] = str,
                 value=None, parent=None):
        super().__init__(parent)
        self._parse, self._fmt = parse, fmt
        self._value = None
        if value is not None:
            self.setValue(value)
        self.editingFinished.connect(self._finish)

    def value(self):
        return self._value

    def setValue(self, value) -> None:
        """Show ``value`` as the committed value (no signal)."""
        self._value = value
        self.setText(self._fmt(value))
        self.setCursorPosition(0)

    def revert(self) -> None:
        """Show the committed value again (after the owner refused the new one)."""
        if self._value is not None:
            self.setValue(self._value)

    def _finish(self) -> None:
        if self._value is not None and self.text() == self._fmt(self._value):
            return
        try:
            value = self._parse(self.text())
        except FieldError as exc:
            self.revert()
            self.rejected.emit(str(exc))
            return
        if value == self._value:
            self.setValue(value)             # normalise the text ("3,3" → "3")
            return
        self.committed.emit(value)


class MessageLabel(QLabel):
    """An inline, word-wrapped message (red for errors), hidden while empty."""

    def __init__(self, object_name: str, parent=None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setWordWrap(True)
        self.setTextFormat(Qt.PlainText)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.hide()

    def _colour(self, error: bool) -> str:
        dark = self.palette().color(QPalette.Window).lightness() < 128
        if error:
            return "#ff8a80" if dark else "#b00020"
        return "#ffd180" if dark else "#8a5300"

    def show_error(self, message: str) -> None:
        self._show(message, error=True)

    def show_note(self, message: str) -> None:
        self._show(message, error=False)

    def _show(self, message: str, error: bool) -> None:
        self.setStyleSheet(f"QLabel {{ color: {self._colour(error)}; }}")
        self.setProperty("isError", error)
        self.setText(message)
        self.setVisible(bool(message))

    def clear(self) -> None:
        self.setText("")
        self.hide()


class _WheelGuard(QObject):
    """Swallow wheel events over an unfocused spin box / combo box, so scrolling past a
    sidebar never edits a network or a setting by accident."""

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Wheel and not obj.hasFocus():
            event.ignore()
            return True
        return False


_WHEEL_GUARD = _WheelGuard()


def guard_wheel(*widgets) -> None:
    """Spin/combo boxes react to the wheel only once clicked or tabbed into."""
    for w in widgets:
        w.setFocusPolicy(Qt.StrongFocus)
        w.installEventFilter(_WHEEL_GUARD)
