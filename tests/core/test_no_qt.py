"""The core (and the session layer) must work with no Qt installed: imports are checked two ways."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCKED = ("PySide6", "shiboken6", "pyqtgraph")
FORBIDDEN = BLOCKED + ("bpviz.ui",)

BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked for this test")
            return None

    sys.meta_path.insert(0, Blocker())
    for mod in list(sys.modules):
        if mod.split(".")[0] in BLOCKED:
            del sys.modules[mod]
""").format(blocked=BLOCKED)


def run_python(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_blocker_really_blocks_qt():
    """Sanity: under the blocker, importing PySide6 or pyqtgraph fails."""
    proc = run_python("""
        for name in ("PySide6", "PySide6.QtCore", "shiboken6", "pyqtgraph"):
            try:
                __import__(name)
            except ImportError:
                continue
            raise SystemExit(f"{name} imported")
        print("blocked")
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "blocked" in proc.stdout


def test_core_runs_forward_backward_without_qt(tmp_path):
    """With Qt blocked, bpviz.core imports, steps a CNN, trains, checks gradients and saves."""
    proc = run_python(f"""
        import numpy as np
        import bpviz.core as core
        from bpviz.core import (Network, Conv2D, MaxPool2D, Flatten, Dense, SGD, Trainer,
                                gradient_check)
        net = Network((1, 6, 6), [Conv2D(2, 3, activation="relu"), MaxPool2D(2), Flatten(),
                                  Dense(3, "softmax")], loss="cross_entropy")
        rng = np.random.default_rng(0)
        x, t = rng.normal(size=(4, 1, 6, 6)), np.array([0, 1, 2, 1])
        for i in net.iter_forward(x):
            pass
        loss = net.backward(t)
        assert np.isfinite(loss) and net.input_grad.shape == x.shape
        SGD(lr=0.1).step(net)
        Trainer(net, SGD(lr=0.1), x, t, batch_size=2).step()
        assert gradient_check(net, x, t, max_coords=3).worst in ("pass", "warn")
        net.save({str(tmp_path / "n.bpviz")!r})
        assert Network.load({str(tmp_path / "n.bpviz")!r}).config() == net.config()
        bad = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED or m == "bpviz.ui")
        assert not bad, bad
        print("ok", loss)
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok")


def test_session_imports_without_qt():
    """With Qt blocked, bpviz.session and its modules import."""
    modules = sorted(p.stem for p in (ROOT / "bpviz" / "session").glob("*.py")
                     if p.stem != "__init__")
    proc = run_python(f"""
        import importlib
        importlib.import_module("bpviz.session")
        for name in {modules!r}:
            importlib.import_module("bpviz.session." + name)
        print("ok")
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(path: pathlib.Path):
    """Absolute module names imported by a source file (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: str):
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield node.lineno, mod
            for alias in node.names:
                yield node.lineno, f"{mod}.{alias.name}"
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", "")) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant):
                yield node.lineno, str(node.args[0].value)


def _is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


SOURCES = sorted(p for sub in ("core", "session") for p in (ROOT / "bpviz" / sub).rglob("*.py"))


def test_resolver_flags_forbidden_imports():
    """Sanity: the import scanner sees absolute, relative and dynamic imports of Qt and bpviz.ui."""
    src = ("import PySide6.QtCore\nfrom ..ui import window\nfrom pyqtgraph import Qt\n"
           "import importlib\nimportlib.import_module('shiboken6')\n")
    tree_names = [name for _, name in _imports_in(src, "bpviz.session")]
    assert {n for n in tree_names if _is_forbidden(n)} >= {
        "PySide6.QtCore", "bpviz.ui", "pyqtgraph", "shiboken6"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_qt_or_ui_imports_in_core_and_session(path):
    """No source file of bpviz/core or bpviz/session imports PySide6, pyqtgraph or bpviz.ui."""
    bad = [(line, name) for line, name in _imports(path) if _is_forbidden(name)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
