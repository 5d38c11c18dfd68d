#!/usr/bin/env python
"""The CPU MLP's GEMM floor: the eight products of one training step of the MLP 784-1024-1024-10 at
batch 256 (forward x @ W.T, weight gradients g.T @ h, input gradients g @ W, in nn.Linear's layout),
each through numpy (its OpenBLAS: what gpugrad and hand-written numpy run) and through PyTorch (its
own BLAS: MKL in the x86 wheels), on the same memory, the libraries alternating, medians of 7 rounds.
The sum is the least a numpy-based step can take; compare it with PyTorch's whole step
(``python -m gpugrad bench --device cpu --model mlp``).

    python bench/gemm_floor.py
"""
import statistics
import time
import timeit

import numpy as np
import torch

rng = np.random.default_rng(0)
batch, sizes = 256, [784, 1024, 1024, 10]
W = [rng.standard_normal((o, i)).astype(np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
H = [rng.standard_normal((batch, n)).astype(np.float32) for n in sizes]  # a layer's input, then its output gradient
products = []
for layer, w in enumerate(W):
    h, g = H[layer], H[layer + 1]
    products.append((f"forward   {h.shape} @ W.T{w.T.shape}", h, w.T))
    products.append((f"weight    g.T{g.T.shape} @ {h.shape}", g.T, h))
    if layer:  # no gradient for the data
        products.append((f"input     {g.shape} @ W{w.shape}", g, w))
tensors = [(torch.from_numpy(a), torch.from_numpy(b)) for _, a, b in products]  # the same memory, views included
times = {}
for _ in range(7):
    for lib in ("numpy", "torch"):
        time.sleep(0.25)  # NOTE: the other library's threads spin on after its last call; alternating without
        # a pause made the pools contend (PyTorch's GEMMs at half speed)
        for (name, a, b), (ta, tb) in zip(products, tensors):
            call = (lambda: a @ b) if lib == "numpy" else (lambda: ta @ tb)
            times.setdefault((name, lib), []).append(timeit.timeit(call, number=20) / 20)
total = {"numpy": 0.0, "torch": 0.0}
print(f"{'product':44s} {'numpy us':>9s} {'torch us':>9s} {'numpy/torch':>11s}")
for name, a, b in products:
    n, t = statistics.median(times[(name, "numpy")]), statistics.median(times[(name, "torch")])
    total["numpy"] += n
    total["torch"] += t
    print(f"{name:44s} {n * 1e6:9.0f} {t * 1e6:9.0f} {n / t:11.2f}")
flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for _, a, b in products)
print(f"{'all eight (' + format(flops / 1e9, '.2f') + ' GFLOP)':44s} {total['numpy'] * 1e6:9.0f} "
      f"{total['torch'] * 1e6:9.0f} {total['numpy'] / total['torch']:11.2f}")
print(f"numpy: {flops / total['numpy'] / 1e9:.0f} GFLOP/s, torch: {flops / total['torch'] / 1e9:.0f} GFLOP/s "
      f"(torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__})")
