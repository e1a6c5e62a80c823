"""The NumPy back-propagation core: layers, losses, network, optimiser, checks, files.

Usable from a notebook with no Qt installed::

    from bpviz.core import Network, Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten
"""
from .errors import (BpvizError, FileFormatError, LayerConfigError, NonFiniteError,
                     SettingsError, TargetError)
from .gradcheck import GradientCheck, gradient_check
from .guard import NonFiniteReport
from .layers import AvgPool2D, Conv2D, Dense, Flatten, Layer, MaxPool2D, layer_from_config
from .network import Network, infer_shapes
from .optim import SGD, UpdateRecord
from .train import Trainer, accuracy

__all__ = [
    "Network", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Layer",
    "layer_from_config", "infer_shapes", "SGD", "UpdateRecord", "Trainer", "accuracy",
    "gradient_check", "GradientCheck", "NonFiniteReport", "BpvizError", "LayerConfigError",
    "TargetError", "FileFormatError", "SettingsError", "NonFiniteError",
]
