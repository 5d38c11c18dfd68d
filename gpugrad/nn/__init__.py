"""Neural-network building blocks: ``Module``, ``Parameter``, layers, activations and losses."""
from . import functional, init, parallel, utils
from .module import HookHandle, Module, ModuleDict, ModuleList, Parameter, ParameterList, Sequential
from .layers import (ELU, GELU, MLP, BatchNorm1d, Dropout, Embedding, Flatten, Identity, LayerNorm, LeakyReLU, Linear,
                     LogSoftmax, Maxout, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh, Unflatten)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
                   SVMLoss)

__all__ = ["Module", "Parameter", "ParameterList", "HookHandle", "Sequential", "ModuleList", "ModuleDict", "Linear",
           "Identity", "Flatten", "Unflatten", "Sigmoid",
           "Tanh", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus", "Softmax", "LogSoftmax", "Maxout", "MLP",
           "Dropout", "LayerNorm", "BatchNorm1d", "Embedding", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss",
           "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss", "SVMLoss", "functional", "init", "utils",
           "parallel"]
