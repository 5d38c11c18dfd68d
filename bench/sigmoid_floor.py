#!/usr/bin/env python
"""Why the sigmoid MLP trails PyTorch on the CPU: the sigmoid's forward and backward on one layer's
activations (256 x 1024 float32), gpugrad's formula (numpy: negative, exp, +1, 1/t; backward
(1 - y) * y * dy) against PyTorch's one-pass kernels, interleaved, best of 5 x 200 calls.

    python bench/sigmoid_floor.py
"""
import timeit

import numpy as np

from gpugrad.ops.activation import ACTIVATIONS

x = np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32)
g = np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32)
out = np.empty_like(x)
sigmoid = ACTIVATIONS["sigmoid"]
cases = {"gpugrad forward (the xp formula)": lambda: sigmoid.forward(np, x, 0.0, out=out),
         "gpugrad backward": lambda: sigmoid.backward(np, out, g, 0.0),
         "numpy exp alone": lambda: np.exp(x, out=out)}
try:
    import torch
    tx, tg, tout = torch.from_numpy(x), torch.from_numpy(g), torch.empty(256, 1024)
    cases.update({"torch.sigmoid": lambda: torch.sigmoid(tx, out=tout),
                  "torch sigmoid_backward": lambda: torch.ops.aten.sigmoid_backward(tg, tout)})
except ImportError:
    pass
best = {name: [] for name in cases}
for _ in range(5):
    for name, call in cases.items():
        best[name].append(timeit.timeit(call, number=200) / 200 * 1e6)
for name, times in best.items():
    print(f"{name:34s} {min(times):8.1f} us")
