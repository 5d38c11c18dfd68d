"""The package list by discovery: every package under gpugrad/ (a new one is never left out of the wheel),
and the CUDA sources in kernels/ installed as gpugrad.kernels. Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["gpugrad", "gpugrad.*"]) + ["gpugrad.kernels"])
