"""The one thing pyproject.toml cannot say: gpugrad's optional C extension (the backward engine's
loop, ``gpugrad/_engine.c``). Optional: where it cannot be compiled, the install goes on and gpugrad
runs the same loop in Python."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("gpugrad._engine", ["gpugrad/_engine.c"], optional=True)])
