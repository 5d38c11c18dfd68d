"""Neural-network building blocks: ``Module``, ``Parameter``, layers, activations and losses."""
from . import init, parallel, utils
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .layers import (ELU, GELU, MLP, BatchNorm1d, CrossEntropyLoss, Dropout, Embedding, Flatten, Identity, LayerNorm,
                     LeakyReLU, Linear, Maxout, MSELoss, ReLU, Sigmoid, SiLU, Softmax, Softplus, SVMLoss, Tanh)

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Identity", "Flatten", "Sigmoid",
           "Tanh", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus", "Softmax", "Maxout", "MLP", "Dropout",
           "LayerNorm", "BatchNorm1d", "Embedding", "MSELoss", "CrossEntropyLoss", "SVMLoss", "init", "utils",
           "parallel"]
