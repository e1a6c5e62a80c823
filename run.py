#!/usr/bin/env python3
"""Bootstrap and launch bpviz using the standard library only.

    python3 run.py            create .venv if needed, install bpviz, launch the app
    python3 run.py test       same set-up, then run the whole test suite offscreen
    python3 run.py ARGS...    anything else is passed to the app (e.g. --preset xor)

The project is (re)installed into .venv whenever pyproject.toml changes.
On Windows use ``py run.py``.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".bpviz-installed"
MIN_PYTHON = (3, 10)


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def fail(message: str) -> None:
    print(f"run.py: {message}", file=sys.stderr)
    sys.exit(1)


def missing_venv_hint() -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if sys.platform.startswith("linux"):
        return (f"Python's venv/ensurepip module is missing. On Debian/Ubuntu install it with:\n"
                f"    sudo apt install python3-venv   (or python{version}-venv)\n"
                f"then run this command again.")
    return "Python's venv/ensurepip module is missing: reinstall Python from python.org."


def check_python() -> None:
    if sys.version_info < MIN_PYTHON:
        fail(f"bpviz needs Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}, "
             f"this is {sys.version.split()[0]}")
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        fail(missing_venv_hint())


def fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_env() -> Path:
    py = venv_python()
    if not py.exists():
        check_python()
        print("run.py: creating .venv (first run) ...", flush=True)
        result = subprocess.run([sys.executable, "-m", "venv", str(VENV)])
        if result.returncode != 0 or not py.exists():
            fail("could not create .venv.\n" + missing_venv_hint())
    wanted = fingerprint()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("run.py: installing bpviz and its test extras into .venv ...", flush=True)
        cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
               "-e", f"{ROOT}[test]"]
        if subprocess.run(cmd).returncode != 0:
            fail("pip install failed (see the messages above); nothing was launched.")
        STAMP.write_text(wanted)
    return py


def main(argv: list[str]) -> int:
    py = ensure_env()
    env = dict(os.environ)
    if argv[:1] == ["test"]:
        if not env.get("QT_QPA_PLATFORM"):
            env["QT_QPA_PLATFORM"] = "offscreen"
        cmd = [str(py), "-m", "pytest", *argv[1:]]
    else:
        cmd = [str(py), "-m", "bpviz", *argv]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
