"""The dtype vocabulary, defined once: floating types, the default float, and PyTorch's promotion.

Promotion follows ``torch.result_type``:

- categories rank bool < integer < floating; within a category numpy's ``promote_types`` decides
  (float16 + float32 -> float32, int8 + uint8 -> int16); across categories the higher category's
  type wins (int64 + float16 -> float16, not numpy's float64);
- operands come in three priorities: tensors with dimensions, 0-d tensors, Python numbers. A
  lower-priority operand changes the result only when its category is higher: float32 (3,) +
  float64 0-d -> float32; int64 (3,) + 0.5 -> float32 (Python floats count as the default
  float type, float32; Python ints as int64; bools as bool);
- integer inputs to real-valued math (``/``, exp, log, sqrt, sigmoid, tanh, softmax, ...) are
  computed in the default float type: ``int / int`` and ``int.exp()`` are float32.
"""
from __future__ import annotations

import numbers
import sys

import numpy as np

# NOTE: bfloat16 is ml_dtypes' type (CuPy 14 uses it too), an optional dependency loaded only when bfloat16 is
# asked for (``import gpugrad`` stays light): no bfloat16 array can exist before ml_dtypes is imported, and
# ``known_bfloat16()`` adds it to these lists (shared, so every module's ``dtype in LOW_FLOATS`` sees it) the
# first time one reaches gpugrad, whoever imported ml_dtypes.
LOW_FLOATS = [np.dtype(np.float16)]
FLOAT_DTYPES = [np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)]
DEFAULT_FLOAT = np.dtype(np.float32)
_BFLOAT16 = []  # [the dtype] once registered


def known_bfloat16():
    """ml_dtypes' bfloat16 if ml_dtypes is loaded (registered in LOW_FLOATS and FLOAT_DTYPES then), else None."""
    if _BFLOAT16:
        return _BFLOAT16[0]
    module = sys.modules.get("ml_dtypes")
    if module is None:
        return None
    dtype = np.dtype(module.bfloat16)
    _BFLOAT16.append(dtype)
    LOW_FLOATS.append(dtype)
    FLOAT_DTYPES.insert(1, dtype)
    return dtype


def bfloat16() -> np.dtype:
    """The bfloat16 dtype (loading ml_dtypes), or an ImportError naming what to install."""
    try:
        import ml_dtypes  # noqa: F401 -- registers the dtype with numpy
    except ImportError:
        raise ImportError("bfloat16 needs the ml_dtypes package: pip install 'gpugrad[bf16]' (the CUDA extras "
                          "bring it too)") from None
    return known_bfloat16()


def is_float(dtype) -> bool:
    """A floating-point dtype: float16, bfloat16 (numpy's kind "V"), float32, float64."""
    return dtype.kind == "f" or (dtype.kind == "V" and dtype == known_bfloat16())


def accumulator(dtype):
    """The dtype to compute and accumulate ``dtype`` in: float32 for float16 and bfloat16 (as the kernels
    do), else None (numpy's and CuPy's default: the array's own)."""
    return DEFAULT_FLOAT if dtype in LOW_FLOATS else None


def working(array):
    """``array`` as it is computed: float16 and bfloat16 as a float32 copy, everything else unchanged."""
    return array.astype(DEFAULT_FLOAT) if array is not None and array.dtype in LOW_FLOATS else array


def _category(dtype) -> int:
    kind = dtype.kind
    return 0 if kind == "b" else 2 if is_float(dtype) else 1 if kind in "iu" else 3


def promote_types(a, b) -> np.dtype:
    """PyTorch's ``promote_types``: the higher category wins; within one, numpy's rule."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    if ca == 2 and a in LOW_FLOATS and b in LOW_FLOATS:
        return DEFAULT_FLOAT  # float16 + bfloat16, as PyTorch
    result = np.promote_types(a, b)
    return np.dtype(np.int64) if ca == 1 and result.kind == "f" else result  # uint64 + int64


def _python_number_dtype(value) -> np.dtype:
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    return DEFAULT_FLOAT


def _combine(higher, lower):
    """torch's combine_categories: ``lower`` (a lower-priority group) counts only if its category is higher."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if is_float(higher):
        return higher
    if higher.kind == "b" or is_float(lower):
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op on ``operands`` (tensors, numpy scalars or Python numbers)."""
    groups = [None, None, None]  # dimensioned, 0-d, Python numbers
    for value in operands:
        if isinstance(value, numbers.Number) and not isinstance(value, np.generic):
            group, dtype = 2, _python_number_dtype(value)
        else:
            data = value if isinstance(value, np.generic) else value.data
            group, dtype = (1 if data.ndim == 0 else 0), np.dtype(data.dtype)
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    return _combine(groups[0], _combine(groups[1], groups[2]))


def check_numeric(array, where: str):
    """Refuse arrays of strings, objects and other non-numbers with a one-line error."""
    if array.dtype.kind not in "biuf" and not is_float(array.dtype):
        raise TypeError(f"{where}: cannot make a tensor of dtype {array.dtype} (from {type(array).__name__}); "
                        "expected numbers or bools")
    return array
