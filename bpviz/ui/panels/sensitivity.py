"""SensitivityPanel: δ = ∂loss/∂z of the selected layer, every channel in one mosaic.

δ is signed: diverging map (CET-D1, white = 0) with symmetric limits ±max|δ| (rounded up to
a nice value, colors.sticky_limit) and a colour bar. The caption gives ‖δ‖ for the displayed
sample and over the batch. When the first layer is selected, ∂loss/∂x (the gradient that
reaches the input image) is shown beside it. Before the first backward pass the panel shows a
hint instead.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

from .base import Panel, backward_note, fmt, layer_header, layer_name, norm
from .mapview import MosaicView
from .mosaic import as_tiles, unit_ticks

HINT = "No δ yet — run the backward pass (F11 steps it layer by layer)"


class SensitivityPanel(Panel):
    title = "Sensitivity maps (δ)"
    # A left click on a δ pixel / unit: (layer index, unit) with unit = (channel, row, col)
    # for maps or (index,) for vectors (the δ inspector explains it).
    unitClicked = Signal(int, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = MosaicView("δ = ∂loss/∂z")
        self.view_dx = MosaicView("∂loss/∂x")
        content = QWidget()
        row = QHBoxLayout(content)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.view, 3)
        row.addWidget(self.view_dx, 2)
        self.view_dx.setVisible(False)
        self.body.set_content(content)
        self.body.show_hint(HINT)
        for view in (self.view, self.view_dx):
            view.hovered.connect(self._set_hover)
        self._clickable = None           # (layer index, maps?) of the δ drawn
        self.view.clicked.connect(self._on_clicked)

    def _on_clicked(self, k: int, r: int, c: int) -> None:
        if self._clickable is not None:
            index, maps = self._clickable
            self.unitClicked.emit(index, (k, r, c) if maps else (k,))

    def _draw(self, snap) -> None:
        layer = self.current_layer(snap)
        if layer is None or layer.delta is None:
            self._set_header(layer_header(layer) if layer is not None else "")
            self.body.show_hint(_hint(snap, layer))
            self.view.clear()
            self.view_dx.clear()
            self._displayed = {}
            self._clickable = None
            return
        self.body.show_content()
        note = backward_note(snap, layer.index)
        self._set_header(layer_header(layer) + (f"  ({note})" if note else ""))
        delta = np.asarray(layer.delta)
        self._show(self.view, delta, layer_name(layer), "δ")
        maps = delta.ndim == 3
        self._clickable = (layer.index, maps)
        self.view.set_title(f"δ = ∂loss/∂z · " + (f"{delta.shape[0]} channels of "
                                                   f"{delta.shape[1]}×{delta.shape[2]}"
                                                   if maps else f"{delta.size} units"))
        batch = len(snap.batch_indices)
        sample_norm = norm(delta)
        batch_text = (f" · {fmt(layer.delta_norm)} over the batch of {batch}"
                      if batch > 1 else "")
        self.view.set_caption(f"‖δ‖ = {fmt(sample_norm)} for this sample{batch_text}"
                              f" · white = 0, limits ±{fmt(self.view.levels[1])}"
                              + _mode_note(self.scale_mode))
        shown = {"delta": delta, "mosaic_delta": self.view.mosaic,
                 "levels_delta": np.array(self.view.levels)}
        show_dx = layer.index == 0 and snap.input_grad is not None
        self.view_dx.setVisible(show_dx)
        if show_dx:
            dx = np.asarray(snap.input_grad)
            self._show(self.view_dx, dx, "input", "∂loss/∂x")
            self.view_dx.set_title("∂loss/∂x (reaches the input)")
            self.view_dx.set_caption("how the loss changes with each input value")
            shown.update(input_grad=dx, mosaic_input_grad=self.view_dx.mosaic,
                         levels_input_grad=np.array(self.view_dx.levels))
        else:
            self.view_dx.clear()
        self._displayed = shown

    def _show(self, view, data, prefix, name) -> None:
        tiles, layout, is_maps = as_tiles(data)
        if is_maps:
            def describe(k, r, c, v):
                return f"{prefix} · channel {k} · row {r} · col {c} · {name} = {fmt(v)}"
        else:
            what = "feature" if prefix == "input" else "unit"

            def describe(k, r, c, v):
                return f"{prefix} · {what} {k} · {name} = {fmt(v)}"
        view.show_tiles(tiles, layout, signed=True, mode=self.scale_mode,
                        fixed=self.fixed_limit, describe=describe,
                        labels=[f"c{k}" for k in range(layout.n)]
                        if is_maps and layout.n > 1 else None,
                        values=not is_maps, ticks=unit_ticks(layout, is_maps),
                        nice=True, limit_key=prefix)


def _hint(snap, layer) -> str:
    if layer is not None and snap.phase == "backward" and snap.layer is not None \
            and snap.layer > layer.index:
        return (f"The backward pass is at layer {snap.layer}; δ of layer {layer.index} "
                f"appears when it gets here\n(F11 steps one layer, Shift+F11 finishes the pass)")
    return HINT


def _mode_note(mode: str) -> str:
    return {"per-map": " (each map scaled to its own max |δ|)", "per-layer": "",
            "fixed": " (fixed)"}[mode]
