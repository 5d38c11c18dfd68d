"""The engine's one seam: where features plug into it (``features``), and the checks the library asks of a
captured step. Nothing here imports the rest of gpugrad; the engine, the devices and the ops import it.

Each slot of ``features`` is empty unless its feature is in use, so the engine pays one attribute read. A
feature plugs in with ``features.plug(slot, value)`` and out with ``features.plug(slot, None)``:

- ``capture``: the recorder of the step ``gpugrad.compile`` is capturing, which keeps the protocol in
  ``capture/protocol.py`` (``Recorder``): the engine hands it every op's input arrays and each leaf given a
  gradient, optimizers their step, value checks their check.
- ``autocast``: ``amp.cast_inputs(function, inputs)`` while an autocast region is open in any thread; the
  engine calls it for Functions whose class sets ``amp``.
- ``gradient_hooks``: id(leaf) -> callback(leaf), run after a gradient was added into the leaf;
  ``backward_end_hooks``: callbacks run when a backward ends (data parallel, ``nn.parallel``).
- ``tensor_hooks``: id(tensor) -> [hook(grad) -> grad or None, ...] (``register_hook``, ``retain_grad``).
"""
from __future__ import annotations


class CaptureError(RuntimeError):
    """Something in a step given to ``gpugrad.compile`` cannot be captured and replayed."""


class HostReadError(CaptureError):
    """A captured step read a tensor's values on the host (``.item()``, ``.numpy()``, ``bool()``, ...)."""


class Features:
    """The slots above; one instance, ``features``."""
    __slots__ = ("capture", "autocast", "gradient_hooks", "backward_end_hooks", "tensor_hooks")

    def __init__(self):
        self.capture = None
        self.autocast = None
        self.gradient_hooks: dict = {}
        self.backward_end_hooks: list = []
        self.tensor_hooks: dict = {}

    def plug(self, slot: str, value) -> None:
        """Put ``value`` into ``slot`` ("capture" or "autocast"); ``None`` empties it. A capture inside another is
        refused: the slot holds one recorder."""
        if slot not in ("capture", "autocast"):
            raise ValueError(f"seam: no slot {slot!r} (capture, autocast)")
        if slot == "capture" and value is not None and self.capture is not None:
            raise CaptureError("gpugrad.compile: a step is already being captured (one capture at a time per process)")
        setattr(self, slot, value)


features = Features()


def check_values(check) -> None:
    """Run ``check()``, an input check that reads values (label or index ranges); inside a captured
    step, it runs at every replay instead, where the device allows a host read (the CPU)."""
    check() if features.capture is None else features.capture.guard(check)


def replayed_call(fn, owner, in_graph=None) -> bool:
    """Inside a captured step: run ``fn`` now and again at every replay (``owner``, an optimizer or the
    like, holds what it changes), and return True; outside one, return False (the caller runs it).
    ``in_graph()``, asked by a CUDA graph capture: a refresh to run before each launch if ``fn``'s kernels
    can join the graph, else None (``fn`` runs on the host between two graphs)."""
    if not capturing():
        return False
    features.capture.host_call(fn, owner, in_graph)
    return True


def capturing() -> bool:
    """A step is being captured, and not paused for a host call."""
    capture = features.capture
    return capture is not None and not capture.paused


def recorded(array):
    """``array`` as an in-place change must see it: inside a captured step, the capture's view of it."""
    capture = features.capture
    return array if capture is None else capture.arrays(array)[0]


def refuse_in_capture(what: str, fix: str) -> None:
    """Raise ``CaptureError`` if a step is being captured: ``what`` would run at the capture only, never at the
    replays (a scheduler's step, a change of train/eval mode, a new hook or parameter group, a reseed)."""
    if features.capture is not None:
        raise CaptureError(f"gpugrad.compile: {what} inside a captured step would run once, at the capture, and "
                           f"never at its replays; {fix}")


def check_host_read(what: str) -> None:
    """Raise ``HostReadError`` if a step is being captured: ``what`` names the read."""
    if capturing():
        raise HostReadError(
            f"gpugrad.compile: {what} reads a tensor's values on the host inside the captured step; a replay "
            "would reuse the value read at capture time. Read it after the step (the step's returned tensors "
            "hold their values until the next call: loss.item()), or run the step eagerly "
            "(gpugrad.compile(fn, enabled=False))")
