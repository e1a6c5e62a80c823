"""The .bpviz file: one .npz (zip) holding ``bpviz.json`` and one .npy per parameter.

``bpviz.json`` = {"format": "bpviz", "version": 1, "architecture": Network.config(),
"optimizer": SGD settings or null, "step": int or null}. Parameter ``k`` of layer ``i`` is
the entry ``L{i}_{k}.npy``. Loading never unpickles, checks every size before decompressing,
every key, shape and value before using it; saving is atomic (temp file + fsync + replace).
"""
from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import BpvizError, FileFormatError

FORMAT_NAME, FORMAT_VERSION = "bpviz", 1
META = "bpviz.json"
MAX_FILE_BYTES = 256 * 2**20          # the file on disk
MAX_ENTRY_BYTES = 256 * 2**20         # one decompressed entry
MAX_TOTAL_BYTES = 512 * 2**20         # all decompressed entries
MAX_META_BYTES = 2**20
MAX_RATIO = 1000                      # decompressed / compressed, for entries over 1 MiB
TOP_KEYS = {"format", "version", "architecture", "optimizer", "step"}


@dataclass
class LoadedFile:
    network: object
    optimizer: dict | None
    step: int | None


def entry_name(index: int, key: str) -> str:
    return f"L{index}_{key}.npy"


def save_network(path, net, optimizer=None, step: int | None = None) -> None:
    """Write atomically: a failed save leaves any existing file as it was."""
    path = Path(path)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "architecture": net.config(),
            "optimizer": None if optimizer is None else optimizer.settings(),
            "step": None if step is None else int(step)}
    text = json.dumps(meta, allow_nan=False, indent=1)

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(META, text)
            for i, layer in enumerate(net.layers):
                for key, value in layer.params.items():
                    with zf.open(entry_name(i, key), "w") as out:
                        np.lib.format.write_array(out, np.ascontiguousarray(value),
                                                  allow_pickle=False)
    atomic_write(path, write)


def _damaged(path, why: str) -> FileFormatError:
    return FileFormatError(f"{path}: file damaged or not a .bpviz file ({why})")


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed in a .bpviz file")


def _check_sizes(path, infos) -> None:
    total = 0
    for info in infos:
        if info.file_size > MAX_ENTRY_BYTES:
            raise FileFormatError(f"{path}: entry {info.filename} would decompress to "
                                  f"{info.file_size} bytes; the cap is {MAX_ENTRY_BYTES}")
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(1, info.compress_size):
            raise FileFormatError(f"{path}: entry {info.filename} has a compression ratio over "
                                  f"{MAX_RATIO}:1; refused before decompressing")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise FileFormatError(f"{path}: contents would decompress to {total} bytes; "
                              f"the cap is {MAX_TOTAL_BYTES}")


def _read_meta(path, zf) -> dict:
    if META not in zf.namelist():
        raise _damaged(path, f"no {META} entry")
    if zf.getinfo(META).file_size > MAX_META_BYTES:
        raise FileFormatError(f"{path}: {META} is larger than {MAX_META_BYTES} bytes")
    try:
        meta = json.loads(zf.read(META).decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path}: {META} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise FileFormatError(f"{path}: {META} must hold an object")
    unknown = sorted(set(meta) - TOP_KEYS)
    if unknown:
        raise FileFormatError(f"{path}: unknown key(s) {', '.join(unknown)} in {META}")
    if meta.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{path}: format {meta.get('format')!r} is not {FORMAT_NAME!r}")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError(f"{path}: format version {version!r} is missing or invalid; "
                              f"it must be a whole number 1 … {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{path}: format version {version} is newer than this bpviz "
                              f"reads ({FORMAT_VERSION}); update bpviz")
    step = meta.get("step")
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise FileFormatError(f"{path}: step {step!r} must be a whole number ≥ 0 or null")
    return meta


def _read_array(path, zf, name, expected_shape):
    if name not in zf.namelist():
        raise FileFormatError(f"{path}: missing parameter entry {name}")
    with zf.open(name) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as exc:
            raise _damaged(path, f"{name}: {exc}") from None
        if dtype.hasobject or dtype.kind != "f":
            raise FileFormatError(f"{path}: {name} has dtype {dtype}; parameters must be "
                                  f"floating point (object arrays are never loaded)")
        if tuple(shape) != tuple(expected_shape):
            raise FileFormatError(f"{path}: {name} has shape {tuple(shape)}; the stored "
                                  f"architecture needs {tuple(expected_shape)}")
    with zf.open(name) as fh:
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except ValueError as exc:           # e.g. data shorter than the header says
            raise _damaged(path, f"{name}: {exc}") from None


def load_network(path) -> LoadedFile:
    """Read and fully validate a .bpviz file; raise FileFormatError naming what is wrong."""
    from .network import Network
    from .optim import SGD
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise FileFormatError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte cap")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_sizes(path, zf.infolist())
            meta = _read_meta(path, zf)
            try:
                # shape inference refuses oversized stacks before allocating anything
                net = Network.from_config(meta["architecture"])
            except (BpvizError, KeyError, TypeError, AttributeError) as exc:
                raise FileFormatError(f"{path}: architecture invalid: {exc}") from None
            expected = {entry_name(i, k) for i, l in enumerate(net.layers) for k in l.params}
            extra = sorted(set(zf.namelist()) - expected - {META})
            if extra:
                raise FileFormatError(f"{path}: unexpected entries {', '.join(extra[:5])}")
            params = [{k: _read_array(path, zf, entry_name(i, k), v.shape)
                       for k, v in layer.params.items()} for i, layer in enumerate(net.layers)]
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise _damaged(path, str(exc) or type(exc).__name__) from None
    except OSError as exc:
        raise _damaged(path, str(exc)) from None
    try:
        net.set_params(params)
    except BpvizError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    settings = meta.get("optimizer")
    if settings is not None:
        try:
            if not isinstance(settings, dict):
                raise TypeError("must be an object")
            SGD(**settings)
        except (BpvizError, TypeError) as exc:
            raise FileFormatError(f"{path}: optimizer settings invalid: {exc}") from None
    return LoadedFile(net, settings, meta.get("step"))
