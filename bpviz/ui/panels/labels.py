"""TileLabels: the names of a mosaic's tiles ("c0", "c1", …), drawn by one item.

Each label is a small white text on a dark translucent box at the top-left corner of its
tile, at a fixed screen size whatever the zoom. One item draws all of them with prepared
static texts: a label sits on the image, so it is repainted with every new image, and one
pyqtgraph TextItem per label cost a Python paint call and several bounding-rect queries
each (18 labels on a LeNet-5 frame, ~0.3 ms).
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QStaticText

PAD = 2.0                  # px around the text inside its box


class TileLabels(pg.GraphicsObject):
    """Labels at mosaic positions (x = column, y = row); ``set_labels`` replaces them."""

    def __init__(self, font: QFont):
        super().__init__()
        self.font_ = QFont(font)
        self._metrics = QFontMetricsF(self.font_)
        self.fill = QColor(0, 0, 0, 120)
        self.color = QColor(255, 255, 255)
        self.items: list[tuple[QPointF, str, QStaticText, QRectF]] = []
        self._rect = QRectF()

    def set_labels(self, entries, rect: QRectF) -> None:
        """``entries``: (x, y, text) for each label; ``rect``: the mosaic's extent."""
        self.prepareGeometryChange()
        self._rect = QRectF(rect)
        self.items = []
        h = self._metrics.height()
        for x, y, text in entries:
            static = QStaticText(text)
            static.setTextFormat(Qt.TextFormat.PlainText)
            box = QRectF(0, 0, self._metrics.horizontalAdvance(text) + 2 * PAD, h + 2 * PAD)
            self.items.append((QPointF(x, y), text, static, box))
        self.update()

    def texts(self) -> list[str]:
        return [text for _, text, _, _ in self.items]

    def boundingRect(self) -> QRectF:
        return self._rect                     # shown only on tiles large enough for them

    def paint(self, painter, *args) -> None:
        if not self.items:
            return
        t = painter.transform()
        painter.resetTransform()              # screen pixels: the text is never scaled
        painter.setFont(self.font_)
        painter.setPen(self.color)
        for pos, _, static, box in self.items:
            p = t.map(pos)
            painter.fillRect(box.translated(p), self.fill)
            painter.drawStaticText(p + QPointF(PAD, PAD), static)
