"""One array for all of a network's parameters, and one per backward pass for their gradients.

Every layer's ``params[k]`` is a view of the network's parameter buffer, and a backward pass
writes each ``grads[k]`` into a view of a fresh gradient buffer (handed to the layers as
``Layer.grad_slots``). A plain SGD step then updates every parameter with three NumPy calls
over the whole buffer instead of three per parameter: at LeNet batch 1, where a NumPy call
costs more than the arithmetic of a bias, the update took half the time.

Nothing depends on the views staying in place: a parameter or gradient replaced by another
array (an edit, a test's broken layer) only sends the optimiser down its per-parameter path.
"""
from __future__ import annotations

import sys

import numpy as np

POOL_SIZE = 4              # buffers a ParamBuffer keeps for reuse …
POOL_MAX_BYTES = 2**26     # … when each is at most this large (64 MiB)


class ParamBuffer:
    """The parameters of ``layers``, in stack order, each key in its layer's order."""

    def __init__(self, layers, dtype):
        self.dtype = np.dtype(dtype)
        self.entries = []                 # (layer, key, slice of the buffer, shape)
        start = 0
        for layer in layers:
            for key, p in layer.params.items():
                self.entries.append((layer, key, slice(start, start + p.size), p.shape))
                start += p.size
        self.size = start
        self.params = self.grads = None   # the flat arrays
        self.param_views, self.grad_views = [], []   # their views, in ``entries`` order
        self._pool = []                   # [(flat array, its views)] for reuse

    def views(self, flat) -> list[np.ndarray]:
        """Each entry's view of a flat array (``flat`` in this buffer's layout)."""
        return [flat[sl].reshape(shape) for _, _, sl, shape in self.entries]

    def fresh(self):
        """(flat array, its views) that no one else can see: a kept one that nothing outside
        this object references any more (no layer, record or caller holds it or a view of
        it), else a new one.

        Reusing them keeps a training run on the same few buffers instead of two new
        parameter-sized arrays a step, and their views need not be made again. (CPython
        counts every reference, a view's reference to its base included, so an array whose
        count is what this object alone accounts for can be reached by no one else.)
        """
        for entry in self._pool:
            if self._unheld(entry):
                return entry
        flat = np.empty(self.size, self.dtype)
        entry = (flat, self.views(flat))
        if len(self._pool) < POOL_SIZE and flat.nbytes <= POOL_MAX_BYTES:
            self._pool.append(entry)
        return entry

    @staticmethod
    def _unheld(entry) -> bool:
        # Unheld, the flat array is referenced by the entry, its views' bases and the call's
        # argument; the views list by the entry and the argument (a record may hold the list
        # rather than its views); each view by the list, the loop variable and the argument.
        if (sys.getrefcount(entry[0]) != len(entry[1]) + 2
                or sys.getrefcount(entry[1]) != 2):
            return False
        for v in entry[1]:
            if sys.getrefcount(v) != 3:
                return False
        return True

    def adopt(self) -> None:
        """Copy the layers' current parameters into a buffer of their own and make them its
        views."""
        flat, views = self.fresh()
        for (layer, key, _, _), v in zip(self.entries, views):
            np.copyto(v, layer.params[key])
        self.install(flat, views)

    def install(self, flat, views) -> None:
        """Make the layers' parameters the views of ``flat`` (new weights after an update)."""
        for (layer, key, _, _), v in zip(self.entries, views):
            layer.params[key] = v
        self.params, self.param_views = flat, views

    def hand_out_grads(self) -> None:
        """A gradient buffer no one else holds for the backward pass that starts now."""
        flat, views = self.fresh()
        for layer, _, _, _ in self.entries:
            layer.grad_slots = {}
        for (layer, key, _, _), v in zip(self.entries, views):
            layer.grad_slots[key] = v
        self.grads, self.grad_views = flat, views

    def current(self):
        """(parameter buffer, gradient buffer) when every layer's parameters and gradients are
        still their views, else None."""
        if self.grads is None:
            return None
        for (layer, key, _, _), p, g in zip(self.entries, self.param_views, self.grad_views):
            if layer.params[key] is not p or layer.grads[key] is not g:
                return None
        return self.params, self.grads
