"""Files for the window: dialogs, the recent-files list, and the three exports.

* ``RecentFiles``: most-recent-first list of paths kept in ``QSettings`` ("files/recent").
* ``ask_open`` / ``ask_save``: ``QFileDialog`` wrappers that remember the last folder
  (tests monkeypatch ``QFileDialog.getOpenFileName`` / ``getSaveFileName``).
* ``snapshot_arrays(snapshot)``: every array of one step under clear names
  (``x``, ``output``, ``L2_Conv2D_delta``, ``L2_Conv2D_dW``, ``L2_Conv2D_update_W`` ...),
  written by ``export_npz``; ``export_csv`` writes the per-step gradient-norm history;
  ``export_png`` grabs a widget.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox

from bpviz.core.atomic import atomic_write

BPVIZ_FILTER = "bpviz networks (*.bpviz);;All files (*)"
PNG_FILTER = "PNG images (*.png)"
NPZ_FILTER = "NumPy archives (*.npz)"
CSV_FILTER = "CSV tables (*.csv)"
PY_FILTER = "Python script (*.py)"
MAX_RECENT = 8


def settings() -> QSettings:
    """The app's settings (format and folder follow ``QSettings.setDefaultFormat/setPath``)."""
    return QSettings()


class RecentFiles:
    KEY = "files/recent"

    def __init__(self, store: QSettings | None = None):
        self.store = store or settings()

    def paths(self) -> list[str]:
        value = self.store.value(self.KEY, [])
        if isinstance(value, str):          # QSettings gives a str for a one-item list
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add(self, path) -> None:
        path = str(Path(path).resolve())
        items = [p for p in self.paths() if p != path]
        self.store.setValue(self.KEY, [path, *items][:MAX_RECENT])

    def remove(self, path) -> None:
        self.store.setValue(self.KEY, [p for p in self.paths() if p != str(path)])

    def clear(self) -> None:
        self.store.setValue(self.KEY, [])


def _last_dir(store: QSettings) -> str:
    folder = store.value("files/lastDir", "")
    return folder if folder and os.path.isdir(folder) else str(Path.home())


def _remember_dir(store: QSettings, path: str) -> None:
    store.setValue("files/lastDir", str(Path(path).resolve().parent))


def ask_open(parent, title="Open network", filt=BPVIZ_FILTER) -> str | None:
    store = settings()
    path, _ = QFileDialog.getOpenFileName(parent, title, _last_dir(store), filt)
    if not path:
        return None
    _remember_dir(store, path)
    return str(path)


def ask_save(parent, title, suggested: str, filt: str, suffix: str) -> str | None:
    """A save dialog; the suffix is added when the user typed none."""
    store = settings()
    start = suggested if os.path.isabs(suggested) else os.path.join(_last_dir(store), suggested)
    path, _ = QFileDialog.getSaveFileName(parent, title, start, filt)
    if not path:
        return None
    path = str(path)
    if not Path(path).suffix:
        path += suffix
    _remember_dir(store, path)
    return path


# ---------------------------------------------------------------- exports

def layer_prefix(index: int, kind: str) -> str:
    return f"L{index}_{kind}"


def snapshot_arrays(snapshot) -> dict[str, np.ndarray]:
    """The arrays of one step: input, output, and per layer z, a, δ, params, grads, updates."""
    out: dict[str, np.ndarray] = {"x": snapshot.x}
    for key in ("target", "output", "input_grad"):
        value = getattr(snapshot, key)
        if value is not None:
            out[key] = np.asarray(value)
    out["batch_indices"] = np.asarray(snapshot.batch_indices)
    for layer in snapshot.layers:
        p = layer_prefix(layer.index, layer.kind)
        for name in ("z", "a", "delta"):
            value = getattr(layer, name)
            if value is not None:
                out[f"{p}_{name}"] = value
        for k, value in layer.params.items():
            out[f"{p}_{k}"] = value
        for k, value in layer.grads.items():
            if value is not None:
                out[f"{p}_d{k}"] = value
        for k, u in layer.updates.items():
            out[f"{p}_{k}_before_update"] = u.before
            out[f"{p}_d{k}_used"] = u.grad
            out[f"{p}_update_{k}"] = u.update
            if u.decay is not None:
                out[f"{p}_decay_{k}"] = u.decay
    meta = {"step": snapshot.step, "phase": snapshot.phase, "layer": snapshot.layer,
            "label": snapshot.label, "sample_index": snapshot.sample_index,
            "loss": snapshot.loss, "accuracy": snapshot.accuracy, "lr": snapshot.lr,
            "layers": [layer.title for layer in snapshot.layers],
            "keys": "L{index}_{kind}_{name}: z, a, delta (displayed sample); W, b (current); "
                    "dW, db (last backward); W_before_update, dW_used (after clipping), "
                    "update_W (ΔW applied), decay_W (λW) of the last update"}
    out["meta_json"] = np.array(json.dumps(meta, allow_nan=True, ensure_ascii=False))
    return out


def export_npz(snapshot, path) -> list[str]:
    arrays = snapshot_arrays(snapshot)
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))
    return sorted(arrays)


def history_names(session) -> list[str]:
    return [layer_prefix(i, layer.kind) for i, layer in enumerate(session.net.layers)]


def export_csv(session, path) -> None:
    text = session.history.to_csv(history_names(session))
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def export_png(widget, path) -> None:
    image = widget.grab()
    if image.isNull() or not image.save(str(path), "PNG"):
        raise OSError(f"{path}: the image could not be written")


# ---------------------------------------------------------------- the window's file slots

def _is_network_file(path: str) -> bool:
    return path.lower().endswith(".bpviz")


class FilesMixin:
    """File menu, title, drag and drop and exports of ``MainWindow`` (needs ``session``,
    ``panels``, ``docks``, ``warn``, ``pause``, ``set_session``, ``prime``, ``refresh``)."""

    # ----- title and the unsaved-changes prompt ----------------------------------------
    def display_name(self) -> str:
        s = self.session
        return Path(s.path).name if s.path else f"untitled ({s.preset.name})"

    def update_title(self) -> None:
        title = f"{self.display_name()}{'*' if self.session.dirty else ''} — bpviz"
        if title != self.windowTitle():
            self.setWindowTitle(title)

    def maybe_save(self) -> bool:
        """Ask before losing unsaved changes; False when the user cancels."""
        if not self.session.dirty:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"{self.display_name()} has changes that are not saved (weights after training "
            f"steps, or edits). Save them first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Save:
            return self.save()
        return answer == buttons.Discard

    # ----- new / open / save -----------------------------------------------------------
    def new_default(self) -> bool:
        from bpviz.session.session import DEFAULT_PRESET
        return self.new_from_preset(DEFAULT_PRESET)

    def new_from_preset(self, name: str) -> bool:
        if not self.maybe_save():
            return False
        self.pause()
        from bpviz.session.session import Session
        try:
            session = Session(name)
        except (ValueError, OSError) as exc:
            self.warn("Cannot load the preset", str(exc))
            return False
        self.set_session(session)
        self.prime()
        return True

    def fill_preset_menu(self) -> None:
        from bpviz.core.presets import list_presets, load_preset
        menu = self.preset_menu
        menu.clear()
        for name in list_presets():
            try:
                title = load_preset(name).title
            except ValueError:
                continue
            act = menu.addAction(f"{name} — {title}")
            act.triggered.connect(lambda _c=False, n=name: self.new_from_preset(n))

    def open_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        path = ask_open(self)
        return self.open_path(path, ask=False) if path else False

    def open_path(self, path, ask: bool = True) -> bool:
        """Open a .bpviz file; on failure show the core's message and change nothing."""
        if ask and not self.maybe_save():
            return False
        self.pause()
        try:
            self._batch(self.session.open, str(path))
        except (ValueError, OSError) as exc:
            self.warn("Could not open the file", str(exc))
            if not Path(path).exists():
                RecentFiles().remove(path)
            return False
        RecentFiles().add(path)
        self.undo_stack.clear()
        self.prime()
        self.update_title()
        return True

    def fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        paths = RecentFiles().paths()
        for i, path in enumerate(paths, 1):
            act = menu.addAction(f"&{i} {Path(path).name}")
            act.setToolTip(path)
            act.setStatusTip(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if not paths:
            menu.addAction("(none)").setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear list")
        clear.setEnabled(bool(paths))
        clear.triggered.connect(lambda _c=False: RecentFiles().clear())

    def save(self) -> bool:
        if not self.session.path:
            return self.save_as()
        return self.save_to(self.session.path)

    def save_as(self) -> bool:
        suggested = self.session.path or f"{self.session.preset.name}.bpviz"
        path = ask_save(self, "Save network as", str(suggested), BPVIZ_FILTER, ".bpviz")
        return self.save_to(path) if path else False

    def save_to(self, path) -> bool:
        self.pause()
        try:
            self.session.save(str(path))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.warn("Could not save", f"{path}: {reason}\n\nNothing was written; any "
                                        f"existing file is unchanged.")
            return False
        RecentFiles().add(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        self.update_title()
        return True

    # ----- drag and drop ---------------------------------------------------------------
    @staticmethod
    def _dropped_path(event):
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and _is_network_file(url.toLocalFile()):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event) -> None:
        if self._dropped_path(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        path = self._dropped_path(event)
        if not path:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(path)

    # ----- exports -----------------------------------------------------------------------
    def _export_name(self, what: str, suffix: str) -> str:
        stem = Path(self.session.path).stem if self.session.path else self.session.preset.name
        return f"{stem}-step{self.session.step_count}-{what}{suffix}"

    def _write(self, what, write, path) -> bool:
        try:
            write(path)
        except (OSError, ValueError) as exc:
            self.warn(f"Could not export {what}", f"{path}: {exc}")
            return False
        self.statusBar().showMessage(f"Exported {what} to {path}", 5000)
        return True

    def export_window_png(self, path=None) -> bool:
        path = path or ask_save(self, "Export window as PNG", self._export_name("window", ".png"),
                                PNG_FILTER, ".png")
        return bool(path) and self._write("the window", lambda p: export_png(self, p), path)

    def fill_panel_export_menu(self) -> None:
        menu = self.panel_export_menu
        menu.clear()
        for name, dock in self.docks.items():
            act = menu.addAction(dock.windowTitle() + "…")
            act.triggered.connect(lambda _c=False, n=name: self.export_panel_png(n))

    def export_panel_png(self, name: str, path=None) -> bool:
        dock = self.docks[name]
        dock.show()
        dock.raise_()
        if name in self._unbuilt:
            self._build_panel(name)
        if name in self.panels:
            self._paint_stale(name)
        title = dock.windowTitle()
        path = path or ask_save(self, f"Export {title} as PNG",
                                self._export_name(name.replace("Dock", ""), ".png"),
                                PNG_FILTER, ".png")
        return bool(path) and self._write(title, lambda p: export_png(dock.widget(), p), path)

    def export_npz(self, path=None) -> bool:
        snapshot = self._latest if self.trainer.running else self.session.snapshot()
        path = path or ask_save(self, "Export the current step's arrays",
                                self._export_name("arrays", ".npz"), NPZ_FILTER, ".npz")
        return bool(path) and self._write("the arrays",
                                          lambda p: export_npz(snapshot, p), path)

    def export_torch(self, path=None) -> bool:
        """A PyTorch script rebuilding this architecture with these exact weights."""
        from bpviz.core.export_torch import save_torch_script
        self.pause()
        path = path or ask_save(self, "Export to PyTorch",
                                self._export_name("model", ".py"), PY_FILTER, ".py")
        return bool(path) and self._write("the PyTorch script",
                                          lambda p: save_torch_script(p, self.session.net), path)

    def export_csv(self, path=None) -> bool:
        self.pause()                     # the history grows while training runs
        path = path or ask_save(self, "Export the gradient-norm history",
                                self._export_name("history", ".csv"), CSV_FILTER, ".csv")
        return bool(path) and self._write("the history",
                                          lambda p: export_csv(self.session, p), path)
