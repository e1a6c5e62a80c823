"""Python's cyclic garbage collector runs in the GUI thread only, once a worker thread exists.

Automatic collection runs in whichever thread happens to allocate. When a worker thread
(training, the gradient check) collects a reference cycle that holds a Qt widget, the widget
is destroyed outside the GUI thread while the GUI thread may be destroying its relatives.
Seen here in the test suite: a training worker collected a closed window's menus while the
GUI thread deleted their actions; each thread waited for the other (one on a QObject mutex,
one on the GIL) and the process hung. So before the first worker thread starts, automatic
collection is switched off and a timer in the GUI thread collects instead, generation by
generation with Python's own thresholds (pyqtgraph's ``GarbageCollector``).
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QThread

INTERVAL_S = 0.5

_collector = None


def collect_in_gui_thread() -> None:
    """Idempotent; call it in the GUI thread before starting a thread that runs Python."""
    global _collector
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        raise RuntimeError("collect_in_gui_thread() must be called in the GUI thread")
    if _collector is None or not _collector.timer.isActive():
        from pyqtgraph.util.garbage_collector import GarbageCollector
        _collector = GarbageCollector(interval=INTERVAL_S)
    gc.disable()          # also when something switched it back on since


def active() -> bool:
    """Whether automatic collection is off and the GUI-thread timer collects."""
    return _collector is not None and not gc.isenabled() and _collector.timer.isActive()
