"""Time one training step (forward + backward + SGD update) of the bpviz core.

For each case the script reports the median step time of

* the bpviz core:   ``net.forward(x); net.backward(labels); opt.step(net)``,
* the loop reference (benchmarks/loop_reference.py, per-output-pixel Python loops, the kind
  of code the core replaces), with the same weights,
* PyTorch CPU eager (``torch.set_num_threads(1)``), same architecture and dtype,
  ``zero_grad(); cross_entropy(model(x), y).backward(); step()`` — if torch is installed,

all single-threaded (OpenBLAS/OMP/MKL limited to one thread). Before timing, one step of
each implementation is run from identical weights and the losses are compared, so a
mismatch in the core shows up here as well as in the tests.

Usage::

    python benchmarks/bench_core.py [--quick] [--markdown-only] [--no-torch] [--no-loop]
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _load_loop_reference():
    spec = importlib.util.spec_from_file_location("bpviz_loop_reference",
                                                  HERE / "loop_reference.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


ref = _load_loop_reference()

from bpviz.core import SGD, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network  # noqa: E402

try:  # torch is optional
    import torch  # noqa: E402
    import torch.nn.functional as TF  # noqa: E402

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    TORCH_ERROR = None
except Exception as exc:  # pragma: no cover - depends on the environment
    torch = None
    TORCH_ERROR = f"{type(exc).__name__}: {exc}"

LR = 0.01

# --------------------------------------------------------------------------- architectures
# A tiny layer language shared by the three implementations:
#   ("conv", filters, kernel, stride, padding, activation)
#   ("maxpool", size) / ("avgpool", size)
#   ("flatten",)
#   ("dense", units, activation)

ARCHS = {
    "tiny": ((1, 4, 4), [
        ("conv", 2, 2, 1, 0, "identity"),
        ("flatten",),
        ("dense", 2, "softmax"),
    ]),
    "MLP 784-256-128-10": ((784,), [
        ("dense", 256, "relu"),
        ("dense", 128, "relu"),
        ("dense", 10, "softmax"),
    ]),
    "LeNet-5": ((1, 28, 28), [
        ("conv", 6, 5, 1, 2, "relu"),
        ("maxpool", 2),
        ("conv", 16, 5, 1, 0, "relu"),
        ("maxpool", 2),
        ("flatten",),
        ("dense", 120, "relu"),
        ("dense", 84, "relu"),
        ("dense", 10, "softmax"),
    ]),
}

# (architecture, batch)
CASES = [
    ("tiny", 1),
    ("MLP 784-256-128-10", 1),
    ("MLP 784-256-128-10", 64),
    ("LeNet-5", 1),
    ("LeNet-5", 32),
]
DTYPES = (np.float64, np.float32)


def bpviz_layers(arch):
    out = []
    for item in arch:
        kind = item[0]
        if kind == "conv":
            _, f, k, s, p, act = item
            out.append(Conv2D(f, k, stride=s, padding=p, activation=act))
        elif kind == "maxpool":
            out.append(MaxPool2D(item[1]))
        elif kind == "avgpool":
            out.append(AvgPool2D(item[1]))
        elif kind == "flatten":
            out.append(Flatten())
        elif kind == "dense":
            out.append(Dense(item[1], activation=item[2]))
        else:
            raise ValueError(kind)
    return out


def loop_spec(arch):
    out = []
    for item in arch:
        kind = item[0]
        if kind == "conv":
            _, f, k, s, p, act = item
            out.append({"type": "conv2d", "stride": s, "padding": p, "activation": act})
        elif kind in ("maxpool", "avgpool"):
            out.append({"type": kind, "size": item[1], "stride": None})
        elif kind == "flatten":
            out.append({"type": "flatten"})
        elif kind == "dense":
            out.append({"type": "dense", "activation": item[2]})
    return out


def torch_model(arch, input_shape, params, dtype):
    """nn.Sequential with the same weights; the final softmax is left to cross_entropy."""
    nn = torch.nn
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    mods = []
    shape = input_shape
    for li, item in enumerate(arch):
        kind = item[0]
        last = li == len(arch) - 1
        if kind == "conv":
            _, f, k, s, p, act = item
            m = nn.Conv2d(shape[0], f, k, stride=s, padding=p)
            mods.append(m)
            oh = (shape[1] + 2 * p - k) // s + 1
            ow = (shape[2] + 2 * p - k) // s + 1
            shape = (f, oh, ow)
        elif kind in ("maxpool", "avgpool"):
            k = item[1]
            mods.append(nn.MaxPool2d(k) if kind == "maxpool" else nn.AvgPool2d(k))
            shape = (shape[0], shape[1] // k, shape[2] // k)
            act = None
        elif kind == "flatten":
            mods.append(nn.Flatten())
            shape = (int(np.prod(shape)),)
            act = None
        else:
            _, units, act = item
            m = nn.Linear(shape[0], units)
            mods.append(m)
            shape = (units,)
        if kind in ("conv", "dense"):
            m.to(tdtype)     # before copying: a float32 detour would round float64 weights
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.asarray(params[li]["W"], dtype=dtype)))
                m.bias.copy_(torch.from_numpy(np.asarray(params[li]["b"], dtype=dtype)))
            if act == "softmax":
                assert last, "softmax only as the output (fused with cross-entropy)"
            elif act in acts:
                mods.append(acts[act]())
    return nn.Sequential(*mods).to(tdtype)


# --------------------------------------------------------------------------- timing


def measure(fn, *, budget_s, min_runs, max_runs, warmup=1):
    """Median seconds of ``fn()`` over as many runs as fit in ``budget_s`` (within bounds)."""
    for _ in range(warmup):
        fn()
    times = []
    gc.collect()
    start = time.perf_counter()
    while len(times) < max_runs:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_runs and time.perf_counter() - start > budget_s:
            break
    return statistics.median(times), len(times)


def measure_interleaved(fns, *, budget_s, min_runs, max_runs, warmup=5, block=10, settle=2):
    """Median seconds of each ``fns[name]()``, timed in alternating blocks: each block runs
    ``settle`` untimed steps after the switch from the other implementations, then ``block``
    timed steps.

    Alternating keeps the bpviz/torch ratio fair when the machine's load changes during
    the measurement (a shared 2-core box rarely stays quiet for minutes). The first steps
    of a block start with the caches the other implementation left, which training, one
    step after another, never does (measured here at LeNet batch 1, against the tenth step
    of a block: the first step +0.28 ms for bpviz and +0.25 ms for torch, the second +0.08
    and +0.03 ms, the third +0.05 and +0.02 ms). The first step of each block is reported
    apart, as ``after a switch``.

    Returns {name: (median of the timed steps, their count, median of the first steps)}.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    first = {name: [] for name in fns}
    gc.collect()
    start = time.perf_counter()
    while True:
        for name, fn in fns.items():
            for i in range(settle):
                t0 = time.perf_counter()
                fn()
                if i == 0:
                    first[name].append(time.perf_counter() - t0)
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        n = min(len(t) for t in times.values())
        if n >= max_runs or (n >= min_runs and time.perf_counter() - start > budget_s):
            break
    return {name: (statistics.median(t), len(t), statistics.median(first[name]))
            for name, t in times.items()}


class Row:
    def __init__(self, arch, dtype, batch):
        self.arch, self.dtype, self.batch = arch, np.dtype(dtype).name, batch
        self.bpviz = self.loop = self.torch = self.torch32 = None
        self.runs = {}
        self.loss = {}
        self.after_switch = {}        # name -> median of the first step of each block

    def cell(self, v):
        return "—" if v is None else f"{v * 1e3:.3f}" if v < 0.01 else f"{v * 1e3:.2f}"


def run_case(arch_name, batch, dtype, args, log):
    input_shape, arch = ARCHS[arch_name]
    row = Row(arch_name, dtype, batch)
    rng = np.random.default_rng(1234 + batch)
    x64 = rng.standard_normal((batch,) + input_shape)
    x = x64.astype(dtype)
    labels = rng.integers(0, 10 if arch_name != "tiny" else 2, size=batch)

    net = Network(input_shape=input_shape, layers=bpviz_layers(arch), loss="cross_entropy",
                  seed=0, dtype=dtype)
    params0 = [{k: v.copy() for k, v in layer.params.items()} for layer in net.layers]
    opt = SGD(lr=LR)

    # --- one identical first step for every implementation: the losses must agree
    net.forward(x)
    row.loss["bpviz"] = float(net.backward(labels))
    opt.step(net)

    def bpviz_step():
        net.forward(x)
        net.backward(labels)
        opt.step(net)

    # quick scales the budgets; they keep the whole script at about 2–3 minutes
    scale = 0.2 if args.quick else 1.0
    timed = {"bpviz": bpviz_step}

    if not args.no_loop:
        lparams = [({k: v.astype(dtype).copy() for k, v in p.items()} or None) for p in params0]
        loop = ref.LoopNetwork(loop_spec(arch), lparams, loss="cross_entropy")
        t0 = time.perf_counter()
        row.loss["loop"] = float(loop.train_step(x, labels, LR))
        first = time.perf_counter() - t0

        def loop_step():
            loop.train_step(x, labels, LR)

        if first > 2.0 * scale:          # slow case (LeNet batch 32): the first run + few more
            times = [first]
            for _ in range(0 if args.quick else 1):
                t0 = time.perf_counter()
                loop_step()
                times.append(time.perf_counter() - t0)
            row.loop, row.runs["loop"] = statistics.median(times), len(times)
        else:
            row.loop, row.runs["loop"] = measure(loop_step, budget_s=2.0 * scale, min_runs=3,
                                                 max_runs=500, warmup=0)
        log(f"  loop    {row.cell(row.loop):>9} ms  ({row.runs['loop']} runs)")

    if torch is not None and not args.no_torch:
        model = torch_model(arch, input_shape, params0, dtype)
        topt = torch.optim.SGD(model.parameters(), lr=LR)
        tx = torch.from_numpy(np.ascontiguousarray(x))
        ty = torch.from_numpy(labels.astype(np.int64))

        def torch_step():
            topt.zero_grad()
            loss = TF.cross_entropy(model(tx), ty)
            loss.backward()
            topt.step()
            return loss

        row.loss["torch"] = float(torch_step().detach())
        timed["torch"] = torch_step

        if np.dtype(dtype) == np.float64 and arch_name == "LeNet-5" and batch == 1:
            # the batch-1 target compares bpviz float64 with torch *float32*: time that
            # model in the same interleaved run so both numbers see the same load
            model32 = torch_model(arch, input_shape, params0, np.float32)
            topt32 = torch.optim.SGD(model32.parameters(), lr=LR)
            tx32 = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

            def torch32_step():
                topt32.zero_grad()
                loss = TF.cross_entropy(model32(tx32), ty)
                loss.backward()
                topt32.step()

            timed["torch32"] = torch32_step

    # bpviz and torch: alternating blocks, so both see the same machine load
    results = measure_interleaved(timed, budget_s=2.0 * scale, min_runs=10, max_runs=5000)
    for name, (med, n, first) in results.items():
        setattr(row, name, med)
        row.runs[name] = n
        row.after_switch[name] = first
        log(f"  {name:<7} {row.cell(med):>9} ms  ({n} runs; first step after a switch "
            f"{row.cell(first)} ms)")
    return row


# --------------------------------------------------------------------------- report


def ratio(a, b, fmt="{:.1f}×"):
    if a is None or b is None or b == 0:
        return None
    return fmt.format(a / b)


def table(rows, torch_note):
    lines = ["| case | dtype | batch | bpviz ms | loop ms | loop/bpviz (×faster) | torch ms | bpviz/torch |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        loop_ms = r.cell(r.loop) if r.loop is not None else "not run"
        speed = ratio(r.loop, r.bpviz, "{:,.0f}×") or "—"
        if r.torch is not None:
            torch_ms, vs = r.cell(r.torch), ratio(r.bpviz, r.torch, "{:.2f}×")
        else:
            torch_ms, vs = torch_note, "—"
        lines.append(f"| {r.arch} | {r.dtype} | {r.batch} | {r.cell(r.bpviz)} | {loop_ms} | "
                     f"{speed} | {torch_ms} | {vs} |")
    return "\n".join(lines)


def find(rows, arch, dtype, batch):
    for r in rows:
        if r.arch == arch and r.dtype == dtype and r.batch == batch:
            return r
    return None


def target_lines(rows):
    out = []
    l1_64 = find(rows, "LeNet-5", "float64", 1)
    l1_32 = find(rows, "LeNet-5", "float32", 1)
    l32_32 = find(rows, "LeNet-5", "float32", 32)

    def verdict(ok):
        return "PASS" if ok else "MISS"

    # 1. LeNet batch 1 float64 bpviz ≤ 0.5 × torch float32
    t32 = None
    if l1_64 and l1_64.torch32 is not None:
        t32, how = l1_64.torch32, "timed interleaved with it"
        cold = l1_64.after_switch["bpviz"] / l1_64.after_switch["torch32"]
        how += f"; first steps after a switch: {cold:.2f}×"
    elif l1_32 and l1_32.torch is not None:
        t32, how = l1_32.torch, "from the float32 row"
    if l1_64 and t32 is not None:
        q = l1_64.bpviz / t32
        out.append(f"{verdict(q <= 0.5)}  LeNet batch 1: bpviz float64 {l1_64.bpviz * 1e3:.3f} ms "
                   f"vs torch float32 {t32 * 1e3:.3f} ms ({how}) = {q:.2f}× (target ≤ 0.5×)")
    else:
        out.append("n/a   LeNet batch 1: bpviz float64 ≤ 0.5× torch float32 (torch not measured)")

    # 2. LeNet batch 32 float32 bpviz ≤ 1.0 × torch float32
    if l32_32 and l32_32.torch is not None:
        q = l32_32.bpviz / l32_32.torch
        out.append(f"{verdict(q <= 1.0)}  LeNet batch 32 float32: bpviz {l32_32.bpviz * 1e3:.3f} ms "
                   f"vs torch {l32_32.torch * 1e3:.3f} ms = {q:.2f}× (target ≤ 1.0×)")
    else:
        out.append("n/a   LeNet batch 32 float32: bpviz ≤ 1.0× torch float32 (torch not measured)")

    # 3. LeNet ≥ 100× faster than the loop reference (every LeNet row)
    lenet = [r for r in rows if r.arch == "LeNet-5" and r.loop is not None]
    if lenet:
        parts = [f"{r.dtype} b{r.batch}: {r.loop / r.bpviz:,.0f}×" for r in lenet]
        worst = min(r.loop / r.bpviz for r in lenet)
        out.append(f"{verdict(worst >= 100)}  LeNet ≥ 100× faster than the loop reference: "
                   f"worst {worst:,.0f}× ({'; '.join(parts)})")
    else:
        out.append("n/a   LeNet ≥ 100× faster than the loop reference (loop not run)")
    return out


def loss_check_lines(rows):
    """The first-step losses from identical weights must agree across implementations."""
    out, bad = [], []
    for r in rows:
        base = r.loss.get("bpviz")
        tol = 1e-9 if r.dtype == "float64" else 1e-4
        for other in ("loop", "torch"):
            if other in r.loss and base is not None:
                diff = abs(r.loss[other] - base)
                if diff > tol * max(1.0, abs(base)):
                    bad.append(f"{r.arch} {r.dtype} b{r.batch}: bpviz {base:.10g} vs "
                               f"{other} {r.loss[other]:.10g} (|Δ| = {diff:.3g})")
    if bad:
        out.append("MISMATCH  first-step loss differs from identical weights:")
        out += [f"  {b}" for b in bad]
    else:
        out.append("OK  first-step losses agree (bpviz vs loop vs torch, same weights): "
                   "float64 within 1e-9, float32 within 1e-4")
    return out


def environment_lines():
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, "
             f"{os.cpu_count()} CPUs, {platform.machine()}",
             "threads: OPENBLAS/OMP/MKL_NUM_THREADS=1" +
             (f"; torch {torch.__version__} set_num_threads(1)" if torch is not None else
              f"; torch not installed ({TORCH_ERROR})")]
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        lines.append(f"numpy BLAS: {blas.get('name', '?')} {blas.get('version', '')}".rstrip())
    except Exception:
        pass
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (rough numbers)")
    ap.add_argument("--markdown-only", action="store_true",
                    help="print only the Markdown table and the target lines")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    ap.add_argument("--no-loop", action="store_true", help="skip the loop reference")
    args = ap.parse_args(argv)

    def log(msg):
        if not args.markdown_only:
            print(msg, file=sys.stderr, flush=True)

    if not args.markdown_only:
        for line in environment_lines():
            print(line)
        print()

    t_start = time.perf_counter()
    rows = []
    for arch_name, batch in CASES:
        for dtype in DTYPES:
            log(f"{arch_name}  {np.dtype(dtype).name}  batch {batch}")
            rows.append(run_case(arch_name, batch, dtype, args, log))

    if torch is None:
        torch_note = "torch not installed"
    elif args.no_torch:
        torch_note = "not run"
    else:
        torch_note = "—"
    print(table(rows, torch_note))
    print()
    if args.markdown_only:
        for line in target_lines(rows) + loss_check_lines(rows):
            print(f"- {line}")
    else:
        print("Targets:")
        for line in target_lines(rows):
            print(line)
        print()
        for line in loss_check_lines(rows):
            print(line)
        print(f"\n(total {time.perf_counter() - t_start:.0f} s; median step times; "
              f"step = forward + backward + SGD update, lr {LR})")


if __name__ == "__main__":
    main()
