"""The stepping debugger: one Network, its data, optimiser, cursor and history. No Qt.

A training step has three phases, forward → backward → update; the cursor walks them one
layer at a time (``step_into``) or runs to a phase boundary (``forward``, ``backward``,
``update``/``step``, ``finish_pass``). Every change is announced through ``events``.
"""
from __future__ import annotations

import numpy as np

from bpviz.core import SGD, Network, NonFiniteError, Trainer, accuracy, losses
from bpviz.core.datasets import Dataset, load_dataset
from bpviz.core.errors import SettingsError, TargetError
from bpviz.core.fileformat import load_network, save_network
from bpviz.core.presets import Preset, load_preset

from .events import Emitter
from .history import History
from .snapshot import Snapshot, layer_snapshot

DEFAULT_PRESET = "cnn-shapes"
TRAINING_KEYS = ("lr", "momentum", "l2", "clip_value", "clip_norm")


def network_from_preset(preset: Preset) -> Network:
    net = Network(preset.input_shape, list(preset.layers), loss=preset.loss, seed=preset.seed,
                  dtype=preset.dtype, reduction=preset.reduction)
    explicit = preset.param_arrays()
    if explicit:
        params = net.get_params()
        for i, p in explicit.items():
            params[i].update(p)
        net.set_params(params)
    return net


def dataset_targets(dataset: Dataset):
    """Per-sample targets: explicit ``t`` where the dataset has one, else class labels."""
    t = getattr(dataset, "t", None)
    return dataset.y if t is None else t


class BreakpointHit(Exception):
    """Raised by ``train_step`` when a breakpoint condition holds; the cursor stays there."""

    def __init__(self, reason: str, phase: str, layer):
        self.reason, self.phase, self.layer = reason, phase, layer
        super().__init__(reason)


class Session:
    def __init__(self, preset: str | Preset = DEFAULT_PRESET):
        self.events = Emitter()
        # Conditions checked after every unit while any is set: callables
        # ``condition(session) -> str | None`` returning why to stop (see bpviz.session.breakpoints).
        self.breakpoints: list = []
        self.history = History()
        self.preset = load_preset(preset) if isinstance(preset, str) else preset
        self.net = network_from_preset(self.preset)
        self.dataset = load_dataset(self.preset.dataset)
        t = dict(self.preset.training)
        self.optimizer = SGD(**{k: t[k] for k in TRAINING_KEYS if k in t})
        self.trainer = Trainer(self.net, self.optimizer, self.dataset.x,
                               dataset_targets(self.dataset), mode=t.get("mode", "mini-batch"),
                               batch_size=t.get("batch_size", 32), seed=self.preset.seed)
        self.sample_index = 0
        self.path = None
        self.dirty = False
        self._reset_cursor()
        self.last_update = None
        self.last_error = None

    # ----- cursor ----------------------------------------------------------------------------
    _training = False                            # inside continuous training (train_step)

    def _reset_cursor(self):
        self.phase, self.layer, self.done = "idle", None, True
        self._gen = None
        self.batch = np.array([self.sample_index])
        self.step_count = getattr(self, "step_count", 0)
        self.loss = self.acc = None

    @property
    def steps(self) -> int:
        return self.step_count

    def label(self) -> str:
        if self.phase == "idle":
            return f"ready · step {self.step_count}"
        if self.phase == "update":
            return f"update · step {self.step_count} applied"
        total = len(self.net.layers)
        layer = self.net.layers[self.layer]
        state = " · done" if self.done else ""
        # the layer's index as the sidebar and the panels number it, then the progress
        return (f"{self.phase} · layer {self.layer} {layer.kind} "
                f"({self.layer + 1} of {total}){state}")

    def _next_batch(self, watched: bool = True) -> np.ndarray:
        """The next batch. Stepped by hand (``watched``), a mini- or full batch starts with
        the selected sample, which the panels draw (they show a batch's first sample): the
        Data panel and the panels then show the same sample, the one the user picked. It
        replaces the batch's last member unless it is already in. Continuous training takes
        the trainer's batches as they are (one sample in every batch would bias it)."""
        if self.trainer.mode == "sample":
            return np.array([self.sample_index])
        batch = self.trainer.next_indices()
        if watched:
            rest = batch[batch != self.sample_index][:len(batch) - 1]
            batch = np.concatenate(([self.sample_index], rest)).astype(batch.dtype)
        return batch

    def _advance(self) -> None:
        """One layer of the current generator; mark the phase done after its last layer."""
        self.layer = next(self._gen)
        if self.phase == "backward" and self.loss is None:   # known from the first layer on
            self.loss = self.net.loss_value
            self.acc = accuracy(self.net.layers[-1].a, np.asarray(self.targets()))
        last = len(self.net.layers) - 1 if self.phase == "forward" else 0
        if self.layer == last:
            for _ in self._gen:          # let the generator finish its bookkeeping
                pass
            self._gen, self.done = None, True
            if self.phase == "backward":
                self._after_backward()
        else:
            self.done = False

    def _start_forward(self, new_batch: bool) -> None:
        if new_batch:
            self.batch = self._next_batch(watched=not self._training)
        self.phase, self.done, self.loss, self.acc = "forward", False, None, None
        self._gen = self.net.iter_forward(self.dataset.x[self.batch])

    def _start_backward(self) -> None:
        self.phase, self.done = "backward", False
        self._gen = self.net.iter_backward(self.targets())

    def targets(self):
        return dataset_targets(self.dataset)[self.batch]

    def _after_backward(self) -> None:
        self.loss = self.net.loss_value
        self.acc = accuracy(self.net.layers[-1].a, np.asarray(self.targets()))
        self.history.record(self.step_count, self.net, self.loss, self.acc)
        if self.net.nonfinite:
            self.events.emit("nonfinite", self.net.first_nonfinite)

    def _apply_update(self) -> None:
        try:
            self.last_update = self.optimizer.step(self.net)
        except NonFiniteError as exc:
            self.last_error = exc
            self.events.emit("nonfinite", exc.report)
            raise
        self.phase, self.layer, self.done = "update", None, True
        self.step_count += 1
        self.dirty = True
        if self.trainer.mode == "sample":
            self.sample_index = (self.sample_index + 1) % len(self.dataset)
        self.events.emit("step", self.step_count)

    def _after_step_boundary(self) -> bool:
        return self.phase in ("idle", "update")

    def step_into(self) -> None:
        """One unit: the next layer of the current pass, or the update."""
        if self._after_step_boundary():
            self._start_forward(new_batch=True)
            self._advance()
        elif not self.done:
            self._advance()
        elif self.phase == "forward":
            self._start_backward()
            self._advance()
        else:
            self._apply_update()
        self._announce()

    def finish_pass(self) -> None:
        """Run to the end of the current phase (from a boundary: the next whole phase)."""
        if self._after_step_boundary():
            self._start_forward(new_batch=True)
        elif self.done and self.phase == "forward":
            self._start_backward()
        elif self.done:
            self._apply_update()
            self._announce()
            return
        while not self.done:
            self._advance()
        self._announce()

    def forward(self) -> None:
        """Run the forward pass to its end (a new batch after an update, else the same one)."""
        if self.phase != "forward" or self.done:
            self._start_forward(new_batch=self._after_step_boundary())
        while not self.done:
            self._advance()
        self._announce()

    def backward(self) -> None:
        if self._after_step_boundary() or self.phase == "forward":
            if self.phase != "forward" or not self.done:
                self.forward()
            self._start_backward()
        elif self.done:
            self._start_backward()            # recompute: identical by construction
        while not self.done:
            self._advance()
        self._announce()

    def update(self) -> None:
        """Complete the current step (forward and backward as needed), then update."""
        if self._after_step_boundary() or self.phase == "forward" or not self.done:
            if not (self.phase == "backward" and self.done):
                self.backward()
        self._apply_update()
        self._announce()

    step = update

    def check_breakpoints(self) -> str | None:
        for condition in self.breakpoints:
            reason = condition(self)
            if reason:
                return reason
        return None

    def _train_step_with_breakpoints(self) -> None:
        """One step unit by unit, stopping (cursor left there) when a condition holds."""
        start = self.step_count
        self._training = True                    # the trainer's batches, as train_step's
        try:
            while self.step_count == start:
                self.step_into()
                reason = self.check_breakpoints()
                if reason:
                    raise BreakpointHit(reason, self.phase, self.layer)
        finally:
            self._training = False

    def train_step(self) -> None:
        """One whole step without announcing (continuous training)."""
        if self.breakpoints:
            self._train_step_with_breakpoints()
            return
        if not self._after_step_boundary():
            self.update()
            return
        self.batch = self._next_batch(watched=False)
        self.phase = "forward"
        self.net.forward(self.dataset.x[self.batch])
        self.phase = "backward"
        self.net.backward(self.targets())
        self.layer, self.done = 0, True
        self._after_backward()
        if self.net.nonfinite:
            raise NonFiniteError(self.net.first_nonfinite)
        self._apply_update()

    def _announce(self) -> None:
        self.events.emit("phase", self.label())

    # ----- settings, data and edits --------------------------------------------------------
    def set_training(self, **settings) -> None:
        """lr, momentum, l2, clip_value, clip_norm, mode, batch_size; all or nothing."""
        opt = {k: v for k, v in settings.items() if k in TRAINING_KEYS}
        unknown = set(settings) - set(opt) - {"mode", "batch_size"}
        if unknown:
            raise SettingsError(f"training: unknown setting(s) {', '.join(sorted(unknown))}")
        old_opt = self.optimizer.settings()
        self.optimizer.configure(**opt)
        try:
            self.trainer.set_mode(settings.get("mode", self.trainer.mode),
                                  settings.get("batch_size", self.trainer.batch_size))
        except SettingsError:
            self.optimizer.configure(**old_opt)
            raise
        self.events.emit("settings", self.training_settings())

    def training_settings(self) -> dict:
        return {**self.optimizer.settings(), "mode": self.trainer.mode,
                "batch_size": self.trainer.batch_size}

    def set_dataset(self, dataset: Dataset) -> None:
        """Use another dataset; the input shape follows it when the stack allows."""
        out = self.net.output_shape
        t = dataset_targets(dataset)
        if np.ndim(t) == 1 and len(out) == 1 and out[0] > 1 and dataset.num_classes > out[0]:
            raise TargetError(f"dataset {dataset.name}: {dataset.num_classes} classes but the "
                              f"output layer has {out[0]} units; give it at least "
                              f"{dataset.num_classes}")
        losses.targets(self.net.loss, t, (len(dataset),) + tuple(out), self.net.dtype)
        if dataset.input_shape != self.net.input_shape:
            self.net.set_input_shape(dataset.input_shape)      # raises, changing nothing
            self._structure_changed()
        self.dataset = dataset
        self.trainer = Trainer(self.net, self.optimizer, dataset.x, dataset_targets(dataset),
                               mode=self.trainer.mode, batch_size=self.trainer.batch_size,
                               seed=self.preset.seed)
        self.sample_index = 0
        self._reset_cursor()
        self.events.emit("data", dataset.name)

    def select_sample(self, index: int) -> None:
        if not 0 <= index < len(self.dataset):
            raise TargetError(f"sample {index} is out of range (0 … {len(self.dataset) - 1})")
        self.sample_index = int(index)
        if self._after_step_boundary():
            self.batch = np.array([self.sample_index])
        self.events.emit("data", self.dataset.name)

    def _structure_changed(self) -> None:
        self.history.clear()
        self.optimizer.reset()
        self.step_count = 0
        self.last_update = None
        self.dirty = True
        self._reset_cursor()
        self.events.emit("architecture", self.net.config())

    def edit(self, operation: str, *args):
        """Apply a Network edit (insert_layer, remove_layer, replace_layer, move_layer,
        set_loss, set_input_shape); a failed edit raises and changes nothing."""
        before = self.net.layers[args[0]] if operation in ("remove_layer",
                                                            "replace_layer") else None
        getattr(self.net, operation)(*args)
        self._structure_changed()
        return before

    def reset_weights(self) -> None:
        """Fresh weights from the network's seed (explicit preset weights restored too)."""
        cfg = self.net.config()
        fresh = Network.from_config(cfg)
        if self.preset.param_arrays() and cfg["layers"] == list(self.preset.layers):
            fresh = network_from_preset(self.preset)
        self.net.set_params(fresh.get_params())
        self.trainer = Trainer(self.net, self.optimizer, self.dataset.x,
                               dataset_targets(self.dataset), mode=self.trainer.mode,
                               batch_size=self.trainer.batch_size, seed=self.preset.seed)
        self._structure_changed()

    def rewind(self, step: int) -> None:
        """Back to the start of step ``step`` (weights and data already put back by the
        caller): no pass in progress, no update, history rows of that step on dropped."""
        self.history.truncate(step)
        self.step_count = step
        self.last_update = self.last_error = None
        self._reset_cursor()
        self.net.clear_pass()
        self.dirty = True

    # ----- files ---------------------------------------------------------------------------
    def save(self, path) -> None:
        save_network(path, self.net, optimizer=self.optimizer, step=self.step_count)
        self.path, self.dirty = path, False
        self.events.emit("file", str(path))

    def open(self, path) -> None:
        """Load a .bpviz file; on any error the current network stays as it was."""
        loaded = load_network(path)
        net = loaded.network
        dataset = self.dataset
        if net.input_shape != dataset.input_shape:
            dataset = self._dataset_for(net.input_shape)
        self.net = net
        if loaded.optimizer:
            self.optimizer = SGD(**loaded.optimizer)
        self.dataset = dataset
        self.trainer = Trainer(net, self.optimizer, dataset.x, dataset_targets(dataset),
                               mode=self.trainer.mode, batch_size=self.trainer.batch_size)
        self._structure_changed()
        self.step_count = loaded.step or 0
        self.path, self.dirty = path, False
        self.events.emit("file", str(path))

    @staticmethod
    def _dataset_for(input_shape) -> Dataset:
        from bpviz.core.datasets import list_datasets
        for name in list_datasets():
            ds = load_dataset(name)
            if ds.input_shape == tuple(input_shape):
                return ds
        raise TargetError(f"no embedded dataset has input shape {tuple(input_shape)}; "
                          f"load your own data first")

    # ----- snapshot --------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        net = self.net
        sample = 0
        last = self.last_update.layers if self.last_update else [None] * len(net.layers)
        if len(last) != len(net.layers):
            last = [None] * len(net.layers)
        out = net.layers[-1]
        has_output = out.a is not None
        targets = np.asarray(dataset_targets(self.dataset))
        factor = self.last_update.clip_factor if self.last_update else 1.0
        layers = tuple(layer_snapshot(l, sample, u, factor) for l, u in zip(net.layers, last))
        steps_h, loss_h, acc_h, g_h, d_h = self.history.arrays(len(net.layers))
        idx = int(self.batch[sample])
        input_grad = None
        if net.layers[0].delta is not None:
            input_grad = np.array(net.input_grad[sample], copy=True)
        return Snapshot(
            step=self.step_count, phase=self.phase, layer=self.layer, done=self.done,
            label=self.label(), sample_index=idx, batch_indices=self.batch.copy(),
            x=np.array(self.dataset.x[idx], copy=True), target=np.array(targets[idx]),
            output=np.array(out.a[sample], copy=True) if has_output else None,
            loss=self.loss, accuracy=self.acc, input_grad=input_grad, layers=layers,
            history_steps=steps_h, loss_history=loss_h, accuracy_history=acc_h, grad_norm_history=g_h,
            delta_norm_history=d_h, nonfinite=net.first_nonfinite, lr=self.optimizer.lr,
            classes=tuple(self.dataset.classes), history_generation=self.history.generation)
