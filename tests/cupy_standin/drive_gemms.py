"""Drive the GPU device object's matmul through the CuPy stand-in, whose cuBLAS computes what cuBLAS's
documentation says for the arguments it gets (run with this folder first on PYTHONPATH). For each case
print as JSON: the shapes, the largest relative difference from numpy's matmul in float64, the cuBLAS
calls made and their compute types."""
import json

import numpy as np

import cupy
from cupy.cuda import cublas
import gpugrad
from gpugrad.backend import get_backend


def layouts(rng, shape, dtype):
    """The same values in C order, as a transposed view, with a stride between elements, and broadcast."""
    value = rng.standard_normal(shape).astype(dtype)
    yield "C", value, cupy.asarray(value)
    if len(shape) >= 2:
        yield "transposed view", value, cupy.ascontiguousarray(np.swapaxes(value, -1, -2)).swapaxes(-1, -2)
        wide = cupy.asarray(np.repeat(value, 2, axis=-1))
        yield "every other column", value, wide[..., ::2]


def main():
    gpu = get_backend("cuda")
    rng = np.random.default_rng(0)
    cases = [((4, 3), (3, 5)), ((3,), (3, 5)), ((4, 3), (3,)), ((3,), (3,)), ((2, 4, 3), (3, 5)), ((4, 3), (2, 3, 5)),
             ((2, 4, 3), (2, 3, 5)), ((2, 1, 4, 3), (1, 3, 3, 5)), ((1, 4, 3), (2, 3, 5)), ((2, 3, 4, 3), (3, 5)),
             ((4, 1), (1, 5)), ((1, 3), (3, 1)), ((4, 0), (0, 5)), ((0, 3), (3, 5)), ((2, 0, 3), (3, 5))]
    out = []
    for dtype in (np.float32, np.float64, np.float16) + ((gpugrad.bfloat16,) if gpugrad.bfloat16 is not None else ()):
        for shape_a, shape_b in cases:
            for name_a, a, da in layouts(rng, shape_a, dtype):
                for name_b, b, db in layouts(rng, shape_b, dtype):
                    cublas._GEMMS.clear()
                    got = gpu.matmul(da, db).get().astype(np.float64)
                    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
                    scale = max(np.abs(want).max(initial=0.0), 1.0)
                    out.append({"dtype": np.dtype(dtype).name, "a": [list(shape_a), name_a], "b": [list(shape_b), name_b],
                                "shape": [list(got.shape), list(want.shape)],
                                "error": float(np.abs(got - want).max(initial=0.0) / scale) if got.shape == want.shape else None,
                                "gemms": [list(g) for g in cublas._GEMMS]})
    a = cupy.asarray(rng.standard_normal((2, 4, 3)).astype(np.float32))
    precision = {}
    for setting in ("highest", "high"):
        gpugrad.set_matmul_precision(setting)
        cublas._GEMMS.clear()
        gpu.matmul(a, a.swapaxes(-1, -2))
        gpu.matmul(a[0], a[0].T)
        precision[setting] = [list(g) for g in cublas._GEMMS]
    gpugrad.set_matmul_precision("highest")
    print(json.dumps({"cases": out, "precision": precision,
                      "compute": {"32F": cublas.CUBLAS_COMPUTE_32F, "TF32": cublas.CUBLAS_COMPUTE_32F_FAST_TF32}}))


if __name__ == "__main__":
    main()
