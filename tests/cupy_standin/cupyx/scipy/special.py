import math as _math

import numpy as _np

import cupy as _cupy


def erf(x):
    """cupyx.scipy.special.erf is an elementwise ufunc: 0-d in, 0-d out (frompyfunc alone would give a float)."""
    return _cupy._wrap(_np.asarray(_np.frompyfunc(_math.erf, 1, 1)(_np.asarray(x)), dtype=x.dtype))
