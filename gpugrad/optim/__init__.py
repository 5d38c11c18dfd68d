"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

Each optimizer's file owns its update rule: the ``xp`` formula, in place with one reused scratch
buffer per parameter (arrays, not tensor ops: no graph is recorded), and beside it the fused CUDA
kernel that updates 8 parameters per launch on a GPU.
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer, check_hyperparameter
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "check_hyperparameter", "lr_scheduler"]
