"""Sliding-window geometry shared by convolution and pooling (NCHW).

Output size: ⌊(H + 2p − k) / s⌋ + 1, or with ``ceil_mode`` ⌈(H + 2p − k) / s⌉ + 1 less one
when the last window would start in the right padding (PyTorch's rule).
"""
from __future__ import annotations

from ..errors import LayerConfigError
from .base import shape_text


def out_size(n: int, k: int, s: int, p: int, ceil_mode: bool = False) -> int:
    span = n + 2 * p - k
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


def check_image_input(where: str, input_shape) -> None:
    if len(input_shape) != 3:
        raise LayerConfigError(
            f"{where}: input of shape {shape_text(input_shape)} is not an image; "
            f"it needs (channels, height, width)")
    if min(input_shape) < 1:
        raise LayerConfigError(f"{where}: input of shape {shape_text(input_shape)} "
                               f"has an empty axis; every size must be ≥ 1")


def output_hw(where: str, field: str, hw, k, s, p, ceil_mode=False):
    """(OH, OW) and notes about rows/columns the windows never reach."""
    (h, w), padded = hw, (hw[0] + 2 * p[0], hw[1] + 2 * p[1])
    if k[0] > padded[0] or k[1] > padded[1]:
        raise LayerConfigError(
            f"{where}: {field} {_txt(k)} is larger than the padded input "
            f"{padded[0]}×{padded[1]} (input {h}×{w}, padding {_txt(p)})")
    oh, ow = out_size(h, k[0], s[0], p[0], ceil_mode), out_size(w, k[1], s[1], p[1], ceil_mode)
    notes = []
    for axis, n, kk, ss, pp, o in (("row", h, k[0], s[0], p[0], oh),
                                   ("column", w, k[1], s[1], p[1], ow)):
        reach = (o - 1) * ss + kk - pp      # first input index past the last window
        if reach < n:
            notes.append(f"output rounded down: the last {n - reach} input {axis}(s) are "
                         f"never covered ({axis}s {n}, {field} {kk}, stride {ss}, padding {pp})")
    return (oh, ow), notes


def window_slices(k, s, out_hw):
    """Yield (m, n, (slice_rows, slice_cols)) for every kernel offset, row-major."""
    for m in range(k[0]):
        rows = slice(m, m + s[0] * (out_hw[0] - 1) + 1, s[0])
        for n in range(k[1]):
            yield m, n, (slice(None), slice(None), rows,
                         slice(n, n + s[1] * (out_hw[1] - 1) + 1, s[1]))


def _txt(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"
