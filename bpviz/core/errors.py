"""Error types of the core. Every error caused by bad input is a ValueError."""
from __future__ import annotations


class BpvizError(ValueError):
    """Bad input: the message names what was wrong, the value and the rule."""


class LayerConfigError(BpvizError):
    """A layer field, or a stack of layers, that cannot be built."""


class TargetError(BpvizError):
    """Inputs or targets that do not fit the network."""


class FileFormatError(BpvizError):
    """A .bpviz file that is damaged, too large, or does not match its architecture."""


class SettingsError(BpvizError):
    """An optimiser or training setting out of range (learning rate, clipping, L2...)."""


class NonFiniteError(BpvizError):
    """A NaN or Inf appeared; ``report`` says where. Weights were left as they were."""

    def __init__(self, report):
        self.report = report
        super().__init__(report.describe())
