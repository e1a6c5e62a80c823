"""The window's chrome: actions, menus, toolbar, keys, and the dock layout.

``build(window)`` creates every ``QAction`` (kept in ``window.acts`` by name; debugger keys
F5, F10, F11, Shift+F11, Shift+F5), the menus File / Edit / Step / View / Help and the main
toolbar with the colour-scale selector. ``LayoutMixin`` gives the window its default dock
arrangement (View ▸ Reset layout), a compact variant for short screens, and saving/restoring
the layout and the colour-scale choice in ``QSettings``. The actions call the window's public
slots; nothing here touches the session.
"""
from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QLabel, QMessageBox, QSizePolicy,
                               QStyle, QToolBar, QWidget)

from .files import settings

SCALE_MODES = (("per map", "per-map"), ("per layer", "per-layer"), ("fixed ±", "fixed"))
LAYOUT_VERSION = 2          # bump when the default dock set or arrangement changes
SIDEBAR_WIDTH = 420
COMPACT_HEIGHT = 900        # below this the three sidebar docks are tabbed

# name: (text, shortcut(s), tip, window slot, standard icon or None)
STEP_ACTIONS = {
    "forward": ("&Forward", None, "Run the forward pass to its end", "do_forward",
                "SP_ArrowRight"),
    "backward": ("&Backward", None, "Run the backward pass (forward first if needed)",
                 "do_backward", "SP_ArrowLeft"),
    "update": ("&Update", None, "Apply the update (forward and backward first if needed)",
               "do_update", "SP_ArrowUp"),
    "step": ("&Step", "F10", "One whole training step: forward, backward, update (F10)",
             "do_step", "SP_MediaSeekForward"),
    "step_into": ("Step &into", "F11", "One layer of the current pass, or the update (F11)",
                  "do_step_into", "SP_MediaSkipForward"),
    "finish_pass": ("&Finish pass", "Shift+F11",
                    "Run to the end of the current pass (Shift+F11)", "do_finish_pass",
                    "SP_ArrowDown"),
    "run": ("&Run", "F5", "Train continuously / pause (F5)", "toggle_run", "SP_MediaPlay"),
    "reset": ("Stop / &reset weights", "Shift+F5",
              "Stop training and start again from fresh weights (Shift+F5)", "do_reset",
              "SP_MediaStop"),
}


def _action(window, text, slot=None, shortcut=None, tip=None, icon=None, name=None):
    act = QAction(text, window)
    if name:
        act.setObjectName(name)
    if shortcut:
        keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
        act.setShortcuts([QKeySequence(k) for k in keys])
    if tip:
        act.setToolTip(tip)
        act.setStatusTip(tip)
    if icon:
        act.setIcon(window.style().standardIcon(getattr(QStyle.StandardPixmap, icon)))
    if slot is not None:
        act.triggered.connect(lambda _checked=False: slot())
    return act


def build(window) -> SimpleNamespace:
    acts = SimpleNamespace()
    std = QKeySequence.StandardKey
    acts.new = _action(window, "&New", window.new_default, std.New,
                       "Start again from the default preset", name="actionNew")
    acts.open = _action(window, "&Open…", window.open_dialog, std.Open,
                        "Open a .bpviz network", "SP_DialogOpenButton", "actionOpen")
    acts.save = _action(window, "&Save", window.save, std.Save, "Save the network",
                        "SP_DialogSaveButton", "actionSave")
    acts.save_as = _action(window, "Save &as…", window.save_as, "Ctrl+Shift+S",
                           "Save the network under a new name", name="actionSaveAs")
    acts.export_window = _action(window, "&Window as PNG…", window.export_window_png,
                                 name="actionExportWindow")
    acts.export_npz = _action(window, "Current step's &arrays (.npz)…", window.export_npz,
                              tip="x, output and every layer's z, a, δ, W, ∂W, ΔW",
                              name="actionExportNpz")
    acts.export_torch = _action(window, "To &PyTorch script (.py)…", window.export_torch,
                                tip="A Python script that rebuilds this network and its "
                                    "weights in PyTorch (torch is not needed to export)",
                                name="actionExportTorch")
    acts.export_csv = _action(window, "&Gradient-norm history (.csv)…", window.export_csv,
                              tip="loss, accuracy and each layer's ‖∂W‖ and ‖δ‖ per step",
                              name="actionExportCsv")
    acts.quit = _action(window, "&Quit", window.close, std.Quit, name="actionQuit")
    for name, (text, keys, tip, slot, icon) in STEP_ACTIONS.items():
        setattr(acts, name, _action(window, text, getattr(window, slot), keys, tip, icon,
                                    f"action_{name}"))
    acts.run.setCheckable(True)
    acts.reset_layout = _action(window, "&Reset layout", window.reset_layout,
                                name="actionResetLayout")
    acts.about = _action(window, "&About bpviz", window.about, name="actionAbout")
    acts.keys = _action(window, "&Keyboard shortcuts", window.show_keys, "F1",
                        name="actionKeys")
    acts.undo = window.undo_stack.createUndoAction(window, "&Undo")
    acts.undo.setShortcuts([QKeySequence(std.Undo)])
    acts.redo = window.undo_stack.createRedoAction(window, "&Redo")
    acts.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    for act in vars(acts).values():
        window.addAction(act)          # keys work whatever has the focus
    _menus(window, acts)
    _toolbar(window, acts)
    return acts


def _menus(window, acts) -> None:
    bar = window.menuBar()
    m = bar.addMenu("&File")
    m.addActions([acts.new])
    window.preset_menu = m.addMenu("New from &preset")
    window.preset_menu.setObjectName("presetMenu")
    window.preset_menu.aboutToShow.connect(window.fill_preset_menu)
    m.addSeparator()
    m.addAction(acts.open)
    window.recent_menu = m.addMenu("Open &recent")
    window.recent_menu.setObjectName("recentMenu")
    window.recent_menu.aboutToShow.connect(window.fill_recent_menu)
    m.addActions([acts.save, acts.save_as])
    m.addSeparator()
    export = m.addMenu("&Export")
    export.addAction(acts.export_window)
    window.panel_export_menu = export.addMenu("&Panel as PNG")
    window.panel_export_menu.aboutToShow.connect(window.fill_panel_export_menu)
    export.addActions([acts.export_npz, acts.export_csv, acts.export_torch])
    m.addSeparator()
    m.addAction(acts.quit)
    e = bar.addMenu("&Edit")
    e.addActions([acts.undo, acts.redo])
    s = bar.addMenu("&Step")
    s.addActions([acts.step_into, acts.step, acts.finish_pass])
    s.addSeparator()
    s.addActions([acts.forward, acts.backward, acts.update])
    s.addSeparator()
    s.addActions([acts.run, acts.reset])
    window.view_menu = bar.addMenu("&View")
    h = bar.addMenu("&Help")
    h.addActions([acts.keys, acts.about])


def fill_view_menu(window, docks, toolbars) -> None:
    menu = window.view_menu
    menu.clear()
    debugger = set(getattr(window, "debugger_names", ()))
    for dock in docks:
        if dock.objectName() not in debugger:
            menu.addAction(dock.toggleViewAction())
    if debugger:
        sub = menu.addMenu("Gradient debugger")
        for dock in docks:
            if dock.objectName() in debugger:
                sub.addAction(dock.toggleViewAction())
    menu.addSeparator()
    for bar in toolbars:
        menu.addAction(bar.toggleViewAction())
    menu.addSeparator()
    menu.addAction(window.acts.reset_layout)


def _toolbar(window, acts) -> None:
    bar = QToolBar("Stepping", window)
    bar.setObjectName("mainToolBar")
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    bar.setMovable(True)
    bar.addActions([acts.step_into, acts.step, acts.finish_pass])
    bar.addSeparator()
    bar.addActions([acts.forward, acts.backward, acts.update])
    bar.addSeparator()
    bar.addActions([acts.run, acts.reset])
    bar.addSeparator()
    label = QLabel(" Colour scale: ")
    combo = QComboBox()
    combo.setObjectName("scaleMode")
    combo.setToolTip("How colour limits are chosen for every map: each map on its own, one "
                     "scale per layer, or a fixed ± limit")
    for text, mode in SCALE_MODES:
        combo.addItem(text, mode)
    limit = QDoubleSpinBox()
    limit.setObjectName("scaleLimit")
    limit.setDecimals(3)
    limit.setRange(1e-3, 1e6)
    limit.setValue(1.0)
    limit.setToolTip("The fixed colour limit: signed maps span ±limit, unsigned 0…limit")
    limit.setKeyboardTracking(False)
    bar.addWidget(label)
    bar.addWidget(combo)
    bar.addWidget(limit)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    bar.addWidget(spacer)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    window.toolbar, window.scale_combo, window.scale_limit = bar, combo, limit
    combo.currentIndexChanged.connect(lambda _i: window.apply_scale_mode())
    limit.valueChanged.connect(lambda _v: window.apply_scale_mode())


class LayoutMixin:
    """Default dock layout, Reset layout, and persistence for ``MainWindow`` (needs
    ``docks``, ``_panel_names``, ``toolbar``, ``scale_combo``, ``scale_limit``)."""

    def apply_default_layout(self) -> None:
        """Sidebar on the left: the network above data | training tabs (all three tabbed
        when the window is under COMPACT_HEIGHT, e.g. a 768-px laptop screen); the five
        panels tiled on the right, feature maps and δ above kernels, gradients and loss."""
        H, V = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        d = self.docks
        for dock in d.values():
            dock.setFloating(False)
            self.removeDockWidget(dock)       # untabify / unsplit everything first
        self.compact = self.height() < COMPACT_HEIGHT
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["builderDock"])
        if self.compact:
            self.tabifyDockWidget(d["builderDock"], d["dataDock"])
        else:
            self.splitDockWidget(d["builderDock"], d["dataDock"], V)
        self.tabifyDockWidget(d["dataDock"], d["trainingDock"])
        names = self._panel_names
        fm, sens, kern, grad, loss = (d[n] for n in names[:5])
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, fm)
        self.splitDockWidget(fm, kern, V)
        self.splitDockWidget(fm, sens, H)
        self.splitDockWidget(kern, grad, H)
        self.splitDockWidget(grad, loss, H)
        hidden = set(getattr(self, "debugger_names", ()))
        for extra in names[5:]:
            if extra not in hidden:
                self.tabifyDockWidget(loss, d[extra])
        for name in hidden:      # closed until opened from View (then tabbed beside Loss);
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d[name])  # untabbed:
        for name, dock in d.items():                  # hidden tabs made every frame dearer
            dock.setVisible(name not in hidden)
        (d["builderDock"] if self.compact else d["dataDock"]).raise_()
        self.toolbar.show()
        self._sizes_pending = True
        if self.isVisible():
            self._size_docks()

    def _size_docks(self) -> None:
        """Dock sizes of the default layout; only takes effect once the window is laid out."""
        self._sizes_pending = False
        self.layout().activate()
        H, V = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        d, names = self.docks, self._panel_names
        fm, sens, kern, grad, loss = (d[n] for n in names[:5])
        width, height = self.width(), self.height()
        self.resizeDocks([d["builderDock"], fm], [SIDEBAR_WIDTH, width - SIDEBAR_WIDTH], H)
        if not self.compact:
            self.resizeDocks([d["builderDock"], d["dataDock"]], [height * 55 // 100,
                                                                 height * 45 // 100], V)
        self.resizeDocks([fm, kern], [height * 52 // 100, height * 48 // 100], V)
        side = (width - SIDEBAR_WIDTH) // 2
        self.resizeDocks([fm, sens], [side, side], H)
        third = (width - SIDEBAR_WIDTH) // 3
        self.resizeDocks([kern, grad, loss], [third, third, third], H)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._sizes_pending:
            QTimer.singleShot(0, self._size_docks)
            self._size_docks()

    def reset_layout(self) -> None:
        self.apply_default_layout()
        self._paint_all_stale()

    def restore_layout(self) -> bool:
        store = settings()
        geometry, state = store.value("window/geometry"), store.value("window/state")
        ok = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty():
            ok = self.restoreState(state, LAYOUT_VERSION)
        if ok:
            self._sizes_pending = False
        self.layout_restored = ok
        return ok

    def save_layout(self) -> None:
        store = settings()
        store.setValue("window/geometry", self.saveGeometry())
        store.setValue("window/state", self.saveState(LAYOUT_VERSION))
        store.setValue("view/scaleMode", self.scale_combo.currentData())
        store.setValue("view/scaleLimit", float(self.scale_limit.value()))
        store.sync()

    def _load_view_settings(self) -> None:
        store = settings()
        index = self.scale_combo.findData(store.value("view/scaleMode", "per-layer"))
        self.scale_combo.setCurrentIndex(max(index, 0))
        try:
            self.scale_limit.setValue(float(store.value("view/scaleLimit", 1.0)))
        except (TypeError, ValueError):
            pass

    # ----- Help menu --------------------------------------------------------------------
    def about(self) -> None:
        import bpviz
        QMessageBox.about(self, "About bpviz",
                          f"bpviz {bpviz.__version__}\n\nWatch back-propagation happen, one "
                          f"layer at a time: every z, a, δ, ∂W and ΔW of a small network.")

    def show_keys(self) -> None:
        rows = [(a.text().replace("&", ""), a.shortcut().toString())
                for a in (self.acts.step_into, self.acts.step, self.acts.finish_pass,
                          self.acts.run, self.acts.reset, self.acts.undo, self.acts.redo,
                          self.acts.open, self.acts.save)]
        QMessageBox.information(self, "Keyboard shortcuts",
                                "\n".join(f"{k:<12} {t}" for t, k in rows))
