"""Undoable network edits: one QUndoCommand per Session.edit operation.

A command is applied once with ``apply()`` *before* it is pushed (so a refused edit raises the
core's ValueError and nothing reaches the stack); the stack's first ``redo()`` is then skipped.
Undo re-applies the inverse edit with the *same* Layer objects, so a removed or replaced layer
comes back as itself.

Weights: the core rebuilds (fresh random weights) every layer whose input shape changed or that
was not in the stack just before the edit. After every undo/redo the command puts back the
weights each rebuilt layer had on the side of the edit being restored (before the edit for
undo, after the first application for redo); layers the core kept are left alone, so training
done since the edit is not lost. When weights were put back, an extra "architecture" event is
emitted so views redraw them.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QUndoCommand

from bpviz.core.layers.base import shape_text

# notify(error_message_or_None, layer_index_to_select_or_None)
Notify = Callable[[str | None, int | None], None]


def _weights(net) -> list[tuple[object, dict]]:
    """(layer object, copy of its params) for every layer; keeps the objects alive."""
    return [(layer, {k: v.copy() for k, v in layer.params.items()}) for layer in net.layers]


class EditCommand(QUndoCommand):
    """Base: runs ``_do`` / ``_undo`` through the session and restores rebuilt weights.

    ``EditCommand.active`` is > 0 while any command is changing the network, so views that
    refresh on the session's "architecture" event can tell our edits from outside changes."""

    active = 0

    def __init__(self, session, text: str, notify: Notify | None = None):
        super().__init__(text)
        self.session = session
        self.notify = notify
        self._skip_redo = False
        self._before: list = []
        self._after: list = []

    # subclasses: the edit and its inverse, and the layer to select afterwards
    def _do(self) -> None:
        raise NotImplementedError

    def _undo(self) -> None:
        raise NotImplementedError

    select_after_do: int | None = None
    select_after_undo: int | None = None

    def apply(self) -> None:
        """First application (before push); raises ValueError and changes nothing if refused."""
        EditCommand.active += 1
        try:
            self._before = _weights(self.session.net)
            self._do()
            if self._first_applied():
                self.session.events.emit("architecture", self.session.net.config(),
                                         weights_restored=True)
            self._after = _weights(self.session.net)
        finally:
            EditCommand.active -= 1
        self._skip_redo = True

    def _first_applied(self) -> bool:
        """Hook after the first successful application; True if it changed weights."""
        return False

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self._run(self._do, self._after, self.select_after_do)

    def undo(self) -> None:
        self._run(self._undo, self._before, self.select_after_undo)

    def _run(self, edit, saved, select) -> None:
        net = self.session.net
        held = {id(layer): (layer, layer.params) for layer in net.layers}
        EditCommand.active += 1
        try:
            edit()
            if self._restore(saved, held):
                self.session.events.emit("architecture", self.session.net.config(),
                                         weights_restored=True)
        except ValueError as exc:    # the network changed under the stack (should not happen)
            self.setObsolete(True)
            if self.notify:
                self.notify(f"cannot {'redo' if edit == self._do else 'undo'} "
                            f"“{self.text()}”: {exc}", None)
            return
        finally:
            EditCommand.active -= 1
        if self.notify:
            self.notify(None, select)

    def _restore(self, saved, held) -> bool:
        """Put back saved weights of layers the core rebuilt during the last edit."""
        net = self.session.net
        by_id = {id(layer): params for layer, params in saved}
        params = net.get_params()
        changed = False
        for i, layer in enumerate(net.layers):
            old = by_id.get(id(layer))
            if old is None or held.get(id(layer), (None, None))[1] is layer.params:
                continue                      # unknown layer, or the core kept its weights
            if {k: v.shape for k, v in old.items()} == {k: v.shape for k, v in
                                                         layer.params.items()}:
                params[i] = {k: v.copy() for k, v in old.items()}
                changed = True
        if changed:
            net.set_params(params)
        return changed


class InsertLayerCommand(EditCommand):
    def __init__(self, session, index: int, layer, notify: Notify | None = None):
        super().__init__(session, f"insert {layer.kind} at {index}", notify)
        self.index, self.layer = index, layer
        self.select_after_do = index
        self.select_after_undo = max(index - 1, 0)

    def _do(self):
        self.session.edit("insert_layer", self.index, self.layer)

    def _undo(self):
        self.session.edit("remove_layer", self.index)


class RemoveLayerCommand(EditCommand):
    def __init__(self, session, index: int, notify: Notify | None = None):
        layer = session.net.layers[index]
        super().__init__(session, f"remove layer {index} {layer.kind}", notify)
        self.index, self.layer = index, layer
        self.select_after_do = min(index, len(session.net.layers) - 2)
        self.select_after_undo = index

    def _do(self):
        self.layer = self.session.edit("remove_layer", self.index)

    def _undo(self):
        self.session.edit("insert_layer", self.index, self.layer)


class ReplaceLayerCommand(EditCommand):
    """Replace layer ``index`` by ``new_layer``; with ``keep_weights`` the new layer starts
    from the old one's weights when their shapes are unchanged (an activation, stride or
    padding edit), else from the core's fresh initialisation."""

    def __init__(self, session, index: int, new_layer, text: str = "",
                 notify: Notify | None = None, keep_weights: bool = True):
        old = session.net.layers[index]
        super().__init__(session, text or f"edit layer {index} {old.kind}", notify)
        self.index, self.old, self.new = index, old, new_layer
        self.keep_weights = keep_weights
        self.select_after_do = self.select_after_undo = index

    def _first_applied(self) -> bool:
        net, old = self.session.net, self.old
        shapes = {k: v.shape for k, v in old.params.items()}
        if not self.keep_weights or not shapes or \
                shapes != {k: v.shape for k, v in self.new.params.items()}:
            return False
        params = net.get_params()
        params[self.index] = {k: v.copy() for k, v in old.params.items()}
        net.set_params(params)
        return True

    def _do(self):
        self.old = self.session.edit("replace_layer", self.index, self.new)

    def _undo(self):
        self.session.edit("replace_layer", self.index, self.old)


class MoveLayerCommand(EditCommand):
    def __init__(self, session, index: int, new_index: int, notify: Notify | None = None):
        kind = session.net.layers[index].kind
        super().__init__(session, f"move {kind} {index} → {new_index}", notify)
        self.index, self.new_index = index, new_index
        self.select_after_do, self.select_after_undo = new_index, index

    def _do(self):
        self.session.edit("move_layer", self.index, self.new_index)

    def _undo(self):
        self.session.edit("move_layer", self.new_index, self.index)


class SetLossCommand(EditCommand):
    def __init__(self, session, loss: str, notify: Notify | None = None):
        self.old, self.new = session.net.loss, loss
        super().__init__(session, f"loss {self.old} → {loss}", notify)

    def _do(self):
        self.session.edit("set_loss", self.new)

    def _undo(self):
        self.session.edit("set_loss", self.old)


class SetInputShapeCommand(EditCommand):
    def __init__(self, session, shape, notify: Notify | None = None):
        self.old, self.new = tuple(session.net.input_shape), tuple(shape)
        super().__init__(session, f"input {shape_text(self.old)} → {shape_text(self.new)}",
                         notify)

    def _do(self):
        self.session.edit("set_input_shape", self.new)

    def _undo(self):
        self.session.edit("set_input_shape", self.old)
