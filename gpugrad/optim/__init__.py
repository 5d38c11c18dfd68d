"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, RMSprop and Adagrad.

Each optimizer's file owns its update rule: the ``xp`` formula, in place (arrays, not tensor ops: no
graph is recorded), and beside it, for SGD and Adam, the fused CUDA kernel that updates 8 parameters
per launch on a GPU (RMSprop and Adagrad run their formula there).
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer, check_hyperparameter
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "check_hyperparameter", "lr_scheduler"]
