"""Once a worker thread runs, reference cycles are collected in the GUI thread, never in a
worker: a training worker that collected a closed window's widgets hung the test suite."""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from bpviz.ui import gui_gc


class Cycle:
    """Garbage only the cyclic collector can free; records the thread that freed it."""

    def __init__(self, seen):
        self.me, self.seen = self, seen

    def __del__(self):
        self.seen.append(threading.current_thread())


def allocate_in_a_thread(count=200_000) -> list:
    """Enough new container objects, kept alive, to start automatic collections in that
    thread (Python counts allocations less deallocations); returned so they stay alive until
    the GUI thread's timer has seen them too."""
    kept = []

    def churn():
        kept.extend([] for _ in range(count))
    thread = threading.Thread(target=churn)
    thread.start()
    thread.join()
    return kept


def test_cycles_made_while_training_are_freed_in_the_gui_thread(make_window, qtbot):
    w = make_window("xor")
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.session.step_count > 20, timeout=5000)
    assert gui_gc.active()
    seen = []
    Cycle(seen)
    kept = allocate_in_a_thread()
    assert seen == []                               # not freed by the allocating thread
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)   # but by the GUI thread's timer
    assert seen == [threading.main_thread()]
    del kept
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not w.trainer.running, timeout=5000)


def test_only_the_gui_thread_may_switch_it_on(qapp):
    errors = []

    def attempt():
        try:
            gui_gc.collect_in_gui_thread()
        except RuntimeError as exc:
            errors.append(str(exc))
    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    assert errors and "GUI thread" in errors[0]
