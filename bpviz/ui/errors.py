"""Unexpected exceptions: log the traceback, show the message in a dialog, keep running.

``install(parent_getter)`` sets ``sys.excepthook`` (PySide6 routes exceptions raised in slots
through it) and ``threading.excepthook``. The traceback goes to a rotating log file
(``log_path()``: ``$BPVIZ_LOG_DIR`` or the app-data folder, else the temp folder) and to
stderr; the GUI shows ``QMessageBox.critical`` with the message and where the log is.
Exceptions from other threads are queued to the GUI thread. While one error dialog is open,
further errors are only logged (a failing paint at 60 Hz must not stack up dialogs).
Expected problems (a damaged file, a rejected value) are *not* errors: the window shows
those with ``QMessageBox.warning`` and the core's message.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QStandardPaths, Qt, Signal, Slot
from PySide6.QtWidgets import QMessageBox

LOG = logging.getLogger("bpviz")
LOG_NAME = "bpviz.log"
_state = {"handler": None, "installed": None, "reporter": None}


def log_dir() -> Path:
    env = os.environ.get("BPVIZ_LOG_DIR")
    if env:
        return Path(env)
    if QCoreApplication.instance() is not None and QCoreApplication.applicationName():
        loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
        if loc:
            return Path(loc)
    return Path(tempfile.gettempdir()) / "bpviz"


def log_path() -> Path:
    return log_dir() / LOG_NAME


def setup_logging() -> Path | None:
    """File (rotating, 1 MB × 3) + stderr logging for the ``bpviz`` logger; idempotent
    (a new file handler only when ``log_path()`` changed, e.g. between tests)."""
    old = _state["handler"]
    if old is not None:
        if Path(old.baseFilename) == log_path().resolve():
            return Path(old.baseFilename)
        LOG.removeHandler(old)
        old.close()
        _state["handler"] = None
    LOG.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = None
    try:
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2**20, backupCount=3,
                                                       encoding="utf-8")
        handler.setFormatter(fmt)
        LOG.addHandler(handler)
        _state["handler"] = handler
    except OSError as exc:          # an unwritable folder must not stop the app
        print(f"bpviz: cannot write the log file ({exc}); logging to stderr only",
              file=sys.stderr)
    if not any(isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stderr
               for h in LOG.handlers):
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(logging.WARNING)
        err.setFormatter(fmt)
        LOG.addHandler(err)
    return path


def summary(exc_type, exc) -> str:
    text = str(exc).strip()
    name = getattr(exc_type, "__name__", str(exc_type))
    return f"{name}: {text}" if text else name


class _Reporter(QObject):
    """Lives in the GUI thread; shows one dialog at a time."""

    requested = Signal(str, str)

    def __init__(self, parent_getter):
        super().__init__()
        self.parent_getter = parent_getter
        self.showing = False
        self.shown = 0
        self.requested.connect(self.show, Qt.ConnectionType.QueuedConnection)

    @Slot(str, str)
    def show(self, message: str, details: str) -> None:
        if self.showing:
            return
        self.showing = True
        try:
            where = log_path() if _state["handler"] is not None else "stderr"
            parent = self.parent_getter() if self.parent_getter else None
            self.shown += 1
            QMessageBox.critical(parent, "bpviz — unexpected error",
                                 f"{message}\n\nbpviz keeps running; the full traceback "
                                 f"was written to {where}.\n\n{details}")
        finally:
            self.showing = False


def report(exc_type, exc, tb, where: str = "") -> None:
    """Log an exception and, when a GUI exists, show it; safe from any thread."""
    lines = traceback.format_exception(exc_type, exc, tb)
    LOG.error("unexpected error%s:\n%s", f" in {where}" if where else "", "".join(lines).rstrip())
    reporter = _state["reporter"]
    if reporter is None or QCoreApplication.instance() is None:
        return
    last = "".join(traceback.format_exception_only(exc_type, exc)).strip()
    frames = traceback.extract_tb(tb)[-3:] if tb is not None else []
    details = "\n".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    message = summary(exc_type, exc)
    if threading.current_thread() is threading.main_thread():
        reporter.show(message, details or last)
    else:
        reporter.requested.emit(message, details or last)


def _excepthook(exc_type, exc, tb):
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    try:
        report(exc_type, exc, tb)
    except Exception:               # never let the hook itself raise
        sys.__excepthook__(exc_type, exc, tb)


def _thread_hook(args):
    if args.exc_type is SystemExit:
        return
    _excepthook(args.exc_type, args.exc_value, args.exc_traceback)


def install(parent_getter=None) -> None:
    """Install the hooks (idempotent); ``parent_getter()`` gives the dialog's parent."""
    setup_logging()
    if _state["reporter"] is None:
        _state["reporter"] = _Reporter(parent_getter)
    elif parent_getter is not None:
        _state["reporter"].parent_getter = parent_getter
    if _state["installed"] is None:
        _state["installed"] = (sys.excepthook, threading.excepthook)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_hook


def uninstall() -> None:
    if _state["installed"] is not None:
        sys.excepthook, threading.excepthook = _state["installed"]
        _state["installed"] = None


def excepthook():
    """The hook function itself (tests install it explicitly)."""
    return _excepthook
