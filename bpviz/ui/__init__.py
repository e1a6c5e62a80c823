"""The Qt layer: PySide6 + pyqtgraph views over bpviz.session (see docs/UI-CONTRACT.md).

pyqtgraph options are set once here, before any view exists: ``imageAxisOrder='row-major'``
so that a NumPy (rows, cols) array is drawn with rows down the screen (otherwise every map
is transposed), and no antialiasing (crisp pixels and faster refreshes).
"""
import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
