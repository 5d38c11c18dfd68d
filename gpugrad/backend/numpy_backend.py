"""The CPU backend: numpy, with the generic formulas of ``generic.Backend``."""
from __future__ import annotations

import numpy as np

from .generic import Backend


class NumpyBackend(Backend):
    kind = "cpu"
    index = 0
    xp = np
