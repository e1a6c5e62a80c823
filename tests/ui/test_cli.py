"""The command line, run as a user would: ``python -m bpviz ...`` in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bpviz(*args, tmp_path, timeout=120, env=None):
    e = dict(os.environ)
    e["QT_QPA_PLATFORM"] = "offscreen"
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")      # never the user's settings
    e["XDG_DATA_HOME"] = str(tmp_path / "data")
    e["BPVIZ_LOG_DIR"] = str(tmp_path / "logs")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "bpviz", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=e)


def test_list_presets_prints_name_and_title(tmp_path):
    from bpviz.core.presets import list_presets, load_preset
    r = bpviz("--list-presets", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(list_presets())
    for line, name in zip(lines, list_presets()):
        assert line.split()[0] == name and load_preset(name).title in line


def test_unknown_preset_is_exit_2_with_the_valid_names(tmp_path):
    r = bpviz("--preset", "nope", tmp_path=tmp_path)
    assert r.returncode == 2
    assert "unknown preset 'nope'" in r.stderr and "cnn-shapes" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_and_damaged_files_are_exit_2(tmp_path):
    r = bpviz(tmp_path / "absent.bpviz", tmp_path=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
    bad = tmp_path / "bad.bpviz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    r = bpviz(bad, tmp_path=tmp_path)
    assert r.returncode == 2 and "damaged" in r.stderr and "Traceback" not in r.stderr


def test_bad_option_values_are_exit_2(tmp_path):
    assert bpviz("--steps", "-3", tmp_path=tmp_path).returncode == 2
    assert bpviz("--size", "huge", tmp_path=tmp_path).returncode == 2


def _variance(path) -> float:
    from PySide6.QtGui import QImage
    image = QImage(str(path))
    assert not image.isNull()
    step = 7
    values = [image.pixelColor(x, y).lightness()
              for x in range(0, image.width(), step) for y in range(0, image.height(), step)]
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def test_screenshot_renders_every_panel_and_exits_0(tmp_path):
    out = tmp_path / "shot.png"
    r = bpviz("--steps", "3", "--screenshot", out, "--size", "1200x800", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.exists() and out.stat().st_size > 20_000
    from PySide6.QtGui import QImage
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1200, 800)
    assert _variance(out) > 100, "the picture is not a blank window"


def test_screenshot_of_a_saved_file(tmp_path):
    from bpviz.session.session import Session
    s = Session("xor")
    for _ in range(5):
        s.train_step()
    path = tmp_path / "xor.bpviz"
    s.save(str(path))
    out = tmp_path / "xor.png"
    r = bpviz(path, "--screenshot", out, tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 20_000


def test_start_up_reaches_the_event_loop(tmp_path):
    """The window is built and the event loop entered (BPVIZ_STARTUP_EXIT quits at once)."""
    t0 = time.perf_counter()
    r = bpviz("--preset", "xor", tmp_path=tmp_path, env={"BPVIZ_STARTUP_EXIT": "1"})
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed < 30          # the 2 s target is measured by benchmarks/bench_ui.py


@pytest.mark.parametrize("argv", [["--help"]])
def test_help_exits_0(tmp_path, argv):
    r = bpviz(*argv, tmp_path=tmp_path)
    assert r.returncode == 0 and "--screenshot" in r.stdout
