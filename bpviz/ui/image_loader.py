"""Image files and folders of class-named subfolders → a core Dataset, decoded with QImage.

Rules (one place, so the panel and its tests agree):

* Channels follow the network's input: C = 1 → every image is converted to grey (Qt's
  luminance); C = 3 → RGB (a grey image repeats on the three channels); any other C is refused.
  A network whose input is a vector takes grey images.
* Size: images are scaled to the network's input H×W when it is (C, H, W) (smooth scaling, the
  aspect ratio is not kept); otherwise every image takes the first image's size.
* Pixels are divided by 255 (values in [0, 1]); transparent pixels are composited on white.
* A folder: each subfolder holding at least one image is a class (sorted by name; label =
  position). Files with an image suffix must decode, or the whole load is refused naming the
  file; other files (README.txt, .DS_Store) are skipped and counted.
* Refusals raise ``ImageLoadError`` (a ValueError) naming the file and the rule.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter

from bpviz.core.datasets import Dataset

MAX_IMAGES = 100_000           # per folder
MAX_SIDE = 1024                # largest H or W an image dataset may have


class ImageLoadError(ValueError):
    """An image file or folder that cannot become a dataset; the message names the file."""


def image_suffixes() -> set[str]:
    return {"." + bytes(f).decode().lower() for f in QImageReader.supportedImageFormats()}


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in image_suffixes()


def target_layout(input_shape) -> tuple[int, tuple[int, int] | None]:
    """(channels, (H, W) or None) that images are converted to for a network input shape."""
    shape = tuple(input_shape)
    if len(shape) != 3:
        return 1, None
    c, h, w = shape
    if c not in (1, 3):
        raise ImageLoadError(f"the network's input has {c} channels; images give 1 (grey) "
                             f"or 3 (RGB): set the input shape to 1×{h}×{w} or 3×{h}×{w} first")
    return c, (h, w)


def read_image(path, channels: int, size: tuple[int, int] | None, name: str | None = None
               ) -> np.ndarray:
    """One image as float64 (channels, H, W) in [0, 1]; ``size`` = (H, W) to scale to."""
    name = name or Path(path).name
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    if not reader.canRead():
        raise ImageLoadError(f"{name}: not an image Qt can read ({reader.errorString()})")
    found = reader.size()
    if size is None and found.isValid() and max(found.width(), found.height()) > MAX_SIDE:
        raise ImageLoadError(f"{name}: {found.width()}×{found.height()} pixels; images over "
                             f"{MAX_SIDE} pixels a side are refused (set the network's input "
                             f"shape to the size you want first)")
    if size is not None:
        reader.setScaledSize(QSize(size[1], size[0]))
    image = reader.read()
    if image.isNull():
        raise ImageLoadError(f"{name}: damaged or unreadable image ({reader.errorString()})")
    if size is not None and (image.height(), image.width()) != tuple(size):
        image = image.scaled(size[1], size[0], Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    if image.hasAlphaChannel():
        flat = QImage(image.size(), QImage.Format_RGB32)
        flat.fill(QColor("white"))
        painter = QPainter(flat)
        painter.drawImage(0, 0, image)
        painter.end()
        image = flat
    return _to_array(image, channels)


def _to_array(image: QImage, channels: int) -> np.ndarray:
    fmt = QImage.Format_Grayscale8 if channels == 1 else QImage.Format_RGB888
    image = image.convertToFormat(fmt)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=h * stride).reshape(h, stride)
    pixels = raw[:, :w * channels].reshape(h, w, channels)
    return pixels.transpose(2, 0, 1).astype(np.float64) / 255.0


def load_image_file(path, input_shape, classes: tuple[str, ...] | None = None) -> Dataset:
    """One image as a one-sample dataset. Its label: the parent folder's name when that is
    one of ``classes`` (then those classes are kept), else class 0 named after the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path.name}: no such file")
    channels, size = target_layout(input_shape)
    x = read_image(path, channels, size)
    if classes and path.parent.name in classes:
        names, label = tuple(classes), classes.index(path.parent.name)
    else:
        names, label = (path.stem,), 0
    return Dataset(path.stem, x[None], np.array([label]), names,
                   f"1 image from {path.name}, {_layout_text(x.shape)}, label "
                   f"{names[label]!r}", f"user file {path.name}")


def scan_folder(folder) -> tuple[list[str], list[tuple[Path, int]], int]:
    """(class names, [(image path, label)], number of skipped non-image files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageLoadError(f"{folder.name}: not a folder")
    suffixes = image_suffixes()
    classes, files, skipped = [], [], 0
    for sub in sorted((p for p in folder.iterdir() if p.is_dir()
                       and not p.name.startswith(".")), key=lambda p: _natural(p.name)):
        images = []
        for f in sorted(sub.iterdir(), key=lambda p: _natural(p.name)):
            if f.name.startswith(".") or not f.is_file():
                continue
            if f.suffix.lower() in suffixes:
                images.append(f)
            else:
                skipped += 1
        if images:
            files += [(f, len(classes)) for f in images]
            classes.append(sub.name)
    if not classes:
        raise ImageLoadError(f"{folder.name}: no class folders with images; put the images in "
                             f"one subfolder per class ({folder.name}/<class>/<image>.png)")
    if len(files) > MAX_IMAGES:
        raise ImageLoadError(f"{folder.name}: {len(files)} images; at most {MAX_IMAGES} are "
                             f"loaded at once")
    return classes, files, skipped


def load_image_folder(folder, input_shape,
                      progress: Callable[[int, int], bool] | None = None) -> Dataset:
    """A folder of class-named subfolders of images. ``progress(done, total)`` may return
    False to cancel (raises ImageLoadError, nothing is returned)."""
    folder = Path(folder)
    classes, files, skipped = scan_folder(folder)
    channels, size = target_layout(input_shape)
    x = None
    for i, (path, _) in enumerate(files):
        rel = f"{path.parent.name}/{path.name}"
        img = read_image(path, channels, size, name=rel)
        if x is None:
            size = img.shape[1:]
            x = np.empty((len(files),) + img.shape)
        x[i] = img
        if progress is not None and i % 50 == 49 and progress(i + 1, len(files)) is False:
            raise ImageLoadError(f"{folder.name}: loading cancelled")
    y = np.array([label for _, label in files])
    note = f", {skipped} non-image file(s) skipped" if skipped else ""
    return Dataset(folder.name, x, y, tuple(classes),
                   f"{len(files)} images in {len(classes)} class folders of {folder.name}, "
                   f"{_layout_text(x.shape[1:])}{note}", f"user folder {folder.name}")


def _layout_text(shape) -> str:
    kind = {1: "grey", 3: "RGB"}.get(shape[0], f"{shape[0]} channels")
    return f"{kind} {shape[1]}×{shape[2]}"


def _natural(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


# ---------------------------------------------------------------- MNIST idx files

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801


def idx_kind(path) -> str | None:
    """"images" / "labels" for an (optionally gzipped) idx file of unsigned bytes, else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                head = gzip.GzipFile(fileobj=fh).read(4)
    except (OSError, EOFError):
        return None
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    return {IDX_IMAGES: "images", IDX_LABELS: "labels"}.get(magic)


def idx_partner(path) -> Path | None:
    """The labels file for an images file (or the reverse) by MNIST's naming convention:
    "images" ↔ "labels" and "idx3" ↔ "idx1", with or without ".gz"."""
    path = Path(path)
    name = path.name
    swaps = [("images", "labels"), ("idx3", "idx1")]
    if "labels" in name or "idx1" in name:
        swaps = [(b, a) for a, b in swaps]
    partner = name
    for a, b in swaps:
        partner = partner.replace(a, b)
    if partner == name:
        return None
    base = partner.removesuffix(".gz")
    for candidate in (partner, base, base + ".gz"):
        if (path.parent / candidate).is_file() and candidate != name:
            return path.parent / candidate
    return None
