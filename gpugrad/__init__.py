"""gpugrad: reverse-mode autodiff over numpy (CPU) and CuPy (NVIDIA GPU) arrays."""
from __future__ import annotations

import importlib

import numpy as np

from . import dtypes, functional
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backend import CudaUnavailableError, get_backend
from .generator import Generator
from .gradcheck import GradcheckError, gradcheck
from .creation import (arange, empty_like, eye, from_dlpack, from_numpy, full, full_like, manual_seed, ones,
                       ones_like, rand, rand_like, randint, randn, randn_like, tensor, zeros, zeros_like)
from .tensor import DeviceMismatchError, Tensor
from .functional import einsum
from .ops.matmul import set_matmul_precision
from .serialization import CheckpointError, load, save
from .capture import compile
from .amp import GradScaler, autocast
from . import toplevel
from .toplevel import *  # noqa: F401,F403 (PyTorch's top-level names: gpugrad.exp, gpugrad.cat, gpugrad.long, ...)
from .toplevel import abs, all, any, bool, float, int, max, min, round, sum  # noqa: F401,A004 (not in __all__: builtins' names)

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "zeros", "ones", "full", "eye", "arange", "randn", "rand", "manual_seed",
           "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "from_numpy", "from_dlpack",
           "einsum", "randint", "Generator",
           "no_grad", "enable_grad", "is_grad_enabled", "Function", "functional", "gradcheck",
           "GradcheckError", "CudaUnavailableError", "DeviceMismatchError", "get_backend",
           "set_matmul_precision", "save", "load", "CheckpointError", "compile", "autocast", "GradScaler",
           "float16", "float32", "float64", "bfloat16", "cuda", *toplevel.__all__]

float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


def __getattr__(name):
    # gpugrad.cuda, nn, optim, data and utils load on first use: `import gpugrad` stays light.
    if name in ("cuda", "nn", "optim", "viz", "amp", "utils"):
        return importlib.import_module(f".{name}", __name__)
    if name == "bfloat16":  # ml_dtypes' type: an ImportError naming the extra when it is missing
        return dtypes.bfloat16()
    raise AttributeError(f"module 'gpugrad' has no attribute {name!r}")
