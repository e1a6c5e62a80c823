"""Datasets for bpviz: generated toy sets, bundled digits, MATH.md's reference case, user files.

NumPy and the standard library only (no Qt, no scikit-learn).

* ``load_dataset(name, n=None, seed=0, noise=None)`` builds a named set; generated sets are
  deterministic for a given seed (``np.random.default_rng(seed)``) and classes are balanced
  (sample ``i`` belongs to class ``i % k`` before one seeded shuffle).
* ``load_npz(path)`` / ``load_mnist_idx(images, labels)`` read a user's files; every bad input
  raises ``DatasetError`` (a ``ValueError``) naming the file, the field or value, and the rule.
* ``reference_case()`` returns MATH.md's convolution worked example, typed in by hand from the
  document (an independent test oracle: nothing in it is computed).

Layout: ``x`` is float64 ``(N, features)`` or ``(N, C, H, W)``; ``y`` is int64 ``(N,)``.
Returned arrays are read-only so that panels and caches can share them safely.
"""
from __future__ import annotations

import gzip
import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

MAX_GENERATED = 100_000          # largest n for a generated set
MAX_FILE_BYTES = 512 * 2**20     # cap on uncompressed bytes read from a user's file
MAX_CLASSES = 1000               # cap on the number of classes in a user's file
SHAPE_SIZE = 12                  # "shapes" images are 1 x 12 x 12


class DatasetError(ValueError):
    """A dataset name, argument or file was rejected; the message says which and why."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Samples ``x`` (N, *input_shape) float64 with integer labels ``y`` (N,) int64."""

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    description: str
    attribution: str = ""
    t: np.ndarray | None = None     # explicit per-sample targets (N, ...) replacing the labels

    def __post_init__(self) -> None:
        x = np.array(self.x, dtype=np.float64)
        y = np.array(self.y, dtype=np.int64)
        if x.ndim < 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise DatasetError(f"dataset {self.name!r}: x {x.shape} and y {y.shape} must be "
                               "(N, ...) and (N,) with N > 0")
        if y.min() < 0 or y.max() >= len(self.classes):
            raise DatasetError(f"dataset {self.name!r}: labels must lie in "
                               f"0..{len(self.classes) - 1}")
        x.flags.writeable = y.flags.writeable = False
        t = self.t
        if t is not None:
            t = np.array(t, dtype=np.float64)
            if t.ndim < 1 or len(t) != len(x) or not np.all(np.isfinite(t)):
                raise DatasetError(f"dataset {self.name!r}: targets t {t.shape} must be finite "
                                   f"with one row per sample ({len(x)})")
            t.flags.writeable = False
        for field, value in (("x", x), ("y", y), ("classes", tuple(self.classes)), ("t", t)):
            object.__setattr__(self, field, value)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def one_hot(self) -> np.ndarray:
        """Targets as a (N, num_classes) float64 array of 0s and 1s."""
        return np.eye(self.num_classes, dtype=np.float64)[self.y]


# ---------------------------------------------------------------- generated 2-D sets

def _balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


def _xor(rng, n, noise):
    """4 Gaussian clusters at (+-0.5, +-0.5); label 1 where the centre's signs differ."""
    quadrant = _balanced_labels(rng, n, 4)
    centres = np.array([[0.5, 0.5], [-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5]])
    x = centres[quadrant] + rng.normal(0.0, noise, size=(n, 2))
    return x, (quadrant >= 2).astype(np.int64)


def _circles(rng, n, noise):
    """Outer circle r = 1 (class 0) around an inner circle r = 0.5 (class 1)."""
    y = _balanced_labels(rng, n, 2)
    theta = rng.uniform(0.0, 2 * np.pi, n)
    r = np.where(y == 0, 1.0, 0.5)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return x + rng.normal(0.0, noise, size=(n, 2)), y


def _moons(rng, n, noise):
    """Two interleaved half circles, shifted and scaled so both features span [-1, 1]."""
    y = _balanced_labels(rng, n, 2)
    t = rng.uniform(0.0, np.pi, n)
    x0 = np.where(y == 0, np.cos(t), 1.0 - np.cos(t))
    x1 = np.where(y == 0, np.sin(t), 0.5 - np.sin(t))
    x = np.stack([(x0 - 0.5) / 1.5, (x1 - 0.25) / 0.75], axis=1)
    return x + rng.normal(0.0, noise, size=(n, 2)), y


def _spirals(rng, n, noise):
    """Two interleaved arms (class = arm), 1.25 turns each, radius 0.1..1."""
    y = _balanced_labels(rng, n, 2)
    t = rng.uniform(0.0, 1.0, n)
    r = 0.1 + 0.9 * t
    theta = t * 2.5 * np.pi + y * np.pi
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return x + rng.normal(0.0, noise, size=(n, 2)), y


# ---------------------------------------------------------------- generated images

SHAPE_CLASSES = ("square", "circle", "triangle", "cross")


def _shape_mask(kind: int, cx: float, cy: float, h: float) -> np.ndarray:
    """SHAPE_SIZE x SHAPE_SIZE bool mask: a filled shape of half-size h centred at (cx, cy)."""
    rows, cols = np.mgrid[0:SHAPE_SIZE, 0:SHAPE_SIZE] + 0.5   # pixel centres
    dx, dy = cols - cx, rows - cy
    if kind == 0:                                   # square
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if kind == 1:                                   # circle (disc)
        return dx**2 + dy**2 <= h**2
    if kind == 2:                                   # triangle, apex up, base at the bottom
        depth = dy + h                              # 0 at the apex, 2h at the base
        return (depth >= 0) & (depth <= 2 * h) & (np.abs(dx) <= depth / 2)
    t = max(0.75, h / 3)                            # cross (plus sign), arm half-width t
    return ((np.abs(dx) <= t) & (np.abs(dy) <= h)) | ((np.abs(dy) <= t) & (np.abs(dx) <= h))


def _shapes(rng, n, noise):
    """Filled square / circle / triangle / cross, size 5..9 px, anywhere it fits, in [0, 1]."""
    y = _balanced_labels(rng, n, len(SHAPE_CLASSES))
    x = np.zeros((n, 1, SHAPE_SIZE, SHAPE_SIZE))
    for i, kind in enumerate(y):
        h = rng.uniform(2.5, 4.5)
        cx, cy = rng.uniform(h, SHAPE_SIZE - h, size=2)
        x[i, 0] = _shape_mask(int(kind), cx, cy, h) * rng.uniform(0.7, 1.0)
    x += rng.normal(0.0, noise, size=x.shape)
    return np.clip(x, 0.0, 1.0), y


# ---------------------------------------------------------------- fixed sets

DIGITS_ATTRIBUTION = ("E. Alpaydin, C. Kaynak, \"Optical Recognition of Handwritten Digits\", "
                      "UCI Machine Learning Repository, 1998, DOI 10.24432/C50P49, CC BY 4.0 "
                      "(copy distributed with scikit-learn); see resources/ATTRIBUTION.md")
_digits_cache: list[tuple[np.ndarray, np.ndarray]] = []


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled 1797 x 65 csv: 8x8 pixels 0..16 (row-major), label 0..9; pixels / 16."""
    if not _digits_cache:
        ref = resources.files("bpviz.resources") / "data" / "digits.csv.gz"
        try:
            text = gzip.decompress(ref.read_bytes()).decode("ascii")
            table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
        except (OSError, EOFError, ValueError) as exc:
            raise DatasetError(f"bundled resource data/digits.csv.gz is damaged: {exc}") from exc
        if (table.shape != (1797, 65) or table[:, :64].min() < 0 or table[:, :64].max() > 16
                or table[:, 64].min() < 0 or table[:, 64].max() > 9):
            raise DatasetError("bundled resource data/digits.csv.gz is damaged: expected 1797 "
                               "rows of 64 pixels in 0..16 and a label in 0..9")
        _digits_cache.append((table[:, :64].reshape(-1, 1, 8, 8) / 16.0, table[:, 64]))
    return _digits_cache[0]


def _digits28():
    """Each 8x8 digit repeated 3x3 (nearest neighbour, np.kron) to 24x24, zero-padded by 2."""
    x8, y = _digits()
    big = np.kron(x8, np.ones((3, 3)))
    return np.pad(big, ((0, 0), (0, 0), (2, 2), (2, 2))), y


def _xor4():
    return np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([0, 1, 1, 0])


def reference_case() -> dict:
    """MATH.md section 2's reference case, typed in by hand (never computed)."""
    x = [[[0, 1, 1, 0, 2], [2, 2, 2, 2, 1], [1, 0, 0, 2, 0], [0, 1, 1, 0, 0], [1, 2, 0, 0, 2]],
         [[1, 0, 2, 2, 0], [0, 0, 0, 2, 0], [1, 2, 1, 2, 1], [1, 0, 0, 0, 0], [1, 2, 1, 1, 1]],
         [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 2, 2, 2], [2, 1, 0, 0, 1]]]
    w = [[[[-1, 1, 0], [0, 1, 0], [0, 1, 1]],
          [[-1, -1, 0], [0, 0, 0], [0, -1, 0]],
          [[0, 0, -1], [0, 1, 0], [1, -1, -1]]],
         [[[1, 1, -1], [-1, -1, 1], [0, -1, 1]],
          [[0, 1, 0], [-1, 0, -1], [-1, 1, 0]],
          [[-1, 0, 0], [-1, 0, 1], [-1, 0, 0]]]]
    out = [[[6, 7, 5], [3, -1, -1], [2, -1, 4]], [[2, -5, -8], [1, -4, -4], [0, -5, -5]]]
    delta = [[[0, 1, 1], [2, 2, 2], [1, 0, 0]], [[1, 0, 2], [0, 0, 0], [1, 2, 1]]]
    w_after = [[[[-1.008, 0.990, -0.009], [-0.005, 0.994, -0.006], [-0.006, 0.995, 0.996]],
                [[-1.004, -1.001, -0.004], [-0.010, -0.009, -0.012], [-0.002, -1.002, -0.002]],
                [[-0.002, -0.002, -1.003], [-0.005, 0.992, -0.005], [0.993, -1.008, -1.007]]],
               [[[0.998, 0.998, -1.001], [-1.004, -1.007, 0.997], [-0.004, -1.004, 0.998]],
                [[0.000, 0.999, 0.000], [-1.009, -0.005, -1.004], [-1.004, 1.000, 0.000]],
                [[-1.004, -0.006, -0.005], [-1.002, -0.005, 0.998], [-1.002, -0.001, 0.000]]]]
    f64 = np.float64
    return {"x": np.array([x], f64), "W": np.array(w, f64), "b": np.array([1, 0], f64),
            "out": np.array([out], f64), "delta": np.array([delta], f64),
            "W_after": np.array(w_after, f64), "b_after": np.array([0.991, -0.007], f64),
            "lr": 0.001, "stride": 2, "padding": 1}


def _reference():
    return reference_case()["x"], np.array([0])


# ---------------------------------------------------------------- registry and load_dataset

# generated: name -> (builder(rng, n, noise), default n, default noise, classes, description)
_GENERATED = {
    "xor": (_xor, 200, 0.2, ("same sign", "different sign"),
            "2-D XOR: 4 Gaussian clusters at (+-0.5, +-0.5); class 1 where the signs differ."),
    "circles": (_circles, 300, 0.05, ("outer", "inner"),
                "2-D concentric circles, radius 1 (class 0) and 0.5 (class 1)."),
    "moons": (_moons, 300, 0.08, ("upper moon", "lower moon"),
              "2-D interleaved half moons, scaled to about [-1, 1]."),
    "spirals": (_spirals, 400, 0.03, ("arm 0", "arm 1"),
                "2-D two-arm spiral, 1.25 turns per arm, radius 0.1 to 1."),
    "shapes": (_shapes, 400, 0.05, SHAPE_CLASSES,
               "1x12x12 grey images of a filled square, circle, triangle or cross, size and "
               "position jittered, pixel noise, values in [0, 1]."),
}
# fixed: name -> (builder(), classes, description, attribution)
_FIXED = {
    "xor4": (_xor4, ("0", "1"), "The 4 classic XOR points (0,0),(0,1),(1,0),(1,1) -> 0,1,1,0.",
             ""),
    "digits": (_digits, tuple("0123456789"),
               "1797 handwritten digits, 1x8x8, pixel counts 0..16 divided by 16.",
               DIGITS_ATTRIBUTION),
    "digits28": (_digits28, tuple("0123456789"),
                 "The digits upsampled 3x by pixel repetition (np.kron) to 24x24 and zero-padded "
                 "by 2 to 1x28x28, like MNIST's centred box (for LeNet-5).", DIGITS_ATTRIBUTION),
    "reference": (_reference, ("reference",),
                  "MATH.md's convolution reference case: one 3x5x5 input (target: see "
                  "reference_case()).", "worked example of the convolution tutorial, MATH.md"),
}
_ORDER = ("xor4", "xor", "circles", "moons", "spirals", "shapes", "digits", "digits28",
          "reference")


def list_datasets() -> list[str]:
    """Every name load_dataset accepts, simplest first."""
    return list(_ORDER)


def _check_int(name: str, field: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DatasetError(f"dataset {name!r}: {field} {value!r} must be an integer")
    if not low <= value <= high:
        raise DatasetError(f"dataset {name!r}: {field} {value} must be in {low}..{high}")
    return int(value)


def load_dataset(name: str, n: int | None = None, seed: int = 0,
                 noise: float | None = None) -> Dataset:
    """Build the named dataset; n and noise override a generated set's defaults."""
    if name not in _ORDER:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(_ORDER)}")
    seed = _check_int(name, "seed", seed, 0, 2**63 - 1)
    if name in _FIXED:
        build, classes, description, attribution = _FIXED[name]
        if noise is not None:
            raise DatasetError(f"dataset {name!r} is fixed data: noise {noise!r} does not apply "
                               "(leave it None)")
        x, y = build()
        if n is not None:
            n = _check_int(name, "n", n, 1, len(y))   # the first n samples, in file order
            x, y = x[:n], y[:n]
        t = None
        if name == "reference":     # MSE (sum) target whose output error a − t is MATH.md's δ
            case = reference_case()
            t = case["out"] - case["delta"]
        return Dataset(name, x, y, classes, description, attribution, t)
    build, default_n, default_noise, classes, description = _GENERATED[name]
    n = default_n if n is None else _check_int(name, "n", n, len(classes), MAX_GENERATED)
    if noise is None:
        noise = default_noise
    if (isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating))
            or not 0.0 <= noise <= 1.0):
        raise DatasetError(f"dataset {name!r}: noise {noise!r} must be a number in [0, 1]")
    x, y = build(np.random.default_rng(seed), n, float(noise))
    desc = f"{description} n={n}, noise={float(noise):g}, seed={seed}."
    return Dataset(name, x, y, classes, desc)


# ---------------------------------------------------------------- user files: .npz

def _fail(path, message: str) -> DatasetError:
    return DatasetError(f"{Path(path).name}: {message}")


def _check_npy_header(zf: zipfile.ZipFile, member: zipfile.ZipInfo, path) -> None:
    """Refuse an object dtype, or a header asking for more bytes than the member holds."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    with zf.open(member) as fp:
        version = np.lib.format.read_magic(fp)
        if version not in readers:
            raise _fail(path, f"array {member.filename!r} uses .npy format {version}; "
                              "only 1.0 and 2.0 are read")
        shape, _, dtype = readers[version](fp)
    if dtype.hasobject:
        raise _fail(path, f"array {member.filename!r} has dtype {dtype} (object/pickled arrays "
                          "are refused: nothing is unpickled)")
    if math.prod(shape) * dtype.itemsize > member.file_size:
        raise _fail(path, f"file damaged: array {member.filename!r} header claims shape "
                          f"{shape} but the entry holds only {member.file_size} bytes")


def _open_npz(path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {m.filename: m for m in zf.infolist()}
            total = sum(m.file_size for m in members.values())
            if total > MAX_FILE_BYTES:
                raise _fail(path, f"uncompressed size {total} bytes exceeds the cap of "
                                  f"{MAX_FILE_BYTES} bytes; nothing was decompressed")
            for key in ("x", "y"):
                if key + ".npy" not in members:
                    found = sorted(k.removesuffix(".npy") for k in members)
                    raise _fail(path, f"missing array {key!r} (found {found}); an .npz needs "
                                      "arrays 'x' and 'y'")
                _check_npy_header(zf, members[key + ".npy"], path)
        with np.load(path, allow_pickle=False) as npz:
            classes = npz["classes"] if "classes" in npz.files else None
            return npz["x"], npz["y"], classes
    except DatasetError:
        raise
    except zipfile.BadZipFile as exc:
        raise _fail(path, f"file damaged: not a valid .npz (zip) archive ({exc})") from exc
    except ValueError as exc:   # includes numpy's refusal of object arrays
        kind = "refused" if "pickle" in str(exc) else "file damaged"
        raise _fail(path, f"{kind}: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(path, f"file missing or damaged: {exc}") from exc


def _images_from(path, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "iuf":
        raise _fail(path, f"x has dtype {x.dtype}; it must be numeric (integer or float)")
    if not 2 <= x.ndim <= 4 or x.shape[0] == 0 or 0 in x.shape:
        raise _fail(path, f"x has shape {x.shape}; it must be (N, features), (N, H, W) or "
                          "(N, C, H, W) with every size > 0")
    scaled = x / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    if not np.isfinite(scaled).all():
        raise _fail(path, f"x holds {int(np.size(scaled) - np.isfinite(scaled).sum())} "
                          "NaN/Inf values; every value must be finite")
    return scaled[:, None] if x.ndim == 3 else scaled


def _labels_from(path, y: np.ndarray, n: int) -> np.ndarray:
    if y.dtype.kind not in "iuf":
        raise _fail(path, f"y has dtype {y.dtype}; labels must be integers")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise _fail(path, f"y has shape {y.shape} but x has {n} samples; y must be (N,) "
                          "labels or (N, k) one-hot with the same N")
    if not np.isfinite(y).all():
        raise _fail(path, "y holds NaN/Inf; labels must be finite integers")
    if y.ndim == 2:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise _fail(path, "y is 2-D but not one-hot: each row needs one 1, the rest 0")
        if y.shape[1] > MAX_CLASSES:
            raise _fail(path, f"y has {y.shape[1]} one-hot columns; at most {MAX_CLASSES}")
        return np.argmax(y, axis=1).astype(np.int64)
    if (y != np.round(y)).any():
        bad = y[y != np.round(y)][0]
        raise _fail(path, f"label {bad} in y is not an integer")
    if y.min() < 0 or y.max() >= MAX_CLASSES:
        bad = y.min() if y.min() < 0 else y.max()
        raise _fail(path, f"label {bad} in y is out of range; labels must be in "
                          f"0..{MAX_CLASSES - 1}")
    return y.astype(np.int64)


def _class_names(path, classes, count: int) -> tuple[str, ...]:
    if classes is None:
        return tuple(str(i) for i in range(count))
    if classes.dtype.kind != "U" or classes.ndim != 1 or len(classes) < count:
        raise _fail(path, f"classes has dtype {classes.dtype}, shape {classes.shape}; it must "
                          f"be a 1-D string array with at least {count} names")
    return tuple(str(c) for c in classes)


def load_npz(path) -> Dataset:
    """Read a user's .npz holding "x" and "y" (and optionally "classes"), never unpickling."""
    x_raw, y_raw, classes = _open_npz(path)
    x = _images_from(path, x_raw)
    y = _labels_from(path, y_raw, x.shape[0])
    one_hot_width = y_raw.shape[1] if y_raw.ndim == 2 else 0
    names = _class_names(path, classes, max(int(y.max()) + 1, one_hot_width))
    return Dataset(Path(path).stem, x, y, names, f"loaded from {Path(path).name}",
                   f"user file {Path(path).name}")


# ---------------------------------------------------------------- user files: MNIST idx

def _read_capped(path) -> bytes:
    """The file's bytes, gunzipped if it starts with 1f 8b, refusing more than the cap."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            stream = gzip.GzipFile(fileobj=fh) if head == b"\x1f\x8b" else fh
            data = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:   # gzip.BadGzipFile is an OSError
        raise _fail(path, f"file missing or damaged: {exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise _fail(path, f"more than {MAX_FILE_BYTES} bytes (uncompressed); refused")
    return data


def _parse_idx(path, magic: int, what: str) -> np.ndarray:
    data = _read_capped(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else None
    if found is not None and found != magic:
        raise _fail(path, f"magic number 0x{found:08X} is not 0x{magic:08X} (idx {what}, "
                          "unsigned bytes)")
    if len(data) < header:
        raise _fail(path, f"file damaged: {len(data)} bytes is shorter than the {header}-byte "
                          f"idx {what} header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if 0 in dims:
        raise _fail(path, f"header dimensions {dims} must all be > 0")
    if len(data) - header != math.prod(dims):
        raise _fail(path, f"file damaged: header dimensions {dims} need {math.prod(dims)} data "
                          f"bytes but the file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist_idx(images_path, labels_path) -> Dataset:
    """Read MNIST-style idx files (optionally gzipped) as (N, 1, rows, cols) in [0, 1]."""
    images = _parse_idx(images_path, 0x00000803, "images")
    labels = _parse_idx(labels_path, 0x00000801, "labels").astype(np.int64)
    if len(labels) != len(images):
        raise _fail(labels_path, f"label count {len(labels)} does not equal the image count "
                                 f"{len(images)} of {Path(images_path).name}")
    classes = tuple(str(i) for i in range(int(labels.max()) + 1))
    name = Path(images_path).name
    return Dataset(name.removesuffix(".gz"), images[:, None] / 255.0, labels, classes,
                   f"loaded from {name} and {Path(labels_path).name}", f"user files {name}")
