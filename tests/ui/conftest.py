"""UI fixtures: isolated QSettings and log folder for every UI test, and ``window``.

``window`` is a shown, active ``MainWindow`` on the default preset. Modal dialogs would
block a headless run, so inside it ``QMessageBox.warning/critical/information/question``
are replaced by recorders (``window.dialogs``: list of (kind, title, text)); ``question``
answers ``window.answer`` (Discard unless a test changes it). Tests that expect a dialog
read ``window.dialogs``; monkeypatching again in a test overrides the recorder.
"""
import os

if not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Every UI test gets its own settings folder (never the user's real settings)."""
    folder = tmp_path / "settings"
    folder.mkdir()
    QCoreApplication.setOrganizationName("bpviz-tests")
    QCoreApplication.setApplicationName("bpviz-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("BPVIZ_LOG_DIR", str(tmp_path / "logs"))
    QSettings().clear()
    yield folder


@pytest.fixture
def make_window(qtbot, monkeypatch):
    """Factory: ``make_window(preset=None, show=True)`` → an active MainWindow."""
    import bpviz.ui  # noqa: F401  (pyqtgraph configuration)
    from bpviz.session.session import DEFAULT_PRESET, Session
    from bpviz.ui.main_window import MainWindow

    dialogs = []

    def record(kind):
        def fake(parent, title, text, *args, **kwargs):
            dialogs.append((kind, title, text))
            if kind == "question":
                return made[-1].answer if made else QMessageBox.StandardButton.Discard
            return QMessageBox.StandardButton.Ok
        return staticmethod(fake)

    for kind in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, kind, record(kind))
    made = []

    def make(preset=None, show=True, restore_layout=True):
        w = MainWindow(Session(preset or DEFAULT_PRESET), restore_layout=restore_layout)
        w.dialogs = dialogs
        w.answer = QMessageBox.StandardButton.Discard
        qtbot.addWidget(w)
        made.append(w)
        w.prime()
        if show:
            with qtbot.waitExposed(w):
                w.show()
            w.activateWindow()
            qtbot.waitUntil(w.isActiveWindow, timeout=2000)
        return w

    yield make
    for w in made:
        w.trainer.stop()


@pytest.fixture
def window(make_window):
    return make_window()
