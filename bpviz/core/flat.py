"""One array for all of a network's parameters, and one per backward pass for their gradients.

Every layer's ``params[k]`` is a view of the network's parameter buffer, and a backward pass
writes each ``grads[k]`` into a view of a gradient buffer that no one else holds (handed to
the layers as ``Layer.grad_slots``; new, or reused: see ``fresh``). A plain SGD step then updates every parameter with three NumPy calls
over the whole buffer instead of three per parameter: at LeNet batch 1, where a NumPy call
costs more than the arithmetic of a bias, the update takes half the time (measured: 41
against 83 µs).

Nothing depends on the views staying in place: a parameter or gradient replaced by another
array (an edit, a test's broken layer) only sends the optimiser down its per-parameter path.

The per-entry work runs in ``map`` rather than Python loops: in Python loops it was ~1,000 of
the ~5,800 bytecodes a LeNet step ran, and in a real step each costs two to three times its
cost in a loop of its own (the caches are cold).
"""
from __future__ import annotations

import sys
from operator import attrgetter, getitem, is_, setitem

import numpy as np

# Buffers a ParamBuffer keeps for reuse: a step needs three (weights, gradients, new
# weights), five while the app holds the last step's record (its weights before, its
# gradients, and the current weights are its weights after) …
POOL_SIZE = 5
POOL_MAX_BYTES = 2**24     # … when each is at most this large (16 MiB)

_params_of, _grads_of = attrgetter("params"), attrgetter("grads")


def _ref_counts(entry) -> tuple[int, int, int]:
    """Reference counts of a pool entry (flat array, list of its views): the flat array's
    beyond its views' bases, the list's, and the views' summed."""
    flat, views = entry
    return (sys.getrefcount(flat) - len(views), sys.getrefcount(views),
            sum(map(sys.getrefcount, views)))


def _free_counts() -> tuple[int, int, int]:
    """``_ref_counts`` of an entry no one else holds (per view for the last), measured once
    through the same code: how many of the counted references are the call's own differs
    between Python versions (3.14 borrows some), so it is not written down here."""
    flat = np.empty(2)
    entry = (flat, [flat[:1], flat[1:]])
    del flat
    flat_refs, list_refs, view_refs = _ref_counts(entry)
    return flat_refs, list_refs, view_refs // 2


_FREE = _free_counts()


class ParamBuffer:
    """The parameters of ``layers``, in stack order, each key in its layer's order."""

    def __init__(self, layers, dtype):
        self.dtype = np.dtype(dtype)
        self.entries = []                 # (layer, key, slice of the buffer, shape)
        self._by_layer = []               # (layer, its keys, its first and last entry + 1)
        start = 0
        for layer in layers:
            first = len(self.entries)
            for key, p in layer.params.items():
                self.entries.append((layer, key, slice(start, start + p.size), p.shape))
                start += p.size
            if len(self.entries) > first:
                self._by_layer.append((layer, list(layer.params), first, len(self.entries)))
        self.size = start
        self._layers = [e[0] for e in self.entries]     # entry by entry, for map()
        self._keys = [e[1] for e in self.entries]
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
        count is what this object alone accounts for, ``_FREE``, can be reached by no one
        else.)
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
        flat_refs, list_refs, view_refs = _ref_counts(entry)
        return (flat_refs == _FREE[0] and list_refs == _FREE[1]
                and view_refs == _FREE[2] * len(entry[1]))

    def adopt(self) -> None:
        """Copy the layers' current parameters into a buffer of their own and make them its
        views."""
        flat, views = self.fresh()
        for (layer, key, _, _), v in zip(self.entries, views):
            np.copyto(v, layer.params[key])
        self.install(flat, views)

    def install(self, flat, views) -> None:
        """Make the layers' parameters the views of ``flat`` (new weights after an update)."""
        list(map(setitem, map(_params_of, self._layers), self._keys, views))
        self.params, self.param_views = flat, views

    def hand_out_grads(self) -> None:
        """A gradient buffer no one else holds for the backward pass that starts now."""
        flat, views = self.fresh()
        for layer, keys, first, stop in self._by_layer:
            layer.grad_slots = dict(zip(keys, views[first:stop]))
        self.grads, self.grad_views = flat, views

    def current(self):
        """(parameter buffer, gradient buffer) when every layer's parameters and gradients are
        still their views, else None."""
        if self.grads is None:
            return None
        layers, keys = self._layers, self._keys
        if (all(map(is_, map(getitem, map(_params_of, layers), keys), self.param_views))
                and all(map(is_, map(getitem, map(_grads_of, layers), keys), self.grad_views))):
            return self.params, self.grads
        return None
