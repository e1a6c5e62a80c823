"""Tests for bpviz.core.datasets: built-in sets, the reference case, and user-file loaders.

Expected values come from geometry, from MATH.md typed in here, or from reading the bundled
csv independently (csv module), never from the code under test.
"""
from __future__ import annotations

import csv
import gzip
import io
import struct
import subprocess
import sys
import zipfile
from importlib import resources

import numpy as np
import pytest

from bpviz.core import datasets
from bpviz.core.datasets import (Dataset, DatasetError, list_datasets, load_dataset,
                                 reference_case)

GENERATED = {"xor": (2,), "circles": (2,), "moons": (2,), "spirals": (2,), "shapes": (1, 12, 12)}
FIXED = {"xor4": 4, "digits": 1797, "digits28": 1797, "reference": 1}


def _csv_rows() -> list[list[int]]:
    raw = (resources.files("bpviz.resources") / "data" / "digits.csv.gz").read_bytes()
    with gzip.open(io.BytesIO(raw), "rt", newline="") as fh:
        return [[int(v) for v in row] for row in csv.reader(fh)]


# ---------------------------------------------------------------- registry and arguments

def test_list_contains_every_documented_name():
    assert set(list_datasets()) == set(GENERATED) | set(FIXED)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'.*spirals"):
        load_dataset("mnist")
    assert issubclass(DatasetError, ValueError)


@pytest.mark.parametrize("n", [0, 1, -5, 2.5, True, "10", datasets.MAX_GENERATED + 1])
def test_bad_n_for_generated_set_is_refused(n):
    with pytest.raises(DatasetError, match=r"'circles': n"):
        load_dataset("circles", n=n)


@pytest.mark.parametrize("noise", [-0.1, float("nan"), 1.5, "a", True])
def test_bad_noise_is_refused(noise):
    with pytest.raises(DatasetError, match="noise"):
        load_dataset("moons", noise=noise)


def test_negative_seed_is_refused():
    with pytest.raises(DatasetError, match="seed -1"):
        load_dataset("xor", seed=-1)


def test_fixed_set_refuses_more_samples_than_it_has():
    with pytest.raises(DatasetError, match=r"'digits': n 1798 must be in 1\.\.1797"):
        load_dataset("digits", n=1798)
    with pytest.raises(DatasetError, match="'xor4': n 5"):
        load_dataset("xor4", n=5)


def test_fixed_set_refuses_noise_and_takes_the_first_n():
    with pytest.raises(DatasetError, match="noise"):
        load_dataset("digits", noise=0.1)
    assert len(load_dataset("digits", n=10)) == 10
    assert list(load_dataset("digits", n=10).y) == [row[64] for row in _csv_rows()[:10]]


# ---------------------------------------------------------------- generated sets

@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_shapes_dtypes_and_labels(name):
    ds = load_dataset(name)
    assert ds.x.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.input_shape == GENERATED[name] and ds.x.shape == (len(ds), *GENERATED[name])
    assert 200 <= len(ds) <= 400 and ds.y.shape == (len(ds),)
    assert set(np.unique(ds.y)) == set(range(ds.num_classes))
    counts = np.bincount(ds.y)
    assert counts.max() - counts.min() <= 1          # balanced classes
    assert np.abs(ds.x).max() < 1.5                  # features roughly in [-1, 1]


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_sets_are_deterministic_per_seed(name):
    a, b, c = load_dataset(name, seed=3), load_dataset(name, seed=3), load_dataset(name, seed=4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_n_and_noise_are_honoured(name):
    assert len(load_dataset(name, n=57)) == 57
    quiet, loud = load_dataset(name, noise=0.0), load_dataset(name, noise=0.3)
    assert not np.array_equal(quiet.x, loud.x)


def test_xor_without_noise_sits_on_the_cluster_centres_with_the_sign_rule():
    ds = load_dataset("xor", noise=0.0)
    assert np.array_equal(np.abs(ds.x), np.full_like(ds.x, 0.5))
    assert np.array_equal(ds.y, (np.sign(ds.x[:, 0]) != np.sign(ds.x[:, 1])).astype(int))
    noisy = load_dataset("xor")
    follows = (np.sign(noisy.x[:, 0]) != np.sign(noisy.x[:, 1])) == noisy.y.astype(bool)
    assert follows.mean() > 0.85


def test_circles_without_noise_have_radius_one_outside_and_half_inside():
    ds = load_dataset("circles", noise=0.0)
    r = np.hypot(ds.x[:, 0], ds.x[:, 1])
    assert np.allclose(r[ds.y == 0], 1.0) and np.allclose(r[ds.y == 1], 0.5)


def test_moons_and_spirals_without_noise_stay_in_the_unit_box():
    for name in ("moons", "spirals"):
        ds = load_dataset(name, noise=0.0)
        assert np.abs(ds.x).max() <= 1.0 + 1e-12
    r = np.hypot(*load_dataset("spirals", noise=0.0).x.T)
    assert r.min() >= 0.1 - 1e-12


def _bbox(img):
    rows, cols = np.nonzero(img)
    return img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def test_shapes_images_show_the_labelled_shape():
    ds = load_dataset("shapes", noise=0.0)
    assert ds.classes == ("square", "circle", "triangle", "cross")
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    for img, label in zip(ds.x[:, 0], ds.y):
        box = _bbox(img) > 0
        assert box.sum() >= 9
        corners = box[0, 0] or box[0, -1] or box[-1, 0] or box[-1, -1]
        if label == 0:
            assert box.all()                                 # filled square fills its box
        elif label == 2:
            assert box[-1].sum() > box[0].sum() and box[-1].all()   # wide base, narrow apex
        elif label == 1:
            assert 0.6 < box.mean() < 0.95            # a disc fills ~pi/4 of its box
        else:
            mid = box.shape[0] // 2
            assert not corners and box[mid].all() and box[:, box.shape[1] // 2].all()


def test_shapes_noise_stays_clipped_to_unit_range():
    ds = load_dataset("shapes", noise=0.5)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0


# ---------------------------------------------------------------- fixed sets

def test_xor4_is_the_four_classic_points():
    ds = load_dataset("xor4")
    assert ds.x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and ds.y.tolist() == [0, 1, 1, 0]


def test_digits_match_the_bundled_csv_read_independently():
    ds, rows = load_dataset("digits"), _csv_rows()
    assert ds.x.shape == (1797, 1, 8, 8) and len(rows) == 1797
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert ds.y[0] == rows[0][-1] == 0
    assert np.array_equal(ds.x[0, 0] * 16, np.array(rows[0][:64]).reshape(8, 8))
    assert np.array_equal(ds.y, [row[64] for row in rows])
    counts = np.bincount(ds.y, minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 190
    assert ds.classes == tuple("0123456789") and "CC BY 4.0" in ds.attribution


def test_digits28_is_the_digits_repeated_3x3_and_padded_by_2():
    small, big = load_dataset("digits"), load_dataset("digits28")
    assert big.x.shape == (1797, 1, 28, 28) and np.array_equal(big.y, small.y)
    centre = big.x[:, :, 2:26, 2:26]
    assert np.array_equal(centre[:, :, ::3, ::3], small.x)
    assert np.array_equal(centre[:, :, 2::3, 1::3], small.x)      # every pixel of a 3x3 block
    border = big.x.copy()
    border[:, :, 2:26, 2:26] = 0.0
    assert not border.any()


def test_reference_dataset_holds_the_single_math_md_sample():
    ds = load_dataset("reference")
    assert ds.x.shape == (1, 3, 5, 5) and ds.y.tolist() == [0] and ds.classes == ("reference",)
    assert np.array_equal(ds.x, reference_case()["x"])
    assert ds.x[0, 2, 3].tolist() == [0, 1, 2, 2, 2]          # MATH.md c2, row 3


def test_reference_case_shapes_and_spot_values_from_math_md():
    ref = reference_case()
    shapes = {"x": (1, 3, 5, 5), "W": (2, 3, 3, 3), "b": (2,), "out": (1, 2, 3, 3),
              "delta": (1, 2, 3, 3), "W_after": (2, 3, 3, 3), "b_after": (2,)}
    assert {k: ref[k].shape for k in shapes} == shapes
    assert (ref["lr"], ref["stride"], ref["padding"]) == (0.001, 2, 1)
    assert ref["out"][0, 1, 0].tolist() == [2, -5, -8]
    assert ref["W_after"][1, 1, 1, 0] == -1.009 and ref["b_after"].tolist() == [0.991, -0.007]


def test_reference_case_numbers_agree_with_each_other():
    """A naive loop (written here) over x, W, b reproduces out, and W - lr*dW gives W_after."""
    ref = reference_case()
    xp = np.pad(ref["x"][0], ((0, 0), (1, 1), (1, 1)))
    out, dw, db = np.zeros((2, 3, 3)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    for f in range(2):
        for i in range(3):
            for j in range(3):
                patch = xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                out[f, i, j] = np.sum(patch * ref["W"][f]) + ref["b"][f]
                dw[f] += ref["delta"][0, f, i, j] * patch
                db[f] += ref["delta"][0, f, i, j]
    assert np.array_equal(out, ref["out"][0])
    assert np.allclose(ref["W"] - 0.001 * dw, ref["W_after"], atol=1e-12)
    assert np.allclose(ref["b"] - 0.001 * db, ref["b_after"], atol=1e-12)


# ---------------------------------------------------------------- the Dataset type

def test_dataset_one_hot_and_read_only_arrays():
    ds = load_dataset("shapes", n=20)
    oh = ds.one_hot()
    assert oh.shape == (20, 4) and oh.dtype == np.float64
    assert np.array_equal(oh.sum(axis=1), np.ones(20)) and np.array_equal(oh.argmax(1), ds.y)
    with pytest.raises(ValueError):
        ds.x[0, 0, 0, 0] = 5.0


def test_dataset_rejects_labels_outside_its_classes():
    with pytest.raises(DatasetError, match="labels"):
        Dataset("bad", np.zeros((2, 2)), np.array([0, 2]), ("a", "b"), "")


def test_module_imports_without_qt_or_scikit_learn():
    code = ("import sys\nfor m in ('PySide6', 'pyqtgraph', 'sklearn'): sys.modules[m] = None\n"
            "import bpviz.core.datasets as d, bpviz.core.presets as p\n"
            "d.load_dataset('digits'); p.load_preset('xor')\n"
            "assert not any(m.startswith(('PySide6', 'sklearn')) for m in sys.modules "
            "if sys.modules[m] is not None)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- load_npz

def _npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_round_trip_features_and_labels(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(6, 3)), np.array([0, 1, 2, 0, 1, 2])
    ds = datasets.load_npz(_npz(tmp_path, x=x, y=y))
    assert np.array_equal(ds.x, x) and np.array_equal(ds.y, y)
    assert ds.name == "data" and ds.classes == ("0", "1", "2") and ds.attribution


def test_npz_uint8_images_get_a_channel_axis_and_unit_range(tmp_path):
    x = np.array([[[0, 255], [51, 102]]] * 2, dtype=np.uint8)       # (2, 2, 2)
    ds = datasets.load_npz(_npz(tmp_path, x=x, y=np.array([1, 0])))
    assert ds.x.shape == (2, 1, 2, 2) and ds.x[0, 0].tolist() == [[0.0, 1.0], [0.2, 0.4]]


def test_npz_one_hot_and_integral_float_labels_and_class_names(tmp_path):
    one_hot = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float32)
    ds = datasets.load_npz(_npz(tmp_path, x=np.zeros((2, 2)), y=one_hot))
    assert ds.y.tolist() == [2, 0] and ds.num_classes == 4
    ds = datasets.load_npz(_npz(tmp_path, x=np.zeros((2, 2)), y=np.array([1.0, 0.0]),
                                classes=np.array(["cat", "dog"])))
    assert ds.y.tolist() == [1, 0] and ds.classes == ("cat", "dog")


class _Payload:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_npz_with_a_pickled_object_array_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "executed"
    path = _npz(tmp_path, x=np.array([_Payload(str(marker)), 1], dtype=object), y=np.ones(2))
    with pytest.raises(DatasetError, match="data.npz.*'x.npy'.*object"):
        datasets.load_npz(path)
    assert not marker.exists()
    np.load(path, allow_pickle=True)["x"]       # the payload is live: unpickling runs it
    assert marker.exists()


def _zip_with_header(tmp_path, shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": shape})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", buf.getvalue() + b"\0" * 16)
        zf.writestr("y.npy", _npy_bytes(np.zeros(2, dtype=np.int64)))
    return path


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_npz_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    with pytest.raises(DatasetError, match=r"liar.npz: file damaged.*'x.npy'.*300000000"):
        datasets.load_npz(_zip_with_header(tmp_path, (300_000_000,)))


def test_npz_over_the_size_cap_is_refused(tmp_path, monkeypatch):
    path = _npz(tmp_path, x=np.zeros((100, 4)), y=np.zeros(100, dtype=int))
    monkeypatch.setattr(datasets, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DatasetError, match="exceeds the cap of 1000"):
        datasets.load_npz(path)


def test_npz_truncated_or_not_a_zip_is_damaged(tmp_path):
    good = _npz(tmp_path, x=np.zeros((50, 2)), y=np.zeros(50, dtype=int))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.npz"
    text.write_text("hello, not a zip")
    for path in (cut, text):
        with pytest.raises(DatasetError, match=f"{path.name}: file damaged"):
            datasets.load_npz(path)
    with pytest.raises(DatasetError, match="missing.npz"):
        datasets.load_npz(tmp_path / "missing.npz")


BAD_NPZ = [
    ({"x": np.zeros((3, 2))}, "missing array 'y'"),
    ({"y": np.zeros(3)}, "missing array 'x'"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, r"y has shape \(4,\) but x has 3"),
    ({"x": np.array([[0.0, np.nan], [1, 2]]), "y": np.zeros(2)}, "x holds 1 NaN/Inf"),
    ({"x": np.array([[0.0, np.inf], [1, 2]]), "y": np.zeros(2)}, "NaN/Inf"),
    ({"x": np.zeros((2, 2)), "y": np.array([0, -1])}, "label -1 in y is out of range"),
    ({"x": np.zeros((2, 2)), "y": np.array([0, 5000])}, "label 5000"),
    ({"x": np.zeros((2, 2)), "y": np.array([0.0, 0.5])}, "label 0.5 in y is not an integer"),
    ({"x": np.zeros((2, 2)), "y": np.array([0.0, np.nan])}, "y holds NaN"),
    ({"x": np.zeros((2, 2)), "y": np.array([[1, 1], [0, 1]])}, "not one-hot"),
    ({"x": np.zeros(3), "y": np.zeros(3)}, r"x has shape \(3,\)"),
    ({"x": np.zeros((1, 1, 1, 1, 1)), "y": np.zeros(1)}, r"x has shape \(1, 1, 1, 1, 1\)"),
    ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, r"x has shape \(0, 2\)"),
    ({"x": np.array([["a", "b"]]), "y": np.zeros(1)}, "x has dtype <U1"),
    ({"x": np.zeros((2, 2)), "y": np.array(["a", "b"])}, "y has dtype <U1"),
    ({"x": np.zeros((2, 2)), "y": np.array([0, 2]), "classes": np.array(["a"])}, "classes"),
]


@pytest.mark.parametrize("arrays, message", BAD_NPZ)
def test_npz_bad_contents_are_refused_naming_file_and_field(tmp_path, arrays, message):
    with pytest.raises(DatasetError, match=message) as info:
        datasets.load_npz(_npz(tmp_path, "user.npz", **arrays))
    assert str(info.value).startswith("user.npz: ")


# ---------------------------------------------------------------- load_mnist_idx

def _idx(magic, dims, payload):
    return struct.pack(f">I{len(dims)}I", magic, *dims) + bytes(payload)


def _write_idx(tmp_path, images, labels, zipped=False):
    ipath, lpath = tmp_path / "img-idx3-ubyte", tmp_path / "lab-idx1-ubyte"
    if zipped:
        ipath, lpath = ipath.with_suffix(".gz"), lpath.with_suffix(".gz")
        images, labels = gzip.compress(images), gzip.compress(labels)
    ipath.write_bytes(images)
    lpath.write_bytes(labels)
    return ipath, lpath


IMAGES = _idx(0x00000803, (2, 2, 3), [0, 51, 255, 0, 0, 0, 255, 255, 255, 102, 0, 0])
LABELS = _idx(0x00000801, (2,), [7, 3])


@pytest.mark.parametrize("zipped", [False, True])
def test_idx_round_trip_plain_and_gzipped(tmp_path, zipped):
    ds = datasets.load_mnist_idx(*_write_idx(tmp_path, IMAGES, LABELS, zipped))
    assert ds.x.shape == (2, 1, 2, 3) and ds.y.tolist() == [7, 3] and ds.num_classes == 8
    assert ds.x[0, 0].tolist() == [[0.0, 0.2, 1.0], [0.0, 0.0, 0.0]]
    assert ds.x[1, 0].tolist() == [[1.0, 1.0, 1.0], [0.4, 0.0, 0.0]]


BAD_IDX = [
    (LABELS, LABELS, "img-idx3-ubyte: magic number 0x00000801 is not 0x00000803"),
    (IMAGES, IMAGES, "lab-idx1-ubyte: magic number 0x00000803 is not 0x00000801"),
    (IMAGES + b"\0", LABELS, r"img-idx3-ubyte: file damaged.*need 12 data bytes.*holds 13"),
    (IMAGES[:-1], LABELS, "need 12 data bytes but the file holds 11"),
    (IMAGES[:10], LABELS, "shorter than the 16-byte idx images header"),
    (IMAGES, _idx(0x00000801, (3,), [1, 2, 3]), "label count 3 does not equal the image count 2"),
    (_idx(0x00000803, (0, 2, 2), []), LABELS, r"dimensions \(0, 2, 2\)"),
]


@pytest.mark.parametrize("images, labels, message", BAD_IDX)
def test_idx_bad_files_are_refused_naming_file_and_rule(tmp_path, images, labels, message):
    with pytest.raises(DatasetError, match=message):
        datasets.load_mnist_idx(*_write_idx(tmp_path, images, labels))


def test_idx_truncated_gzip_is_damaged(tmp_path):
    ipath, lpath = _write_idx(tmp_path, IMAGES, LABELS, zipped=True)
    ipath.write_bytes(ipath.read_bytes()[:-6])
    with pytest.raises(DatasetError, match="img-idx3-ubyte.gz: file missing or damaged"):
        datasets.load_mnist_idx(ipath, lpath)
