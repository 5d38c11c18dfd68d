CUDA_R_16F, CUDA_R_32F, CUDA_R_64F = 2, 0, 1
def getDevice(): return 0
def getDeviceCount(): return 1
def driverGetVersion(): return 13000
def runtimeGetVersion(): return 13000


def getDeviceProperties(device):  # noqa: N802 -- a few of cudaDeviceProp's fields, an H100's
    return {"name": b"cupy stand-in (numpy)", "totalGlobalMem": 80 * 2 ** 30, "major": 9, "minor": 0,
            "multiProcessorCount": 132}
CUDA_R_16BF = 14


def streamIsCapturing(stream):  # noqa: N802 -- CuPy's name (cupy_backends/cuda/api/runtime.pyx)
    from . import _streams
    found = _streams.get(stream)
    return bool(found is not None and found._capturing)
