"""DataPanel: choose the dataset (embedded or loaded), pick the sample, preview the input.

Loading: "Load file…" takes an .npz (core ``load_npz``), an MNIST idx images or labels file
(its partner found by name, else asked for), or one image; "Load folder…" takes a folder of
class-named subfolders of images (bpviz/ui/image_loader.py states the decoding rules). Every
refusal — a bad file, or a dataset the network cannot take — shows a message in the
"dataError" label and changes nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (QApplication, QComboBox, QFileDialog, QFormLayout,
                               QGraphicsRectItem, QHBoxLayout, QLabel, QProgressDialog, QPushButton, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from bpviz.core.datasets import Dataset, list_datasets, load_dataset, load_mnist_idx, load_npz
from bpviz.core import losses
from bpviz.core.layers.base import shape_text
from bpviz.core.network import infer_shapes
from bpviz.session.session import dataset_targets

from .builder import check_size
from .fields import MessageLabel, guard_wheel
from .image_loader import (ImageLoadError, idx_kind, idx_partner, image_suffixes,
                           load_image_file, load_image_folder, scan_folder)

# Okabe–Ito: distinguishable with the common colour-vision deficiencies
CLASS_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                 "#000000"]


def class_colour(k: int) -> QColor:
    if k < len(CLASS_COLOURS):
        return QColor(CLASS_COLOURS[k])
    return pg.intColor(k, hues=12)


class DataPanel(QWidget):
    """Dataset chooser, file loading, sample selection and an input preview."""

    sampleChanged = Signal(int)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self._loaded: list[Dataset] = []     # user datasets offered in the combo
        self._scatter_of = None              # dataset whose scatter is drawn
        self._levels_of = (None, (0.0, 1.0))
        self._build_ui()
        self.refresh()

    # ----- construction ----------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.combo = QComboBox()
        self.combo.setObjectName("datasetCombo")
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(10)
        for name in list_datasets():
            self.combo.addItem(name, name)
        self.combo.currentIndexChanged.connect(self._combo_changed)
        self.file_button = QPushButton("Load file…")
        self.file_button.setObjectName("loadFileButton")
        self.file_button.setToolTip("Load an .npz (arrays x, y), MNIST idx files or one image")
        self.folder_button = QPushButton("Load folder…")
        self.folder_button.setObjectName("loadFolderButton")
        self.folder_button.setToolTip("Load a folder with one subfolder of images per class")
        self.file_button.clicked.connect(lambda: self.choose_file())
        self.folder_button.clicked.connect(lambda: self.choose_folder())

        self.info_label = QLabel()
        self.info_label.setObjectName("datasetInfo")
        self.info_label.setWordWrap(True)
        self.description = QLabel()
        self.description.setObjectName("datasetDescription")
        self.description.setWordWrap(True)
        self.description.setForegroundRole(QPalette.PlaceholderText)

        self.spin = QSpinBox()
        self.spin.setObjectName("sampleSpin")
        self.spin.setKeyboardTracking(False)
        self.spin.valueChanged.connect(self._spin_changed)
        self.count_label = QLabel()
        self.prev_button = QPushButton("◀ Prev")
        self.prev_button.setObjectName("previousSampleButton")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setObjectName("nextSampleButton")
        self.prev_button.clicked.connect(lambda: self.step_sample(-1))
        self.next_button.clicked.connect(lambda: self.step_sample(1))
        self.class_label = QLabel()
        self.class_label.setObjectName("sampleClass")
        self.class_label.setWordWrap(True)
        self.shown_label = QLabel()         # when the panels draw another sample (note_shown)
        self.shown_label.setObjectName("panelsSample")
        self.shown_label.setWordWrap(True)
        self.shown_label.hide()

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("inputPreview")
        self.plot.setMenuEnabled(False)
        self.plot.setMinimumHeight(180)
        self.plot.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.plot.setBackground(self.palette().color(QPalette.Base))
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.marker = pg.ScatterPlotItem(size=16, brush=None,
                                         pen=pg.mkPen(self.palette().color(QPalette.Text),
                                                      width=2.5))
        self.bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush="#0072B2")
        self.frame = QGraphicsRectItem(0, 0, 1, 1)        # the image's edge on any background
        pen = pg.mkPen(self.palette().color(QPalette.Mid), width=1)
        pen.setCosmetic(True)
        self.frame.setPen(pen)
        for item in (self.image_item, self.frame, self.scatter, self.bars, self.marker):
            self.plot.addItem(item)
        self.error_label = MessageLabel("dataError")
        guard_wheel(self.combo, self.spin)

        top = QHBoxLayout()
        top.addWidget(self.combo, 1)
        loaders = QHBoxLayout()
        loaders.addWidget(self.file_button)
        loaders.addWidget(self.folder_button)
        loaders.addStretch(1)
        sample = QHBoxLayout()
        sample.addWidget(self.spin)
        sample.addWidget(self.count_label)
        sample.addStretch(1)
        sample.addWidget(self.prev_button)
        sample.addWidget(self.next_button)
        form = QFormLayout()
        form.addRow("dataset", top)
        form.addRow("", loaders)
        form.addRow("sample", sample)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.info_label)
        layout.addWidget(self.description)
        layout.addWidget(self.error_label)
        layout.addWidget(self.class_label)
        layout.addWidget(self.shown_label)
        layout.addWidget(self.plot, 1)

    # ----- public API ------------------------------------------------------------------------
    def note_shown(self, index: int) -> None:
        """Say so when the panels draw another sample than the selected one: after
        continuous training (each batch's first) or a per-sample step (the selection has
        moved on). The next step by hand takes the selected sample (Session._next_batch)."""
        i = int(self.session.sample_index)
        self.shown_label.setVisible(int(index) != i)
        if int(index) != i:
            self.shown_label.setText(f"The panels show sample {int(index)}, from the last "
                                     f"step; F10 or F11 steps sample {i}.")

    def refresh(self) -> None:
        """Show ``session.dataset`` and ``session.sample_index``."""
        ds = self.session.dataset
        self._syncing = True
        try:
            self.combo.setCurrentIndex(self._combo_index(ds))
            self.spin.setRange(0, len(ds) - 1)
            self.spin.setValue(int(self.session.sample_index))
        finally:
            self._syncing = False
        self.count_label.setText(f"of {len(ds)}")
        self.info_label.setText(f"{len(ds):,} samples · input {shape_text(ds.input_shape)} · "
                                f"{ds.num_classes} classes: {self._class_list(ds)}")
        source = ds.attribution
        if len(source) > 70:
            source = source[:source.rfind(" ", 0, 68)] + " …"
        self.description.setText(ds.description + (f"\nSource: {source}" if source else ""))
        self.description.setToolTip(ds.description + (f"\nSource: {ds.attribution}"
                                                       if ds.attribution else ""))
        self._show_sample()

    def select_sample(self, index: int) -> None:
        """Select sample ``index`` through the session (emits sampleChanged)."""
        ds = self.session.dataset
        index = int(index) % len(ds)
        try:
            self.session.select_sample(index)
        except ValueError as exc:
            self.error_label.show_error(str(exc))
            self.refresh()
            return
        self.refresh()
        self.sampleChanged.emit(index)

    def step_sample(self, step: int) -> None:
        """Previous (-1) / next (+1) sample, wrapping around."""
        self.select_sample(self.session.sample_index + step)

    def set_dataset(self, dataset: Dataset, remember: bool = True) -> bool:
        """Use ``dataset``; on refusal show the message, change nothing, return False.
        ``remember``: offer it in the combo as "(loaded)" (user data)."""
        net = self.session.net
        try:
            if tuple(dataset.input_shape) != tuple(net.input_shape):
                check_size(dataset.input_shape, [l.config() for l in net.layers])
            self._check_targets(dataset)
            self.session.set_dataset(dataset)
        except ValueError as exc:
            self.error_label.show_error(f"dataset {dataset.name!r}: {exc}")
            self.refresh()
            return False
        if remember:
            self._remember(dataset)
        self.error_label.clear()
        self.refresh()
        self.sampleChanged.emit(int(self.session.sample_index))
        return True

    def _check_targets(self, dataset: Dataset) -> None:
        """The core's target rules (BCE labels in [0, 1], label/output shape) for outputs the
        session does not check itself (it checks class counts against a K > 1 output)."""
        net = self.session.net
        layers = [l.config() for l in net.layers]
        out = tuple(infer_shapes(dataset.input_shape, layers)[-1])
        if len(out) == 1 and out[0] > 1:
            return
        t = dataset_targets(dataset)
        losses.targets(net.loss, t, (len(t),) + out, net.dtype)

    def choose_file(self) -> bool:
        suffixes = " ".join(f"*{s}" for s in sorted(image_suffixes()))
        path, _ = QFileDialog.getOpenFileName(
            self, "Load data", "", f"Data and images (*.npz *ubyte *ubyte.gz *.idx* {suffixes});;"
            f"NumPy archive (*.npz);;MNIST idx (*ubyte *ubyte.gz *.idx*);;Images ({suffixes});;"
            "All files (*)")
        return self.load_file(path) if path else False

    def choose_folder(self) -> bool:
        path = QFileDialog.getExistingDirectory(self, "Load a folder of class folders")
        return self.load_folder(path) if path else False

    def load_file(self, path) -> bool:
        """Load an .npz, MNIST idx file or one image and use it (False: refused or cancelled)."""
        path = Path(path)
        try:
            with _busy():
                dataset = self._read_file(path)
        except ValueError as exc:
            self.error_label.show_error(str(exc))
            return False
        return dataset is not None and self.set_dataset(dataset)

    def load_folder(self, path) -> bool:
        """Load a folder of class-named subfolders of images and use it."""
        path = Path(path)
        try:
            total = len(scan_folder(path)[1])
            dialog = None
            if total > 200:
                dialog = QProgressDialog(f"Decoding {total} images…", "Cancel", 0, total, self)
                dialog.setWindowModality(Qt.WindowModal)
                dialog.setMinimumDuration(500)

            def progress(done, count):
                if dialog is None:
                    return True
                dialog.setValue(done)
                QApplication.processEvents()
                return not dialog.wasCanceled()
            with _busy():
                dataset = load_image_folder(path, self.session.net.input_shape, progress)
            if dialog is not None:
                dialog.close()
        except ValueError as exc:
            self.error_label.show_error(str(exc))
            return False
        return self.set_dataset(dataset)

    # ----- reading files ---------------------------------------------------------------------
    def _read_file(self, path: Path) -> Dataset | None:
        if not path.is_file():
            raise ImageLoadError(f"{path.name}: no such file")
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        kind = idx_kind(path)
        if kind is not None:
            partner = idx_partner(path) or self._ask_partner(path, kind)
            if partner is None:
                return None                                  # the user cancelled
            images, labels = (path, partner) if kind == "images" else (partner, path)
            return load_mnist_idx(images, labels)
        return load_image_file(path, self.session.net.input_shape,
                               tuple(self.session.dataset.classes))

    def _ask_partner(self, path: Path, kind: str) -> Path | None:
        other = "labels" if kind == "images" else "images"
        chosen, _ = QFileDialog.getOpenFileName(
            self, f"Choose the {other} file for {path.name}", str(path.parent),
            "MNIST idx (*ubyte *ubyte.gz *.idx*);;All files (*)")
        return Path(chosen) if chosen else None

    # ----- combo -----------------------------------------------------------------------------
    def _remember(self, dataset: Dataset) -> None:
        self._loaded = [d for d in self._loaded if d.name != dataset.name] + [dataset]
        syncing, self._syncing = self._syncing, True
        try:
            while self.combo.count() > len(list_datasets()):
                self.combo.removeItem(self.combo.count() - 1)
            self.combo.insertSeparator(self.combo.count())
            for d in self._loaded:
                self.combo.addItem(f"{d.name} (loaded)", d)
        finally:
            self._syncing = syncing

    def _combo_index(self, ds: Dataset) -> int:
        for i in range(self.combo.count()):
            if self.combo.itemData(i) is ds:
                return i
        names = list_datasets()
        if ds.name in names and not any(d is ds for d in self._loaded):
            return names.index(ds.name)
        self._remember(ds)
        return self.combo.count() - 1

    def _combo_changed(self, index: int) -> None:
        if self._syncing or index < 0:
            return
        data = self.combo.itemData(index)
        if isinstance(data, Dataset):
            if data is not self.session.dataset:
                self.set_dataset(data)
            return
        if data is None or data == self.session.dataset.name and \
                not any(d is self.session.dataset for d in self._loaded):
            return
        try:
            with _busy():
                dataset = load_dataset(data)
        except ValueError as exc:
            self.error_label.show_error(str(exc))
            self.refresh()
            return
        self.set_dataset(dataset, remember=False)

    def _spin_changed(self, value: int) -> None:
        if not self._syncing and value != self.session.sample_index:
            self.select_sample(value)

    # ----- preview ---------------------------------------------------------------------------
    @staticmethod
    def _class_list(ds: Dataset) -> str:
        names = ", ".join(ds.classes[:8])
        return names + (f", … ({ds.num_classes - 8} more)" if ds.num_classes > 8 else "")

    def _levels(self, ds: Dataset):
        if self._levels_of[0] is not ds:
            lo, hi = float(ds.x.min()), float(ds.x.max())
            if lo >= 0.0 and hi <= 1.0:
                lo, hi = 0.0, 1.0
            self._levels_of = (ds, (lo, hi if hi > lo else lo + 1.0))
        return self._levels_of[1]

    def _show_sample(self) -> None:
        ds, i = self.session.dataset, int(self.session.sample_index)
        label = int(ds.y[i])
        self.class_label.setText(f"sample {i}: class {label} · {ds.classes[label]}")
        x = ds.x[i]
        view = self.plot.getPlotItem()
        image = x.ndim == 3
        self.image_item.setVisible(image)
        self.frame.setVisible(image)
        for item in (self.scatter, self.marker):
            item.setVisible(not image and x.shape == (2,))
        self.bars.setVisible(not image and x.shape != (2,))
        for axis in ("left", "bottom"):
            view.showAxis(axis, not image)
        view.getViewBox().invertY(image)
        view.setAspectLocked(image or x.shape == (2,))
        if image:
            self._show_image(ds, x)
        elif x.shape == (2,):
            self._show_scatter(ds, i)
        else:
            self.bars.setOpts(x=np.arange(len(x)), height=np.asarray(x), width=0.8)
            view.enableAutoRange()

    def _show_image(self, ds: Dataset, x: np.ndarray) -> None:
        lo, hi = self._levels(ds)
        if x.shape[0] == 3:
            img = np.clip((x.transpose(1, 2, 0) - lo) / (hi - lo), 0, 1).astype(np.float32)
            self.image_item.setImage(img, levels=(0.0, 1.0), autoLevels=False)
        else:
            c, h, w = x.shape
            tiled = np.full((h, c * w + (c - 1)), lo, dtype=np.float32)
            for k in range(c):
                tiled[:, k * (w + 1):k * (w + 1) + w] = x[k]
            self.image_item.setImage(tiled, levels=(lo, hi), autoLevels=False)
        self.frame.setRect(0, 0, self.image_item.width(), self.image_item.height())
        self.plot.getPlotItem().getViewBox().autoRange(padding=0.02)

    def _show_scatter(self, ds: Dataset, i: int) -> None:
        if self._scatter_of is not ds:
            brushes = [pg.mkBrush(class_colour(int(k))) for k in ds.y]
            self.scatter.setData(x=ds.x[:, 0], y=ds.x[:, 1], brush=brushes)
            self._scatter_of = ds
            self.plot.getPlotItem().getViewBox().autoRange(items=[self.scatter])
        self.marker.setData(x=[ds.x[i, 0]], y=[ds.x[i, 1]])

    def displayed(self) -> dict:
        """What the preview holds (for tests): "image" (2-D array) or "points" and "marker"."""
        out = {}
        if self.image_item.isVisible() and self.image_item.image is not None:
            out["image"] = np.array(self.image_item.image)
        if self.scatter.isVisible():
            out["points"] = np.column_stack(self.scatter.getData())
            out["marker"] = np.column_stack(self.marker.getData())
        return out


class _busy:
    """A wait cursor while something slow runs."""

    def __enter__(self):
        QApplication.setOverrideCursor(Qt.WaitCursor)

    def __exit__(self, *exc):
        QApplication.restoreOverrideCursor()
        return False
