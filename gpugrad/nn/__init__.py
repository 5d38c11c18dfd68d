"""Neural-network building blocks: ``Module``, ``Parameter``, layers, activations and losses."""
from . import init
from .module import Module, Parameter, Sequential
from .layers import (ELU, MLP, CrossEntropyLoss, LeakyReLU, Linear, Maxout, MSELoss, ReLU, Sigmoid, Softmax,
                     SVMLoss, Tanh)

__all__ = ["Module", "Parameter", "Sequential", "Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softmax",
           "Maxout", "MLP", "MSELoss", "CrossEntropyLoss", "SVMLoss", "init"]
