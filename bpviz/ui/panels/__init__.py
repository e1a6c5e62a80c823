"""The five snapshot panels (docs/UI-CONTRACT.md) and the pieces they share.

``PANEL_CLASSES`` lists (dock objectName, title, class) for the main window. Each panel is a
``Panel`` (base.py): ``show_snapshot``, ``set_layer``, ``layerPicked``, ``set_scale_mode``,
``set_fixed_limit``, ``displayed()``, ``hover_text``, ``last_snapshot``.

Modules: base (Panel, hint stack, header notes), mosaic (tiling, NumPy only), colors (maps,
limits, theme), mapview (one titled mosaic with colour bar and hover), plots (frame of the plot
panels), and one module per panel.
"""
import bpviz.ui  # noqa: F401  (pyqtgraph options before any item exists)

from .base import Panel
from .feature_maps import FeatureMapsPanel
from .gradients import GradientPanel
from .kernels import KernelsPanel
from .loss import LossPanel
from .sensitivity import SensitivityPanel

PANEL_CLASSES = [
    ("featureMapsDock", "Feature maps", FeatureMapsPanel),
    ("sensitivityDock", "Sensitivity maps (δ)", SensitivityPanel),
    ("kernelsDock", "Kernels and updates", KernelsPanel),
    ("gradientsDock", "Gradient magnitudes", GradientPanel),
    ("lossDock", "Loss and accuracy", LossPanel),
]

__all__ = ["PANEL_CLASSES", "Panel", "FeatureMapsPanel", "SensitivityPanel", "KernelsPanel",
           "GradientPanel", "LossPanel"]
