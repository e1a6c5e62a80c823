"""UI rate benchmark: the real window, every panel visible, training on LeNet-5 at batch 1.

    .venv/bin/python benchmarks/bench_ui.py [--seconds 10] [--preset lenet-digits]
                                            [--mode sample] [--profile] [--pretrain N]

Measures (offscreen unless QT_QPA_PLATFORM is set):
  * headless: ``session.train_step()`` in a loop, no window (steps/s);
  * painting: the window training with its worker thread while the ~60 Hz timer repaints
    every panel from the newest snapshot (repaints/s and steps/s);
  * each panel's ``show_snapshot`` cost on its own (ms per call).
Targets: ≥ 30 repaints/s, and steps/s while painting ≥ 50 % of headless.
``--profile`` prints the GUI thread's top functions (cProfile) during the painting run;
``--pretrain N`` trains N steps before the window opens (a long history: frame cost and
snapshots must not grow with it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

if not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # as bpviz.app does

TARGET_REPAINTS, TARGET_RATIO = 30.0, 0.5


def make_session(preset: str, mode: str):
    from bpviz.session.session import Session
    session = Session(preset)
    session.set_training(mode=mode, batch_size=1 if mode == "sample" else None)
    return session


def headless(preset, mode, seconds) -> float:
    session = make_session(preset, mode)
    for _ in range(20):
        session.train_step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        session.train_step()
        n += 1
    return n / (time.perf_counter() - t0)


def panel_costs(window, repeats=20) -> dict[str, tuple[float, float]]:
    """Per panel: ms to draw a new training snapshot, and ms to draw and paint it. Each
    draw gets a snapshot one step newer than the last, as in training (a panel that is
    handed an older history than it has drawn starts its history curves over)."""
    session = window.session
    out = {}
    for name, panel in window.panels.items():
        snaps = []
        for _ in range(2 * repeats):
            session.train_step()
            snaps.append(session.snapshot())
        t0 = time.perf_counter()
        for snap in snaps[:repeats]:
            panel.show_snapshot(snap)
        draw = (time.perf_counter() - t0) / repeats
        t0 = time.perf_counter()
        for snap in snaps[repeats:]:
            panel.show_snapshot(snap)
            window._paint_now(name)
        out[name] = (1000 * draw, 1000 * (time.perf_counter() - t0) / repeats)
    return out


def run_event_loop(seconds: float) -> None:
    """Run Qt's event loop for ``seconds``, as ``app.exec()`` does in the app: the GUI thread
    sleeps in the loop between events. (A Python loop of processEvents() + sleep(1 ms) wakes
    it 1,000 times a second, each time taking the GIL from the training thread.)"""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(int(1000 * seconds), loop.quit)
    loop.exec()


def painting(app, window, seconds, profile=False):
    import cProfile
    import pstats
    window.run()
    run_event_loop(1.0)                                  # warm-up
    r0, s0, t0 = window.repaints, window.session.step_count, time.perf_counter()
    p0, u0 = dict(window.painted), window.status_updates
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    run_event_loop(seconds)
    if prof:
        prof.disable()
    elapsed = time.perf_counter() - t0
    repaints, steps = window.repaints - r0, window.session.step_count - s0
    per_panel = {n: (window.painted.get(n, 0) - p0.get(n, 0)) / elapsed for n in window.panels}
    per_panel["status bar"] = (window.status_updates - u0) / elapsed
    window.pause()
    if prof:
        pstats.Stats(prof).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(int(os.environ.get("BENCH_TOP", 25)))
    return repaints / elapsed, steps / elapsed, per_panel


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--preset", default="lenet-digits")
    p.add_argument("--mode", default="sample", choices=("sample", "mini-batch", "full-batch"))
    p.add_argument("--size", default="1600x1000")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--pretrain", type=int, default=0, metavar="N",
                   help="train N steps before painting (history length)")
    p.add_argument("--share", type=float, default=None,
                   help="override GUI_SHARE (the cap on painting's share of the time)")
    args = p.parse_args(argv)

    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication
    QCoreApplication.setOrganizationName("bpviz-bench")
    QCoreApplication.setApplicationName("bpviz-bench")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    import tempfile
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = QApplication.instance() or QApplication([])
    import bpviz.ui  # noqa: F401
    import bpviz.ui.frames as frames
    from bpviz.ui.main_window import MainWindow
    if args.share is not None:
        frames.GUI_SHARE = args.share

    base = headless(args.preset, args.mode, min(args.seconds, 5.0))
    print(f"headless      {base:8.1f} steps/s   ({args.preset}, mode {args.mode})")

    session = make_session(args.preset, args.mode)
    for _ in range(args.pretrain):
        session.train_step()
    window = MainWindow(session, restore_layout=False)
    window.persist_layout = False
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    for _ in range(10):
        app.processEvents()
    window.prime()
    hidden = [n for n, pnl in window.panels.items() if not pnl.isVisible()]
    print(f"panels        {len(window.panels)} ({'all visible' if not hidden else 'hidden: ' + ', '.join(hidden)})")
    for name, (draw, paint) in panel_costs(window).items():
        print(f"  {name:<18} {draw:6.1f} ms draw, {paint:6.1f} ms draw + paint")

    rps, sps, per_panel = painting(app, window, args.seconds, args.profile)
    ratio = sps / base if base else float("nan")
    print(f"repaints      {rps:8.1f} /s        (target ≥ {TARGET_REPAINTS:.0f})")
    print(f"painting      {sps:8.1f} steps/s")
    print(f"  status bar    {per_panel['status bar']:6.1f} updates/s (step, loss, accuracy)")
    print(f"  frame cost    {1000 * window.frames.cost:6.1f} ms (all panels drawn and painted; "
          f"painting capped at {100 * frames.GUI_SHARE:.0f} % of the time)")
    print(f"ratio         {100 * ratio:8.1f} %        (target ≥ {100 * TARGET_RATIO:.0f} %)")
    print(f"history       {len(window.session.history):8d} steps at the end")
    ok = rps >= TARGET_REPAINTS and ratio >= TARGET_RATIO
    print("PASS" if ok else "MISS")
    window.session.dirty = False
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
