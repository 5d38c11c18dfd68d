"""Neural-network building blocks: ``Module``, ``Parameter``, layers, activations and losses."""
from . import init, utils
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .layers import (ELU, MLP, CrossEntropyLoss, Flatten, Identity, LeakyReLU, Linear, Maxout, MSELoss, ReLU, Sigmoid,
                     Softmax, SVMLoss, Tanh)

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Identity", "Flatten", "Sigmoid",
           "Tanh", "ReLU", "LeakyReLU", "ELU", "Softmax", "Maxout", "MLP", "MSELoss", "CrossEntropyLoss", "SVMLoss",
           "init", "utils"]
