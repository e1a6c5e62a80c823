"""FeatureMapsPanel: the input image and, for the selected layer, z and a of every channel.

Each tensor is one mosaic (one ImageItem): channels of a convolution/pooling layer tile into a
near-square grid with 1-px gaps; a dense layer's vector is a heat strip (wrapped into rows when
long, values printed in the cells when short). z is signed → diverging map centred on 0;
a after ReLU/sigmoid/softmax (or any map without a negative value) → sequential map. Layers
without an activation (pooling, Flatten, identity) show a single "z = a" mosaic. The scale
mode applies to z and a; the input image always spans its own range (grey when unsigned).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QWidget

from . import colors
from .base import (HintStack, Panel, fmt, forward_note, layer_header, layer_name,
                   shape_text)
from .mapview import MosaicView
from .mosaic import as_tiles, unit_ticks

HINT = ("Press F11 to step the forward pass one layer at a time\n"
        "(F10 runs a whole step: forward, backward and the update)")


class FeatureMapsPanel(Panel):
    title = "Feature maps"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view_x = MosaicView("input x", colorbar=False)
        self.view_z = MosaicView("z")
        self.view_a = MosaicView("a")
        maps = QWidget()
        row = QHBoxLayout(maps)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.view_z, 1)
        row.addWidget(self.view_a, 1)
        self.maps = HintStack(maps)
        content = QWidget()
        outer = QHBoxLayout(content)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.view_x, 1)
        outer.addWidget(self.maps, 3)
        self.body.set_content(content)
        self.body.show_content()
        self.maps.show_hint(HINT)
        for view in (self.view_x, self.view_z, self.view_a):
            view.hovered.connect(self._set_hover)

    @property
    def hint(self) -> str:
        return self.maps.hint

    # ----- drawing ---------------------------------------------------------------------------
    def _draw(self, snap) -> None:
        shown: dict[str, np.ndarray] = {}
        self._draw_input(snap, shown)
        layer = self.current_layer(snap)
        if layer is None or layer.z is None:
            self._set_header(layer_header(layer) if layer is not None else "")
            self.maps.show_hint(_hint(snap, layer))
            self.view_z.clear()
            self.view_a.clear()
            self._displayed = shown
            return
        self.maps.show_content()
        note = forward_note(snap, layer.index)
        self._set_header(layer_header(layer) + (f"  ({note})" if note else ""))
        has_activation = layer.activation != "identity"
        self.view_a.setVisible(has_activation)
        z_title = "z (pre-activation)" if has_activation else \
            f"z = a ({layer.kind}, no activation)"
        self._draw_tensor(self.view_z, layer, "z", layer.z, z_title, shown)
        if has_activation:
            self._draw_tensor(self.view_a, layer, "a", layer.a,
                              f"a = {layer.activation}(z)", shown)
            if layer.index == len(snap.layers) - 1:
                self.view_a.set_caption(self.view_a.caption.text() + _prediction(snap))
        else:
            self.view_a.clear()
        shown["z"], shown["a"] = layer.z, layer.a
        self._displayed = shown

    def _draw_input(self, snap, shown) -> None:
        x = np.asarray(snap.x)
        tiles, layout, is_maps = as_tiles(x)
        signed = colors.is_signed(x)
        mode = "per-layer"            # the input keeps its own range whatever the scale mode
        where = "channel {k} · row {r} · col {c}" if is_maps else "feature {k}"
        self.view_x.show_tiles(
            tiles, layout, signed=signed, mode=mode,
            cmap_kind=None if signed else "grey", values=not is_maps,
            labels=[f"c{k}" for k in range(layout.n)] if is_maps and layout.n > 1 else None,
            ticks=unit_ticks(layout, is_maps), nice=True,
            describe=lambda k, r, c, v: f"input · {where.format(k=k, r=r, c=c)} · x = {fmt(v)}")
        target = "" if snap.target is None else f" · target {_target_text(snap.target)}"
        self.view_x.set_title(f"input x · {shape_text(x.shape)}")
        finite = x[np.isfinite(x)]
        span = f" · values {fmt(finite.min())} … {fmt(finite.max())}" if finite.size else ""
        self.view_x.set_caption(f"sample #{snap.sample_index}{target}{span}")
        shown["x"], shown["mosaic_x"] = x, self.view_x.mosaic
        shown["levels_x"] = np.array(self.view_x.levels)

    def _draw_tensor(self, view, layer, name, data, title, shown) -> None:
        data = np.asarray(data)
        tiles, layout, is_maps = as_tiles(data)
        signed = True if name == "z" and layer.activation != "identity" else \
            colors.is_signed(data, layer.activation, name)
        prefix = layer_name(layer)
        if is_maps:
            def describe(k, r, c, v):
                return f"{prefix} · channel {k} · row {r} · col {c} · {name} = {fmt(v)}"
            labels = [f"c{k}" for k in range(layout.n)] if layout.n > 1 else None
        else:
            def describe(k, r, c, v):
                return f"{prefix} · unit {k} · {name} = {fmt(v)}"
            labels = None
        view.show_tiles(tiles, layout, signed=signed, mode=self.scale_mode,
                        fixed=self.fixed_limit, describe=describe, labels=labels,
                        values=not is_maps, ticks=unit_ticks(layout, is_maps),
                        nice=True, limit_key=layer.index)
        what = (f"{layout.n} channel{'s' if layout.n != 1 else ''} of "
                f"{layout.h}×{layout.w}" if is_maps else f"{layout.n} units")
        view.set_title(f"{title} · {what}")
        wrap = ("" if is_maps or layout.cols == 1 else
                f"\nunits in rows of {layout.cols}: unit = row × {layout.cols} + column")
        view.set_caption(_scale_caption(self.scale_mode, data, signed, is_maps) + wrap)
        shown[f"mosaic_{name}"] = view.mosaic
        shown[f"levels_{name}"] = np.array(view.levels)


def _hint(snap, layer) -> str:
    if layer is not None and snap.phase == "forward" and snap.layer is not None \
            and snap.layer < layer.index:
        return (f"The forward pass is at layer {snap.layer}; z and a of layer {layer.index} "
                f"appear when it gets here\n(F11 steps one layer, Shift+F11 finishes the pass)")
    return HINT


def _scale_caption(mode: str, data: np.ndarray, signed: bool, is_maps: bool = True) -> str:
    finite = data[np.isfinite(data)]
    rng = f"range {fmt(finite.min())} … {fmt(finite.max())}" if finite.size else "no values"
    bad = data.size - finite.size
    extra = f" · {bad} NaN/Inf" if bad else ""
    scale = {"per-map": "each map scaled to its own maximum" if is_maps else
             "scaled to its maximum",
             "per-layer": "one colour scale for all " + ("channels" if is_maps else "units"),
             "fixed": "fixed colour scale"}[mode]
    centre = "white = 0" if signed else "from 0"
    return f"{rng}{extra} · {scale} ({centre})"


def _target_text(target) -> str:
    t = np.asarray(target)
    if t.ndim == 0:
        return f"class {int(t)}"
    if t.size <= 8:
        return "[" + ", ".join(f"{v:.3g}" for v in t.reshape(-1)) + "]"
    return shape_text(t.shape)


def _prediction(snap) -> str:
    out = None if snap.output is None else np.asarray(snap.output).reshape(-1)
    if out is None or out.size < 2:
        return ""
    k = int(np.nanargmax(out))
    target = "" if snap.target is None else f" · target {_target_text(snap.target)}"
    return f"\nlargest output: unit {k} ({fmt(out[k])}){target}"
