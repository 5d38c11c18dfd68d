"""The layers and ops added for PyTorch users, forward and backward, against PyTorch's."""
from __future__ import annotations

import statistics

import numpy as np

import gpugrad
import gpugrad.functional as F

from .common import gpu_time, section


@section("layers and ops against PyTorch")
def layers_against_torch(rows=8192, cols=1024):
    """The layers added for PyTorch users, on the GPU (fused kernels for layer norm and dropout, the xp
    formula for the rest): forward + backward time against
    PyTorch eager (CUDA events around 10 calls) and the largest difference from PyTorch's values."""
    import cupy
    import torch
    x_np = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    w_np = np.random.default_rng(1).standard_normal(cols).astype(np.float32)
    cases = {
        "gelu": (lambda x: F.gelu(x), lambda t: torch.nn.functional.gelu(t)),
        "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
        "silu": (F.silu, torch.nn.functional.silu),
        "softplus": (F.softplus, torch.nn.functional.softplus),
        "layer_norm": (lambda x: F.layer_norm(x, cols, w, b), lambda t: torch.nn.functional.layer_norm(t, (cols,), tw, tb)),
        "batch_norm": (lambda x: F.batch_norm(x, None, None, w, b, training=True),
                       lambda t: torch.nn.functional.batch_norm(t, None, None, tw, tb, training=True)),
        "softmax": (lambda x: F.softmax(x, dim=1), lambda t: torch.softmax(t, dim=1)),
        "cumsum": (lambda x: x.cumsum(1), lambda t: t.cumsum(1)),
        "norm": (lambda x: x.norm(dim=1), lambda t: t.norm(dim=1)),
        "dropout (masks differ)": (lambda x: F.dropout(x, 0.1), lambda t: torch.nn.functional.dropout(t, 0.1)),
        # one fused pass against the activation and the dropout apart (gpugrad) and PyTorch's two ops
        "relu+dropout fused (masks differ)": (lambda x: F.dropout(x, 0.1, activation="relu"),
                                              lambda t: torch.nn.functional.dropout(torch.relu(t), 0.1)),
        "relu, dropout apart (masks differ)": (lambda x: F.dropout(F.relu(x), 0.1),
                                               lambda t: torch.nn.functional.dropout(torch.relu(t), 0.1)),
    }
    w, b = (gpugrad.tensor(a, device="cuda", requires_grad=True) for a in (w_np, w_np * 0.5))
    tw, tb = (torch.tensor(a, device="cuda", requires_grad=True) for a in (w_np, w_np * 0.5))
    table = {}
    for name, (ours, theirs) in cases.items():
        x = gpugrad.tensor(x_np, device="cuda", requires_grad=True)
        t = torch.tensor(x_np, device="cuda", requires_grad=True)

        def ours_step():
            x.grad = None
            ours(x).sum().backward()

        def theirs_step():
            t.grad = None
            theirs(t).sum().backward()
        ours_ms = gpu_time(ours_step)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(3):
            theirs_step()
        times = []
        for _ in range(20):
            start.record()
            for _ in range(10):
                theirs_step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 10)
        torch_ms = statistics.median(times)
        cupy.cuda.Device().synchronize()
        value_diff = float("nan") if "dropout" in name else \
            float(np.abs(ours(x).numpy() - theirs(t).detach().cpu().numpy()).max())
        table[name] = {"gpugrad_ms": ours_ms, "torch_ms": torch_ms, "gpugrad_over_torch": ours_ms / torch_ms,
                       "max_abs_diff": value_diff}
        print(f"   {name:12s} gpugrad {ours_ms:7.3f} ms  torch {torch_ms:7.3f} ms  ({ours_ms / torch_ms:5.2f}x)  "
              f"max |diff| {value_diff:.2e}")
    return table
