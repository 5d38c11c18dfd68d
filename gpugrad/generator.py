"""``gpugrad.Generator``: PyTorch's ``torch.Generator`` for the draws made on the host (``DataLoader``'s shuffles,
``random_split``): ``Generator().manual_seed(0)``. Without one (and without ``seed=``) those draw from gpugrad's
own CPU generator, which ``gpugrad.manual_seed`` seeds."""
from __future__ import annotations

import numpy as np

from .backend import get_backend


class Generator:
    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: gpugrad's generators for host-side draws live on the CPU, got {device!r}")
        self.device = "cpu"
        self.manual_seed(get_backend("cpu").draw_seed())

    def manual_seed(self, seed: int) -> "Generator":
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Generator.manual_seed: expected an integer seed, got {seed!r}")
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        """Reseed from the operating system's entropy; returns the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))
        return self._seed

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state) -> "Generator":
        self.rng.bit_generator.state = state
        return self


def host_rng(seed=None, generator=None, op="random draw"):
    """The numpy generator a host-side draw uses: ``generator``'s, a new one from ``seed``, else one seeded from
    gpugrad's CPU generator (``gpugrad.manual_seed`` makes it repeat)."""
    if seed is not None and generator is not None:
        raise ValueError(f"{op}: give seed= or generator=, not both")
    if generator is not None:
        if not isinstance(generator, Generator):
            raise TypeError(f"{op}: generator must be a gpugrad.Generator, got {type(generator).__name__}")
        return generator.rng
    return np.random.default_rng(get_backend("cpu").draw_seed() if seed is None else seed)
