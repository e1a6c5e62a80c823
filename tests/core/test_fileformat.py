"""The .bpviz file: round trip, atomic save, and hostile or damaged files (RELIABILITY 11–16)."""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import pytest

from bpviz.core import SGD, Conv2D, Dense, FileFormatError, Flatten, MaxPool2D, Network
from bpviz.core.fileformat import load_network, save_network


def make_net(dtype=np.float64):
    return Network((1, 6, 6), [Conv2D(2, 3, padding=1, activation="relu"), MaxPool2D(2),
                               Flatten(), Dense(3, "softmax")],
                   loss="cross_entropy", seed=5, dtype=dtype)


def entries(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(path, ents: dict, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in ents.items():
            zf.writestr(name, data)
    return path


def npy_bytes(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header(shape, descr="<f8") -> bytes:
    """A hand-made .npy v1.0 header (no data) claiming ``shape``."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


@pytest.fixture
def saved(tmp_path):
    net = make_net()
    path = tmp_path / "net.bpviz"
    save_network(path, net, optimizer=SGD(lr=0.05, momentum=0.9, l2=1e-4, clip_value=1.5),
                 step=17)
    return net, path


def with_meta(path, out, change):
    ents = entries(path)
    meta = json.loads(ents["bpviz.json"])
    change(meta)
    ents["bpviz.json"] = json.dumps(meta)
    return write_zip(out, ents)


# ----- round trip ------------------------------------------------------------------------------
def test_round_trip_restores_architecture_weights_optimizer_and_step(saved):
    """save → load gives the same config, bitwise weights, optimizer settings and step."""
    net, path = saved
    loaded = load_network(path)
    assert loaded.network.config() == net.config()
    for a, b in zip(net.layers, loaded.network.layers):
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            assert b.params[k].dtype == a.params[k].dtype
            assert np.array_equal(a.params[k], b.params[k])
    assert loaded.optimizer == {"lr": 0.05, "momentum": 0.9, "l2": 1e-4, "clip_value": 1.5,
                                "clip_norm": None}
    assert loaded.step == 17
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    assert np.array_equal(loaded.network.forward(x), net.forward(x))


def test_round_trip_float32_and_no_optimizer(tmp_path):
    """A float32 network without optimizer or step round-trips with its dtype."""
    net = make_net(np.float32)
    path = tmp_path / "f32.bpviz"
    net.save(path)
    loaded = load_network(path)
    assert loaded.optimizer is None and loaded.step is None
    assert loaded.network.dtype == np.float32
    for a, b in zip(net.layers, loaded.network.layers):
        assert all(b.params[k].dtype == np.float32 and np.array_equal(a.params[k], b.params[k])
                   for k in a.params)
    assert Network.load(path).config() == net.config()


def test_saved_file_is_plain_zip_without_pickles(saved):
    """The file holds bpviz.json and one plain float .npy per parameter, nothing else."""
    _, path = saved
    ents = entries(path)
    assert set(ents) == {"bpviz.json", "L0_W.npy", "L0_b.npy", "L3_W.npy", "L3_b.npy"}
    meta = json.loads(ents["bpviz.json"])
    assert meta["format"] == "bpviz" and meta["version"] == 1
    for name in set(ents) - {"bpviz.json"}:
        arr = np.load(io.BytesIO(ents[name]), allow_pickle=False)
        assert arr.dtype == np.float64


# ----- atomic save -----------------------------------------------------------------------------
def _fail(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("target", ["replace", "fsync", "write_array"])
def test_failed_save_leaves_old_file_and_no_temp_files(saved, monkeypatch, target):
    """A save failing at os.replace, fsync or mid-write keeps the old file and leaves no temp."""
    _, path = saved
    old = path.read_bytes()
    other = Network((3,), [Dense(2)])
    if target == "write_array":
        real, calls = np.lib.format.write_array, []

        def dies_on_second(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt        # the user interrupts half-way through
            return real(*args, **kwargs)
        monkeypatch.setattr(np.lib.format, "write_array", dies_on_second)
        exc = KeyboardInterrupt
    else:
        monkeypatch.setattr(os, target, _fail)
        exc = OSError
    with pytest.raises(exc):
        save_network(path, other)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert os.listdir(path.parent) == [path.name]
    assert load_network(path).step == 17


def test_process_killed_mid_save_leaves_old_file_loadable(saved):
    """A process that dies (os._exit) mid-save leaves the old file intact and loadable."""
    net, path = saved
    old = path.read_bytes()
    script = (
        "import os, sys, numpy as np\n"
        "from bpviz.core import Network, Dense\n"
        "from bpviz.core.fileformat import save_network\n"
        "real = np.lib.format.write_array\n"
        "def die(*a, **k):\n"
        "    real(*a, **k); os._exit(3)\n"
        "np.lib.format.write_array = die\n"
        "save_network(sys.argv[1], Network((3,), [Dense(2)]))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          timeout=60, cwd=os.getcwd())
    assert proc.returncode == 3, proc.stderr.decode()
    assert path.read_bytes() == old
    assert load_network(path).network.config() == net.config()
    leftovers = [n for n in os.listdir(path.parent) if n != path.name]
    assert all(n.startswith(f".{path.name}.") and n.endswith(".tmp") for n in leftovers)


def test_save_into_read_only_folder_fails_and_keeps_old_file(saved, monkeypatch):
    """Saving into a read-only folder raises an OSError; the old file stays as it was."""
    _, path = saved
    old = path.read_bytes()
    folder = path.parent
    if os.geteuid() == 0:               # root ignores chmod: simulate the refusal instead
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(folder))
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    else:
        os.chmod(folder, 0o555)
    try:
        with pytest.raises(PermissionError):
            save_network(path, Network((3,), [Dense(2)]))
    finally:
        os.chmod(folder, 0o755)
    assert path.read_bytes() == old
    assert os.listdir(folder) == [path.name]


# ----- hostile and damaged files -----------------------------------------------------------------
def assert_refused(path, *texts):
    """load raises FileFormatError (a ValueError) whose message contains every text."""
    open_net = make_net()
    before = open_net.get_params()
    with pytest.raises(FileFormatError) as info:
        load_network(path)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    for text in texts:
        assert text in msg, (text, msg)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(before, open_net.get_params()) for k in a)
    return msg


class MakesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_array_is_refused_and_never_run(saved, tmp_path):
    """An object array whose unpickling would create a file is refused; the file never appears."""
    _, path = saved
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(MakesMarker(str(proof))))      # the payload is live...
    assert proof.exists()
    marker = tmp_path / "marker"
    payload = np.empty(1, dtype=object)
    payload[0] = MakesMarker(str(marker))
    ents = entries(path)
    ents["L0_W.npy"] = npy_bytes(payload, allow_pickle=True)
    bad = write_zip(tmp_path / "pickle.bpviz", ents)
    assert_refused(bad, "L0_W.npy", "object")
    assert not marker.exists()                                # ...but load never ran it


@pytest.mark.parametrize("cut", [0, 10, 100, 0.5, -22, -1])
def test_truncated_file_is_damaged(saved, tmp_path, cut):
    """A file cut short anywhere is reported as damaged."""
    _, path = saved
    data = path.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else cut % len(data) if cut < 0 else cut
    bad = tmp_path / "cut.bpviz"
    bad.write_bytes(data[:n])
    assert_refused(bad, "damaged")


def test_corrupted_entry_is_damaged(saved, tmp_path):
    """Flipped bytes inside a compressed entry are reported as damaged (CRC / zlib error)."""
    _, path = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("L0_W.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 5, start + 25):
        data[i] ^= 0xFF
    bad = tmp_path / "flip.bpviz"
    bad.write_bytes(bytes(data))
    assert_refused(bad, "damaged")


@pytest.mark.parametrize("content", [b"hello, this is not a zip", b"", b"\x89PNG\r\n\x1a\n" * 8])
def test_non_zip_file_is_damaged(tmp_path, content):
    """A file that is not a zip at all is reported as damaged."""
    bad = tmp_path / "junk.bpviz"
    bad.write_bytes(content)
    assert_refused(bad, "damaged")


def test_missing_file_is_a_file_format_error(tmp_path):
    """A path that does not exist gives a FileFormatError naming it."""
    assert_refused(tmp_path / "nope.bpviz", "nope.bpviz")


def test_huge_npy_header_refused_before_reading_data(saved, tmp_path, monkeypatch):
    """A 136-byte .npy header asking for 300 million elements is refused without reading data."""
    _, path = saved
    header = npy_header((300_000_000,))
    assert len(header) <= 192
    ents = entries(path)
    ents["L0_W.npy"] = header
    bad = write_zip(tmp_path / "huge.bpviz", ents)
    reads = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array",
                        lambda fh, *a, **k: reads.append(fh.name) or real(fh, *a, **k))
    t0 = time.perf_counter()
    assert_refused(bad, "L0_W.npy", "300000000")
    assert time.perf_counter() - t0 < 2.0
    assert "L0_W.npy" not in reads


def test_entry_claiming_size_over_cap_refused(saved, tmp_path):
    """A zip entry whose recorded size is over the cap is refused before decompression."""
    _, path = saved
    data = bytearray(path.read_bytes())
    name = b"L0_W.npy"
    pos = data.find(b"PK\x01\x02")
    while data[pos + 46:pos + 46 + len(name)] != name:     # the entry's central-directory record
        pos = data.find(b"PK\x01\x02", pos + 4)
    struct.pack_into("<I", data, pos + 24, 0xFFFF0000)      # uncompressed size ≈ 4 GiB
    bad = tmp_path / "big.bpviz"
    bad.write_bytes(bytes(data))
    assert_refused(bad, "L0_W.npy", str(0xFFFF0000), "cap")


def test_compression_bomb_refused(saved, tmp_path):
    """A 32 MiB entry bzip2-compressed to a few bytes is refused on its ratio."""
    _, path = saved
    ents = entries(path)
    bad = tmp_path / "bomb.bpviz"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, d in ents.items():
            zf.writestr(n, d, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("L9_W.npy", b"\0" * (32 * 2**20), compress_type=zipfile.ZIP_BZIP2)
    assert_refused(bad, "L9_W.npy", "ratio")


def test_architecture_too_large_refused_before_allocating(saved, tmp_path):
    """An architecture asking for ~10¹³ parameters is refused (no MemoryError, no allocation)."""
    _, path = saved
    bad = with_meta(path, tmp_path / "arch.bpviz", lambda m: m["architecture"].update(
        input_shape=[10_000_000], layers=[{"type": "Dense", "units": 1_000_000}]))
    assert_refused(bad, "parameters")


@pytest.mark.parametrize("entry,arr,texts", [
    ("L3_W.npy", np.zeros((3, 17)), ["L3_W.npy", "(3, 17)", "(3, 18)"]),
    ("L0_b.npy", np.zeros((2, 1)), ["L0_b.npy", "(2, 1)"]),
    ("L0_W.npy", np.zeros((2, 1, 3, 3), dtype=np.int64), ["L0_W.npy", "int64"]),
    ("L3_b.npy", np.array([0.0, np.nan, 0.0]), ["layer 3", "NaN"]),
])
def test_array_not_matching_architecture_names_the_entry(saved, tmp_path, entry, arr, texts):
    """Wrong shapes, integer dtypes and NaN values are refused naming the layer entry."""
    _, path = saved
    ents = entries(path)
    ents[entry] = npy_bytes(arr)
    assert_refused(write_zip(tmp_path / "shape.bpviz", ents), *texts)


def test_array_data_shorter_than_header_is_damaged(saved, tmp_path):
    """An entry whose data stops before its header's size is damaged (FileFormatError)."""
    _, path = saved
    ents = entries(path)
    ents["L3_b.npy"] = ents["L3_b.npy"][:-8]
    assert_refused(write_zip(tmp_path / "short.bpviz", ents), "L3_b.npy")


@pytest.mark.parametrize("name,data", [("L3_W.npy", None), ("evil.py", b"print('hi')")])
def test_missing_and_extra_entries(saved, tmp_path, name, data):
    """A missing parameter entry or an unexpected extra entry is refused by name."""
    ents = entries(saved[1])
    if data is None:
        del ents[name]
    else:
        ents[name] = data
    assert_refused(write_zip(tmp_path / "entries.bpviz", ents), name)


def _set(*keys_value):
    *keys, value = keys_value

    def change(meta):
        target = meta
        for k in keys[:-1]:
            target = target[k]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return change


@pytest.mark.parametrize("change,texts", [
    (("version", KeyError), ["version", "missing"]),
    (("version", 2), ["version 2", "newer"]),
    (("version", "1"), ["version '1'"]),
    (("format", "other"), ["format 'other'"]),
    (("surprise", 1), ["unknown", "surprise"]),
    (("architecture", "extra", 1), ["unknown", "extra"]),
    (("architecture", "layers", 0, "type", "Residual"), ["Residual", "layer 0"]),
    (("architecture", "layers", 3, "bias", True), ["layer 3", "bias"]),
    (("architecture", "layers", 0, "kernel_size", 9), ["layer 0", "kernel_size 9"]),
    (("architecture", "seed", -1), ["seed -1"]),
    (("architecture", "dtype", "float16"), ["float16"]),
    (("architecture", KeyError), ["architecture"]),
    (("step", -3), ["step -3"]),
    (("step", True), ["step True"]),
    (("optimizer", "lr", -1), ["optimizer", "learning rate -1"]),
    (("optimizer", "turbo", 1), ["optimizer", "turbo"]),
])
def test_bad_metadata_refused_naming_the_problem(saved, tmp_path, change, texts):
    """Missing/newer version, unknown keys and types, bad fields: FileFormatError naming them."""
    _, path = saved
    assert_refused(with_meta(path, tmp_path / "meta.bpviz", _set(*change)), *texts)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_with_nan_or_infinity_refused(saved, tmp_path, constant):
    """bpviz.json holding NaN / Infinity (not valid JSON) is refused naming the constant."""
    _, path = saved
    ents = entries(path)
    meta = json.loads(ents["bpviz.json"])
    text = json.dumps(meta).replace('"lr": 0.05', f'"lr": {constant}')
    assert constant in text
    ents["bpviz.json"] = text
    assert_refused(write_zip(tmp_path / "nan.bpviz", ents), constant)


def test_json_not_an_object_or_not_json(saved, tmp_path):
    """bpviz.json that is a list, or not JSON at all, is refused."""
    _, path = saved
    for text, expect in (("[1, 2]", "object"), ("{not json", "JSON"), (b"\xff\xfe", "JSON")):
        ents = entries(path)
        ents["bpviz.json"] = text
        assert_refused(write_zip(tmp_path / "j.bpviz", ents), expect)


def test_failed_load_leaves_open_network_and_file_alone(saved, tmp_path):
    """After a refused load, a network loaded earlier from the good file is unchanged."""
    _, path = saved
    net = load_network(path).network
    before = net.get_params()
    config = net.config()
    bad = tmp_path / "bad.bpviz"
    bad.write_bytes(path.read_bytes()[:50])
    with pytest.raises(FileFormatError):
        Network.load(bad)
    assert net.config() == config
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(before, net.get_params()) for k in a)
