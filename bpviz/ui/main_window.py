"""The main window: docks for the sidebar and the five panels, keys, status bar, training.

Data flow: user intent → ``Session`` methods; session events → ``SessionBridge`` signals →
one repaint from ``session.snapshot()`` per user action (GUI thread). While training runs the
``TrainWorker`` owns the session and offers snapshots; ``frames.FramePacer`` paints the newest
one as a frame when one is due (frames paced so painting takes at most GUI_SHARE of the time).
Hidden panels are skipped and painted when shown again. Any call to
a mutating session method from the GUI first pauses training (``bridge.guard_session``).
Files, title and exports live in ``files.FilesMixin``; menus, toolbar, dock layout and its
persistence in ``actions``.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QDockWidget, QGraphicsView, QLabel, QMainWindow, QMessageBox,
                               QSizePolicy)

from bpviz.core import BpvizError, NonFiniteError
from bpviz.session.session import BreakpointHit

from . import actions, frames
from .bridge import SessionBridge, Trainer, guard_session
from .files import FilesMixin
from .frames import FramePacer

SIDEBAR = (("builderDock", "Network"), ("dataDock", "Data"), ("trainingDock", "Training"))
HOVER_MS = 80


class MainWindow(FilesMixin, actions.LayoutMixin, QMainWindow):
    """bpviz's window over one ``Session`` (see the module docstring)."""

    panelsReady = Signal()           # build_panels_later() has created the last panel

    def __init__(self, session, restore_layout: bool = True, lazy_panels: bool = False,
                 parent=None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.session = session
        self.undo_stack = QUndoStack(self)
        self.trainer = Trainer(session, self, interval=0.0)     # frames.FramePacer asks
        self.bridge = None
        self._unguard = None
        self._latest = None          # the snapshot on screen
        self._stale: set[str] = set()
        self._batching = 0
        self._view_dirty = False
        self._deferred: list = []
        self._selected = None
        self._last_nonfinite = None
        self._hover = {}
        self._scenes: dict[str, list] = {}
        self.painted: dict[str, int] = {}       # draws per panel (benchmarks)
        self.status_updates = 0
        self.layout_restored = False
        self.compact = False
        self._polled: list[str] = []
        self._priming = False
        self._sizes_pending = True
        self.repaints = 0
        self._rate = (time.perf_counter(), 0)
        self.steps_per_second = 0.0
        self.docks: dict[str, QDockWidget] = {}
        self.panels: dict = {}
        self.acts = actions.build(self)
        self._hover_timer = QTimer(self, interval=HOVER_MS, timeout=self._poll_hover)
        self._build_status()
        self._build_docks(lazy_panels)
        actions.fill_view_menu(self, list(self.docks.values()), [self.toolbar])
        self._attach(session)
        self.trainer.started.connect(self._on_started)
        self.trainer.stopped.connect(self._on_stopped)
        self.frames = FramePacer(self, self.trainer)
        self.trainer.snapshotReady.connect(self.frames.on_snapshot)
        self.trainer.statusReady.connect(self.frames.on_status)
        self.resize(1600, 1000)
        self.apply_default_layout()
        if restore_layout:                 # also the colour-scale choice
            self._load_view_settings()
            self.restore_layout()
        else:
            self.scale_combo.setCurrentIndex(self.scale_combo.findData("per-layer"))
        self.apply_scale_mode()
        self.select_layer(self.first_weighted_layer())
        self.refresh()

    # ----- construction --------------------------------------------------------------------
    def _build_docks(self, lazy: bool) -> None:
        from .panels import PANEL_CLASSES
        for name, title in SIDEBAR:
            self.docks[name] = self._dock(name, title, None)
        self._make_sidebar()
        self._panel_names = [name for name, _title, _cls in PANEL_CLASSES]
        self._unbuilt = {name: cls for name, _title, cls in PANEL_CLASSES}
        for name, title, _cls in PANEL_CLASSES:
            placeholder = QLabel("…")
            placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            dock = self._dock(name, title, placeholder)
            dock.visibilityChanged.connect(
                lambda visible, n=name: visible and self._paint_stale(n))
        if not lazy:
            self.build_panels()
        self._add_debugger_docks()

    # ----- the gradient debugger's docks (built on first show: nothing costs while hidden) -
    def _add_debugger_docks(self) -> None:
        from .debugger import debugger_panels
        self.debugger_names: list[str] = []
        self._debugger_classes = {}
        for name, title, cls in debugger_panels():
            self.debugger_names.append(name)
            self._debugger_classes[name] = cls
            placeholder = QLabel(f"{title} — opens when shown")
            placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            dock = self._dock(name, title, placeholder)
            dock.visibilityChanged.connect(
                lambda visible, n=name: visible and self._show_debugger(n))
            dock.toggleViewAction().toggled.connect(
                lambda on, n=name: on and self._open_debugger(n))

    def _open_debugger(self, name) -> None:
        """Opened from the View menu: tab it beside Loss (unless the user placed it), build
        the panel and bring its tab to the front."""
        dock, loss = self.docks[name], self.docks.get("lossDock")
        if loss is not None and not dock.isFloating() and not self.tabifiedDockWidgets(dock):
            self.tabifyDockWidget(loss, dock)
        self._show_debugger(name)
        QTimer.singleShot(0, dock.raise_)

    def _show_debugger(self, name) -> None:
        if name not in self.panels:
            self._build_debugger_panel(name)
        self._paint_stale(name)

    def _build_debugger_panel(self, name) -> None:
        panel = self._debugger_classes[name](self.session)
        panel.setObjectName(name.replace("Dock", "Panel"))
        self.add_panel_dock(name, self.docks[name].windowTitle(), panel)
        self._wire_unit_clicks()

    def _wire_unit_clicks(self) -> None:
        """A click on a δ pixel / unit explains it in the inspector and the formula view."""
        sensitivity = self.panels.get("sensitivityDock")
        if sensitivity is None:
            return
        for name in self.debugger_names:
            panel = self.panels.get(name)
            if hasattr(panel, "show_unit") and not getattr(panel, "_unit_wired", None) is sensitivity:
                sensitivity.unitClicked.connect(panel.show_unit)
                panel._unit_wired = sensitivity

    def add_panel_dock(self, name, title, panel):
        """Put a Panel into dock ``name`` (created when new) and wire it like the five:
        layer selection, hover text, status messages, recorded snapshots, painting."""
        dock = self.docks.get(name) or self._dock(name, title, None)
        if dock.parent() is self and self.dockWidgetArea(dock) == Qt.DockWidgetArea.NoDockWidgetArea:
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        old = dock.widget()
        dock.setWidget(panel)
        if old is not None and old is not panel:
            old.deleteLater()
        panel.layerPicked.connect(self.select_layer)
        if hasattr(panel, "hoverChanged"):
            panel.hoverChanged.connect(self.hover_label_set)
        if hasattr(panel, "message"):
            panel.message.connect(lambda text: self.statusBar().showMessage(text, 15000))
        if hasattr(panel, "snapshotChosen"):
            panel.snapshotChosen.connect(self.show_recorded)
        if self._selected is not None:
            panel.set_layer(self._selected)
        if name not in self._panel_names:
            self._panel_names.append(name)
        self.panels[name] = panel
        self._stale.add(name)
        if self._latest is not None and self._panel_visible(name):
            self._paint_stale(name)
        return dock

    def show_recorded(self, snapshot) -> None:
        """Show a recorded snapshot in every panel (time travel); None returns to live."""
        if snapshot is None:
            self.refresh()
        else:
            self.show_snapshot(snapshot)

    def _rebuild_debugger_panels(self) -> None:
        """A new session: debugger panels already opened are recreated over it."""
        for name in self.debugger_names:
            if name in self.panels:
                old = self.panels.pop(name)
                self._build_debugger_panel(name)
                if hasattr(old, "close_session"):
                    old.close_session()

    def _build_panel(self, name) -> None:
        """Create one panel in its dock, wired, in the current scale mode, painted."""
        cls = self._unbuilt.pop(name, None)
        if cls is None:
            return
        panel = cls()
        panel.setObjectName(name.replace("Dock", "Panel"))
        panel.layerPicked.connect(self.select_layer)
        if hasattr(panel, "hoverChanged"):
            panel.hoverChanged.connect(self.hover_label_set)
        else:
            self._polled.append(name)
            self._hover_timer.start()
        panel.set_fixed_limit(float(self.scale_limit.value()))
        panel.set_scale_mode(self.scale_combo.currentData())
        if self._selected is not None:
            panel.set_layer(self._selected)
        old = self.docks[name].widget()
        self.docks[name].setWidget(panel)
        if old is not None:
            old.deleteLater()
        self.panels = {n: self.panels.get(n, panel) for n in self._panel_names
                       if n in self.panels or n == name}
        self._stale.add(name)
        if self._latest is not None and self._panel_visible(name):
            self._paint_stale(name)
        if name == "sensitivityDock" and hasattr(self, "debugger_names"):
            self._wire_unit_clicks()

    def build_panels(self) -> None:
        """Create every panel not built yet (all at once)."""
        for name in list(self._unbuilt):
            self._build_panel(name)

    def build_panels_later(self) -> None:
        """Create the panels one per event-loop turn, so the window shows and answers
        at once and the panels appear over the next fraction of a second."""
        if self._unbuilt:
            self._build_panel(next(iter(self._unbuilt)))
            QTimer.singleShot(0, self.build_panels_later)
        else:
            self.panelsReady.emit()

    def _dock(self, name, title, widget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        if widget is not None:
            dock.setWidget(widget)
        self.docks[name] = dock
        return dock

    def _make_sidebar(self) -> None:
        """(Re)create the three sidebar widgets for the current session."""
        from .builder import NetworkBuilder
        from .data_panel import DataPanel
        from .training_panel import TrainingPanel
        self.builder = NetworkBuilder(self.session, self.undo_stack)
        self.builder.setObjectName("networkBuilder")
        self.builder.layerSelected.connect(self.select_layer)
        self.data_panel = DataPanel(self.session)
        self.data_panel.setObjectName("dataPanel")
        self.data_panel.sampleChanged.connect(self._on_sample_changed)
        self.training_panel = TrainingPanel(self.session)
        self.training_panel.setObjectName("trainingPanel")
        for name, widget in zip(("builderDock", "dataDock", "trainingDock"),
                                (self.builder, self.data_panel, self.training_panel)):
            old = self.docks[name].widget()
            self.docks[name].setWidget(widget)
            if old is not None:
                old.deleteLater()

    def _build_status(self) -> None:
        bar = self.statusBar()
        bar.setObjectName("statusBar")

        def label(name, tip, min_width=0):
            lab = QLabel()
            lab.setObjectName(name)
            lab.setToolTip(tip)
            if min_width:
                lab.setMinimumWidth(min_width)
            return lab
        self.phase_label = label("phaseLabel", "Where the stepping cursor is", 300)
        self.hover_label = label("hoverLabel", "The value under the mouse in a panel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.steps_label = label("stepsLabel", "Updates applied so far", 90)
        self.loss_label = label("lossLabel", "Loss of the last backward pass", 110)
        self.acc_label = label("accuracyLabel", "Accuracy on the last batch", 100)
        self.run_label = label("runLabel", "Continuous training (F5)", 130)
        bar.addWidget(self.phase_label)
        bar.addWidget(self.hover_label, 1)
        for lab in (self.steps_label, self.loss_label, self.acc_label, self.run_label):
            bar.addPermanentWidget(lab)

    def _attach(self, session) -> None:
        """Connect to a session: bridge signals and the guard on its mutating methods."""
        self.session = session
        self.trainer.session = session
        self.bridge = SessionBridge(session, self)
        b = self.bridge
        b.phaseChanged.connect(self._on_phase)
        b.architectureChanged.connect(self._on_architecture)
        b.settingsChanged.connect(self._on_settings)
        b.dataChanged.connect(self._on_data)
        b.nonFinite.connect(self._on_nonfinite)
        b.fileChanged.connect(lambda _path: self._view_changed())
        self._unguard = guard_session(session, self.trainer, self.pause)

    def _detach(self) -> None:
        self.pause()
        if self._unguard is not None:
            self._unguard()
            self._unguard = None
        if self.bridge is not None:
            self.bridge.detach()
            self.bridge.deleteLater()
            self.bridge = None

    def set_session(self, session) -> None:
        """Replace the session (New, New from preset): sidebar rebuilt, panels repainted."""
        self._detach()
        self.undo_stack.clear()
        self._attach(session)
        self._make_sidebar()
        self._rebuild_debugger_panels()
        self._selected = None
        self.select_layer(self.first_weighted_layer())
        self.refresh()

    # ----- painting ----------------------------------------------------------------------
    def _panel_visible(self, name) -> bool:
        return self.panels[name].isVisible() and not self.isMinimized()

    def refresh(self) -> None:
        """Repaint from the session (GUI thread, not while the worker runs)."""
        if self.trainer.running:
            return
        snapshot = self.session.snapshot()
        self.data_panel.note_shown(snapshot.sample_index)
        self.show_snapshot(snapshot)

    def show_snapshot(self, snapshot, now: bool = False) -> None:
        """Draw ``snapshot`` in every visible panel (hidden ones are painted when shown).
        ``now``: also paint them at once (a training frame) instead of from the event loop,
        all in one repaint of the window, with the status bar."""
        self._latest = snapshot
        self._update_status(snapshot)
        drawn = []
        for name, panel in self.panels.items():
            if not self._panel_visible(name):
                self._stale.add(name)
                continue
            panel.show_snapshot(snapshot)
            drawn.append(name)
            self.painted[name] = self.painted.get(name, 0) + 1
            self._stale.discard(name)
        if now:
            self._paint_now(*drawn)
        self.repaints += 1

    def _paint_now(self, *names) -> None:
        """Paint these panels' changes now, inside the frame, instead of later from the
        event loop. pyqtgraph's scenes pass item changes to their views through posted
        meta-calls and the views post an UpdateRequest to the window: deliver just those
        (only the dirty regions are painted; no other posted event runs in the middle of a
        frame), the UpdateRequest once for all panels (each repaint of the window has a
        fixed cost: dirty regions, backing store, flush). A view box applies a new range
        to its items only when its scene is about to paint (prepareForPaint), and that
        invalidates them again: done first, so each view is painted once, here, and not a
        second time from the event loop against the running worker."""
        for name in names:
            scenes = self._scenes.get(name)
            if scenes is None:
                scenes = self._scenes[name] = [
                    v.scene() for v in self.panels[name].findChildren(QGraphicsView)
                    if v.scene() is not None]
            for scene in scenes:
                if hasattr(scene, "prepareForPaint"):
                    scene.prepareForPaint()
                QCoreApplication.sendPostedEvents(scene, QEvent.Type.MetaCall)
        QCoreApplication.sendPostedEvents(self, QEvent.Type.UpdateRequest)

    def _paint_stale(self, name) -> None:
        if name in self._stale and self._latest is not None:
            self.panels[name].show_snapshot(self._latest)
            self._stale.discard(name)

    def _paint_all_stale(self) -> None:
        for name in list(self._stale):
            if self._panel_visible(name):
                self._paint_stale(name)

    def show_status(self, status) -> None:
        """Between training frames: the step, loss and accuracy (a bridge.Status)."""
        self._update_status(status)

    def _update_status(self, snap) -> None:
        self.status_updates += 1
        running = self.trainer.running
        self.phase_label.setText(("running · " if running else "") + snap.label)
        self.steps_label.setText(f"step {snap.step}")
        self.loss_label.setText("loss —" if snap.loss is None else f"loss {snap.loss:.4g}")
        acc = snap.accuracy
        self.acc_label.setText("accuracy —" if acc is None or acc != acc
                               else f"accuracy {100 * acc:.1f} %")
        if running:
            now = time.perf_counter()
            t0, s0 = self._rate
            if now - t0 >= 0.5:
                self.steps_per_second = (snap.step - s0) / (now - t0)
                self._rate = (now, snap.step)
            self.run_label.setText(f"● running {self.steps_per_second:,.0f} steps/s")
        else:
            self.run_label.setText("paused" if snap.step else "")
        self.update_title()

    def hover_label_set(self, text: str) -> None:
        if text and text != self.hover_label.text():
            self.hover_label.setText(text)

    def _poll_hover(self) -> None:
        """For panels without a hoverChanged signal: read ``hover_text``."""
        for name in self._polled:
            text = getattr(self.panels[name], "hover_text", "") or ""
            if text != self._hover.get(name, ""):
                self._hover[name] = text
                self.hover_label_set(text)

    # ----- layer selection -------------------------------------------------------------------
    @Slot(int)
    def select_layer(self, index) -> None:
        """Select a layer everywhere (builder, every panel); feedback loops are cut here."""
        n = len(self.session.net.layers)
        if index is None or not 0 <= index < n or index == self._selected:
            return
        self._selected = index
        self.builder.select_layer(index)
        for panel in self.panels.values():
            panel.set_layer(index)

    def _follow_cursor(self) -> None:
        if self._priming:
            return
        layer = self.session.layer
        self.builder.highlight_layer(layer)
        if layer is not None:
            self.select_layer(layer)

    # ----- session events (GUI thread) ------------------------------------------------------
    def _view_changed(self) -> None:
        if self._batching:
            self._view_dirty = True
        elif not self.trainer.running:
            self.refresh()
        self.update_title()

    def _batch(self, fn, *args):
        """Call a session method; repaint once afterwards, then show deferred messages."""
        self._batching += 1
        try:
            return fn(*args)
        finally:
            self._batching -= 1
            if not self._batching:
                if self._view_dirty:
                    self._view_dirty = False
                    self.refresh()
                deferred, self._deferred = self._deferred, []
                for show in deferred:
                    show()

    @Slot(str)
    def _on_phase(self, _label) -> None:
        if self.trainer.running:
            return
        self._follow_cursor()
        self._view_changed()

    @Slot()
    def _on_architecture(self) -> None:
        self.builder.refresh()
        n = len(self.session.net.layers)
        if self._selected is not None and self._selected >= n:
            self._selected = None
            self.select_layer(n - 1)
        self.builder.highlight_layer(None)
        self._view_changed()

    @Slot()
    def _on_settings(self) -> None:
        self.training_panel.refresh()
        self.update_title()

    @Slot()
    def _on_data(self) -> None:
        self.data_panel.refresh()
        self._view_changed()

    @Slot(int)
    def _on_sample_changed(self, index) -> None:
        """Show the newly chosen sample: re-run the forward pass unless a pass is under way."""
        s = self.session
        idle = s.phase in ("idle", "update") or (s.phase == "forward" and s.done)
        if idle and s.trainer.mode == "sample" and 0 <= index < len(s.dataset):
            import numpy as np
            if s.phase == "forward":
                s.batch = np.array([index])
            self._batch(s.forward)
        else:
            self._view_changed()

    @Slot(object)
    def _on_nonfinite(self, report) -> None:
        if self.trainer.running:
            self.pause()
        key = (report, self.session.step_count)
        if key == self._last_nonfinite:
            return
        self._last_nonfinite = key
        text = (f"{report.describe()}.\n\nTraining was paused and no update with "
                f"non-finite values was applied; the last good weights are kept. Try a smaller "
                f"learning rate, gradient clipping, or reset the weights (Shift+F5).")
        self.statusBar().showMessage(f"Non-finite values: {report.describe()}", 15000)
        show = lambda: self.warn("NaN or Inf in the network", text)  # noqa: E731
        if self._batching:
            self._deferred.append(show)
        else:
            self._view_changed()
            show()

    # ----- stepping and training -----------------------------------------------------------
    def _step(self, name) -> None:
        if self.trainer.running:
            self.pause()
        try:
            self._batch(getattr(self.session, name))
        except NonFiniteError:
            pass                             # announced by the "nonfinite" event
        except BpvizError as exc:
            self.warn("Cannot step", str(exc))

    def do_forward(self):
        self._step("forward")

    def do_backward(self):
        self._step("backward")

    def do_update(self):
        self._step("update")

    def do_step(self):
        self._step("step")

    def do_step_into(self):
        self._step("step_into")

    def do_finish_pass(self):
        self._step("finish_pass")

    def prime(self) -> None:
        """The start-up state: one forward pass on the current sample (panels not empty),
        the first layer selected; F11 then walks the backward pass, F10 completes the step."""
        self._priming = True
        try:
            self._batch(self.session.forward)
        except BpvizError as exc:
            self.warn("Cannot run the forward pass", str(exc))
        finally:
            self._priming = False
        self.builder.highlight_layer(None)
        self.select_layer(self.first_weighted_layer())

    def first_weighted_layer(self) -> int:
        """The first layer with weights (so the kernels panel has something to show)."""
        return next((i for i, l in enumerate(self.session.net.layers) if l.params), 0)

    def do_reset(self) -> None:
        """Shift+F5: stop training and start from fresh weights (history cleared)."""
        self.pause()
        self._batch(self.session.reset_weights)
        self._last_nonfinite = None
        self.prime()

    def toggle_run(self) -> None:
        if self.trainer.running:
            self.pause()
        else:
            self.run()

    def run(self) -> None:
        if self.trainer.running:
            return
        self.builder.highlight_layer(None)
        self._rate = (time.perf_counter(), self.session.step_count)
        self.trainer.start()

    def pause(self) -> None:
        self.trainer.stop()

    @Slot()
    def _on_started(self) -> None:
        self._set_run_ui(True)
        self._set_live(True)
        self.frames.start()

    def _set_live(self, live: bool) -> None:
        """Training frames: panels write their text at a lower rate (Panel.live)."""
        for panel in self.panels.values():
            if hasattr(panel, "live"):
                panel.live = live

    @Slot(int, object)
    def _on_stopped(self, _steps, error) -> None:
        self.frames.stop()
        self._set_live(False)
        self._set_run_ui(False)
        self.refresh()
        if isinstance(error, BreakpointHit):         # the cursor stopped where it held
            self._follow_cursor()                   # the reason already says where
            self.statusBar().showMessage(f"Breakpoint: {error.reason}", 20000)
            return
        if error is None or isinstance(error, NonFiniteError):
            return
        if isinstance(error, BpvizError):
            self.warn("Training stopped", str(error))
        else:
            from . import errors
            errors.report(type(error), error, error.__traceback__, "the training thread")

    def _set_run_ui(self, running) -> None:
        run = self.acts.run
        run.blockSignals(True)
        run.setChecked(running)
        run.blockSignals(False)
        run.setText("&Pause" if running else "&Run")
        icon = "SP_MediaPause" if running else "SP_MediaPlay"
        run.setIcon(self.style().standardIcon(getattr(self.style().StandardPixmap, icon)))
        self.run_label.setText("● running" if running else "paused")

    # ----- colour scale ------------------------------------------------------------------
    def apply_scale_mode(self) -> None:
        mode = self.scale_combo.currentData()
        limit = float(self.scale_limit.value())
        self.scale_limit.setEnabled(mode == "fixed")
        for panel in self.panels.values():
            panel.set_fixed_limit(limit)
            panel.set_scale_mode(mode)
        if self._latest is not None and not self.trainer.running:
            self.show_snapshot(self._latest)

    # ----- messages ----------------------------------------------------------------------
    def warn(self, title, text) -> None:
        QMessageBox.warning(self, title, text)

    # ----- closing -----------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.pause()
        self._hover_timer.stop()
        if getattr(self, "persist_layout", True):
            self.save_layout()
        self._detach()
        event.accept()
