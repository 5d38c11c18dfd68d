"""The device object: array module, RNG, transfers, synchronize, GEMM. No op math lives here.

``Backend`` is the CPU (numpy); ``cupy_backend.CupyBackend`` the GPU (CuPy arrays, cuBLAS, memory
statistics, and ``kernels``: the module of fused-kernel launches, which ops call where it applies).
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..seam import check_host_read
from ..dtypes import LOW_FLOATS


class Backend:
    kind = "cpu"
    index = 0
    xp = np
    array_type = np.ndarray
    kernels = None  # the fused-kernel launches (gpugrad.cuda.kernels) on a GPU; none on the CPU
    _seed = 0  # the last manual_seed(); backends made later start from it

    def __init__(self):
        self.seed(Backend._seed)

    # -- identity -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"

    def device_context(self):
        return contextlib.nullcontext()

    def recording_gemms(self):
        """The GEMM signatures run inside, which a GPU capture runs once before it begins; none on the CPU."""
        return contextlib.nullcontext(())

    # -- arrays -------------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype)

    def constant(self, value, dtype):
        """A 0-d array holding the Python number ``value``."""
        return self.xp.asarray(value, dtype=dtype)

    def to_numpy(self, array) -> np.ndarray:
        check_host_read("a host read of a tensor (.item(), .numpy(), float(), bool(), print)")
        return np.asarray(array)

    def synchronize(self) -> None:
        pass

    def unit_gradient(self, shape, dtype):
        """A cached, never-written array of ones: the implicit gradient of a scalar's backward()."""
        cache = self.__dict__.get("_units")
        if cache is None:
            cache = self._units = {}
        unit = cache.get((shape, dtype))  # the hot path: a tuple shape and an np.dtype, as arrays have them
        if unit is None:
            key = (tuple(shape), np.dtype(dtype))
            unit = cache.get(key)
        if unit is None:
            unit = cache[key] = type(self).xp.ones(key[0], dtype=key[1])  # the device's own module, never a capture's
            if type(self).xp is np:
                unit.flags.writeable = False
        return unit

    matmul_precision = "highest"  # shared by every backend, read by the GPU's GEMM; see gpugrad.set_matmul_precision

    def scatter_add(self, target, index, values) -> None:
        self.xp.add.at(target, index, values)

    def matmul(self, a, b):
        """a @ b; float16 and bfloat16 are multiplied and accumulated in float32 (numpy's half matmul is neither
        fast nor exact, and bfloat16 has none)."""
        if a.dtype in LOW_FLOATS and b.dtype == a.dtype:  # float16, bfloat16
            return self.xp.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
        return self.xp.matmul(a, b)

    # -- random numbers -----------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def randn(self, shape, dtype):
        return self.rng.standard_normal(shape, dtype=np.float32 if dtype in LOW_FLOATS else dtype).astype(dtype, copy=False)

    def rand(self, shape, dtype):
        return self.rng.random(shape, dtype=np.float32 if dtype in LOW_FLOATS else dtype).astype(dtype, copy=False)

    def permutation(self, n: int):
        return self.rng.permutation(n)

    def draw_seed(self) -> int:
        """A seed for a host-side generator, drawn from this device's (so that ``manual_seed`` makes it repeat)."""
        return int(self.rng.integers(2 ** 63 - 1))
