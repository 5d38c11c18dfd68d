import numpy as np
import pytest

import gpugrad


def _cuda_skip_reason():
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "no CUDA device is visible"
    except Exception as error:  # no driver
        return f"no usable CUDA device ({error})"
    return None


CUDA_SKIP = _cuda_skip_reason()


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Each test that takes ``device`` runs on the CPU and, where one is usable, on the GPU."""
    if request.param == "cuda" and CUDA_SKIP:
        pytest.skip(CUDA_SKIP)
    gpugrad.manual_seed(0)
    return request.param


@pytest.fixture
def cuda():
    if CUDA_SKIP:
        pytest.skip(CUDA_SKIP)
    return "cuda"


def T(data, device="cpu", dtype=np.float64, requires_grad=True):
    return gpugrad.tensor(np.asarray(data, dtype=dtype), device=device, requires_grad=requires_grad)
