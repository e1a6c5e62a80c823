"""The gradient debugger's panels (see docs/DEBUGGER-CONTRACT.md).

Each module exports ``PANELS``: a list of (object_name, title, class); the main window adds
them as docks, hidden until the user opens them from the View menu.
"""
from __future__ import annotations

import importlib

MODULES = ("gradcheck", "breakpoints", "inspector", "timeline", "decomposition",
           "saturation", "formula", "compare")


def debugger_panels() -> list[tuple[str, str, type]]:
    """Every debugger panel, imported on first use."""
    panels = []
    for name in MODULES:
        panels += importlib.import_module(f"{__name__}.{name}").PANELS
    return panels
