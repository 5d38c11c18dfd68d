"""CUDA C++ sources of gpugrad's fused kernels (installed as ``gpugrad.kernels``)."""
