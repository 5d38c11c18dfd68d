"""The one thing pyproject.toml cannot say: gpugrad's optional C extension (``gpugrad/_engine.c``:
recording an op, the backward loop, the optimizers' BLAS calls). Optional: where it cannot be
compiled, the install goes on and gpugrad runs the Python versions of the same code."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("gpugrad._engine", ["gpugrad/_engine.c"], optional=True)])
