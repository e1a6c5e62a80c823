"""KernelsPanel: one weight update of the selected layer as four maps side by side.

W before · ∂loss/∂W (the gradient used, after clipping) · ΔW actually applied · W after, all
from the snapshot's ``ParamSnapshot`` (after = before + ΔW). Before any update: the current W
and, once a backward pass has run, its gradient. Conv2D weights (F, C, kh, kw) are a grid with
one row per filter and one column per input channel (at most 16 × 16 kernels, with a note);
a layer with one input channel (the first convolution on grey images) shows its filters in
a near-square grid, row by row (no labels: they would hide a quarter of a 5×5 kernel;
hovering names the filter) instead of a one-kernel-wide column; Dense weights
(units, inputs) are one heat map, rows = units. Every map is signed: diverging,
centred on 0, with its own colour bar; W before and W after share one scale in "per-layer"
mode so that a change of colour is a change of value.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from .base import (Panel, backward_note, fmt, layer_header, layer_name, norm,
                   steady_height)
from .mapview import MosaicView
from .mosaic import grid_layout, index_ticks, maps_layout, matrix_layout

MAX_TILES = 16
NAMES = ("before", "grad", "update", "after")
TITLES = {"before": "W before", "grad": "∂loss/∂W (used)", "update": "ΔW applied",
          "after": "W after = W before + ΔW"}


class KernelsPanel(Panel):
    title = "Kernels and updates"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.views = {name: MosaicView(TITLES[name]) for name in NAMES}
        maps = QWidget()
        self.grid = QGridLayout(maps)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self._columns = 0
        self._arrange(4)
        self.summary = QLabel("")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        steady_height(self.summary)
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(maps, 1)
        column.addWidget(self.summary)
        self.body.set_content(content)
        self.body.show_hint("Select a Conv2D or Dense layer to see its weights")
        for view in self.views.values():
            view.hovered.connect(self._set_hover)

    # ----- layout ----------------------------------------------------------------------------
    def _arrange(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for k, name in enumerate(NAMES):
            self.grid.addWidget(self.views[name], k // columns, k % columns)
        for c in range(4):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    def resizeEvent(self, event) -> None:
        size = event.size()
        self._arrange(4 if size.width() >= 1.4 * size.height() else 2)
        super().resizeEvent(event)

    # ----- drawing ---------------------------------------------------------------------------
    def _draw(self, snap) -> None:
        layer = self.current_layer(snap)
        if layer is None or "W" not in layer.params:
            kind = layer.kind if layer is not None else "This layer"
            self._set_header(layer_header(layer) if layer is not None else "")
            self.body.show_hint(f"{kind} has no weights; select a Conv2D or Dense layer")
            for view in self.views.values():
                view.clear()
            self._displayed = {}
            return
        self.body.show_content()
        rec = layer.updates.get("W")
        if rec is not None:
            arrays = {"before": rec.before, "grad": rec.grad, "update": rec.update,
                      "after": rec.after}
            note = (f"update of step {snap.step}"
                    + ("; the gradient of the pass in progress is used by the next update"
                       if snap.phase in ("forward", "backward") else ""))
        else:
            arrays = {"before": layer.params["W"], "grad": layer.grads.get("W")}
            note = "no update yet"
            extra = backward_note(snap, layer.index)
            if arrays["grad"] is not None and extra:
                note += f" (gradient {extra})"
        self._set_header(f"{layer_header(layer)}  ({note})")
        shared = None
        if rec is not None and self.scale_mode == "per-layer":
            shared = np.stack([rec.before, rec.after])
        shown = {}
        for name in NAMES:
            view, data = self.views[name], arrays.get(name)
            if data is None:
                view.clear("no update yet\n(F10 completes the step and applies one)"
                           if name in ("update", "after") else
                           "appears after the backward pass\n(F11 steps it, F10 runs the step)")
                continue
            self._show(view, layer, name, np.asarray(data),
                       shared if name in ("before", "after") else None)
            shown[name] = np.asarray(data)
            shown[f"mosaic_{name}"] = view.mosaic
            shown[f"levels_{name}"] = np.array(view.levels)
        self.views["before"].set_title("W before" if rec is not None else "W (current)")
        self._displayed = shown
        if self.texts_due:
            self.summary.setText(_norms(snap, layer, arrays, rec))

    def _show(self, view, layer, name, W, shared) -> None:
        prefix = f"{layer_name(layer)} · {TITLES[name].split(' =')[0]}"
        order = ""
        if W.ndim == 4:
            F, C, kh, kw = W.shape
            f, c = min(F, MAX_TILES), min(C, MAX_TILES)
            tiles = W[:f, :c].reshape(f * c, kh, kw)
            if c == 1:      # one input channel: the filters in a near-square grid
                layout, ticks = maps_layout(f, kh, kw), None
                order = f"filters 0–{f - 1} row by row · " if f > 1 else ""
            else:           # one row per filter, one column per input channel
                layout = grid_layout(f, c, kh, kw)
                ticks = {"left": index_ticks(f, 16, kh / 2 - (kh + 1) / 2, kh + 1),
                         "top": index_ticks(c, 6, kw / 2 - (kw + 1) / 2, kw + 1),
                         "left_label": "filter", "top_label": "input channel"}

            def describe(k, r, col, v):
                fi, ci = divmod(k, c)
                return (f"{prefix} · filter {fi} · input channel {ci} · row {r} · col {col}"
                        f" · value = {fmt(v)}")
            cut = []
            if F > f:
                cut.append(f"{f} of {F} filters")
            if C > c:
                cut.append(f"{c} of {C} input channels")
            caption = order + (("showing " + ", ".join(cut) + " · ") if cut else "")
            view.set_aspect_locked(True)
        else:
            W2 = W.reshape(W.shape[0], -1)
            tiles, layout = W2[None], matrix_layout(*W2.shape)
            ticks = {"left": index_ticks(W2.shape[0], 12), "bottom": index_ticks(W2.shape[1], 4),
                     "left_label": "unit", "bottom_label": "input"}

            def describe(k, r, col, v):
                return f"{prefix} · unit {r} · input {col} · value = {fmt(v)}"
            caption = ""
            view.set_aspect_locked(False)
        view.show_tiles(tiles, layout, signed=True, mode=self.scale_mode,
                        fixed=self.fixed_limit, describe=describe, ticks=ticks,
                        limit_source=W if shared is None else shared,
                        nice=True, limit_key=layer.index)
        lo, hi = view.levels
        scale = {"per-map": "each kernel scaled to its own max", "fixed": f"fixed ±{fmt(hi)}",
                 "per-layer": f"±{fmt(hi)}"}[self.scale_mode]
        if shared is not None:
            scale += " (shared by W before/after)"
        symbol = {"before": "‖W‖", "grad": "‖∂loss/∂W‖", "update": "‖ΔW‖", "after": "‖W‖"}[name]
        view.set_caption(f"{caption}{symbol} = {fmt(norm(W))} · {scale}")


def _norms(snap, layer, arrays, rec) -> str:
    """One line of magnitudes: the update ratio ‖ΔW‖/‖W‖ (~1e-3 is a healthy rate)."""
    parts = [f"learning rate η = {fmt(snap.lr)}"]
    if rec is not None:
        w, u = norm(rec.before), norm(rec.update)
        parts.append(f"‖ΔW‖/‖W‖ = {fmt(u / w) if w > 0 else 'n/a'} (about 1e-3 is typical)")
        if rec.decay is not None:
            parts.append(f"L2 term ‖λW‖ = {fmt(norm(rec.decay))}")
        b = layer.updates.get("b")
        if b is not None:
            parts.append(f"‖Δb‖ = {fmt(norm(b.update))}")
    elif arrays.get("grad") is not None:
        parts.append(f"‖∂loss/∂W‖ = {fmt(norm(arrays['grad']))}")
    return " · ".join(parts)
