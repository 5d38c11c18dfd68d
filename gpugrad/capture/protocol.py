"""The capture protocol: what the engine, the optimizers and the devices ask of the recorder of a step being
captured (``seam.features.capture``). ``capture.Capture`` (via its per-signature ``_Capture``) keeps it; the
CPU tape (``cpu.py``) and the CUDA graph tape (``cuda.py``) do the recording."""
from __future__ import annotations

from typing import Callable, Protocol


class Recorder(Protocol):
    paused: bool  # a host call (an optimizer's step between two graphs) is running: nothing is recorded

    def arrays(self, *arrays) -> tuple:
        """An op's input arrays as the capture records them (the CPU's traced views; a GPU's arrays as they are)."""

    def is_view(self, array) -> bool:
        """Whether ``array`` shares memory with another (the engine copies such a gradient before keeping it)."""

    def read(self, tensors) -> None:
        """An op read ``tensors``: the capture guards on the leaves among them (their arrays, requires_grad)."""

    def module(self, module) -> None:
        """``module`` was called: the capture guards on its mode (train / eval) and its parameters and buffers."""

    def leaf(self, tensor) -> None:
        """``tensor`` (a leaf) was given a gradient: the replay rebinds it."""

    def host_call(self, fn: Callable[[], None], owner, in_graph=None) -> None:
        """``fn`` runs now and at every replay (an optimizer's step, a GradScaler's); ``owner`` holds what it
        changes; ``in_graph()`` lets a CUDA graph take ``fn``'s kernels."""

    def guard(self, check: Callable[[], None]) -> None:
        """An input check that reads values (label ranges): run at every replay where the device allows."""
