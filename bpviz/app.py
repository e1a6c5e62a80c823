"""Command line and start-up of the desktop app.

    bpviz [FILE.bpviz] [--preset NAME] [--list-presets] [--steps N]
          [--screenshot OUT.png] [--size WxH]

Start-up state (also after New, Open and Shift+F5): the preset's network and dataset, the
first sample selected, and one forward pass done, so every panel shows something at once;
the first F11 then walks the backward pass layer by layer and the first F10 completes the
step. Arguments are checked, and the preset or file loaded, before Qt starts: a bad one
prints one clear line on stderr and exits with status 2. Heavy modules are imported late.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

_T0 = time.perf_counter()

EXIT_USAGE = 2


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 1600x1000") from None
    if not (320 <= w <= 10000 and 240 <= h <= 10000):
        raise argparse.ArgumentTypeError(f"size {text!r}: width 320…10000, height 240…10000")
    return w, h


def _steps(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps {text!r} must be a whole number ≥ 0") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"steps {n} must be ≥ 0")
    return n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpviz", description="Watch back-propagation happen, one layer at a time.",
        epilog="Keys: F11 step into (one layer), F10 step (forward+backward+update), "
               "Shift+F11 finish the pass, F5 run/pause, Shift+F5 reset weights.")
    p.add_argument("file", nargs="?", metavar="FILE.bpviz", help="a saved network to open")
    p.add_argument("--preset", metavar="NAME",
                   help="start from this preset (default: cnn-shapes; see --list-presets)")
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    p.add_argument("--steps", type=_steps, default=0, metavar="N",
                   help="train N steps before showing the window")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="render the window with every panel, save it as PNG and exit")
    p.add_argument("--size", type=_size, metavar="WxH", help="window size, e.g. 1600x1000")
    return p


def list_presets(out=sys.stdout) -> int:
    from bpviz.core.presets import list_presets as names, load_preset
    for name in names():
        try:
            title = load_preset(name).title
        except ValueError as exc:
            title = f"(invalid: {exc})"
        print(f"{name:<16} {title}", file=out)
    return 0


def _fail(message: str) -> int:
    print(f"bpviz: {message}", file=sys.stderr)
    return EXIT_USAGE


def make_session(args):
    """The session the window starts with; raises ValueError/OSError with the message."""
    from bpviz.session.session import DEFAULT_PRESET, Session
    session = Session(args.preset or DEFAULT_PRESET)
    if args.file:
        session.open(args.file)
    return session


def train(session, steps: int) -> str | None:
    """Train ``steps`` steps headless; the non-finite message if training had to stop."""
    from bpviz.core import NonFiniteError
    for _ in range(steps):
        try:
            session.train_step()
        except NonFiniteError as exc:
            return str(exc)
    return None


def run(argv: list[str]) -> int:
    global _T0
    _T0 = time.perf_counter()
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:           # --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.list_presets:
        return list_presets()
    if args.file and not os.path.exists(args.file):
        return _fail(f"{args.file}: no such file")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # leave a core to the GUI
    try:
        session = make_session(args)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    problem = train(session, args.steps)
    if problem:
        print(f"bpviz: training stopped after {session.step_count} steps: {problem}",
              file=sys.stderr)
    return _gui(session, args)


def _gui(session, args) -> int:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("bpviz")
    QCoreApplication.setApplicationName("bpviz")
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "bpviz"])
    import bpviz.ui  # noqa: F401  (pyqtgraph configuration)
    from bpviz.ui import errors
    from bpviz.ui.main_window import MainWindow

    shot = args.screenshot
    window = MainWindow(session, restore_layout=not shot, lazy_panels=not shot)
    errors.install(lambda: window)
    if args.size:
        window.resize(*args.size)
    elif not shot and not window.layout_restored:
        _fit_to_screen(window, app)
    if not window.layout_restored:
        window.apply_default_layout()       # for the final size (compact sidebar or not)
    if shot:
        window.persist_layout = False
        return _screenshot(app, window, shot, args)
    if session.phase == "idle" and not args.steps:
        window.prime()
    window.show()
    window.raise_()
    window.activateWindow()
    _startup_timing(app, window)
    window.build_panels_later()          # the window answers while the panels appear
    code = app.exec()
    return int(code)


def _startup_timing(app, window) -> None:
    """BPVIZ_TIMING=1 prints when the window was shown and when every panel was drawn
    (seconds since ``run()`` began); BPVIZ_STARTUP_EXIT=1 then quits (benchmarks, tests)."""
    timing, leave = os.environ.get("BPVIZ_TIMING"), os.environ.get("BPVIZ_STARTUP_EXIT")
    if not (timing or leave):
        return
    shown = time.perf_counter() - _T0

    def ready():
        app.processEvents()               # the last panel's first paint
        if timing:
            print(f"bpviz: window shown {shown:.2f} s, panels drawn "
                  f"{time.perf_counter() - _T0:.2f} s", file=sys.stderr)
        if leave:
            app.quit()
    window.panelsReady.connect(ready)


def _fit_to_screen(window, app) -> None:
    screen = app.primaryScreen()
    if screen is None:
        return
    area = screen.availableGeometry()
    w, h = min(window.width(), int(area.width() * 0.95)), min(window.height(),
                                                              int(area.height() * 0.95))
    window.resize(w, h)


def _screenshot(app, window, path, args) -> int:
    if window.session.phase == "idle" and not args.steps:
        window.prime()
    window.show()
    for _ in range(3):                  # let the layout settle, then paint every panel
        app.processEvents()
    window.refresh()
    app.processEvents()
    image = window.grab()
    ok = image.save(path, "PNG")
    window.session.dirty = False
    window.close()
    if not ok:
        return _fail(f"{path}: the screenshot could not be written")
    print(path)
    return 0
