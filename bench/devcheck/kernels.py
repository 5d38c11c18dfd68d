"""The two ceilings (device-to-device copy, GEMM) and each fused kernel against the CuPy sequence it replaces."""
from __future__ import annotations

import numpy as np

import gpugrad
from gpugrad.backend import get_backend

from .common import RESULTS, gpu_time, section


@section("ceilings")
def ceilings():
    import cupy
    n = 2 ** 28  # 1 GiB of float32: far beyond L2
    src = cupy.random.random(n, dtype=np.float32)
    dst = cupy.empty_like(src)
    ms = gpu_time(lambda: cupy.copyto(dst, src))
    copy_gbs = 2 * n * 4 / ms / 1e6
    # The same copy as a plain elementwise kernel: what a kernel that reads x and writes y can reach,
    # to tell a gap of our kernels from a gap between kernels and the copy engine's path.
    plain = cupy.ElementwiseKernel("T x", "T y", "y = x", "gpugrad_plain_copy")
    kernel_copy_gbs = 2 * n * 4 / gpu_time(lambda: plain(src, dst)) / 1e6
    size = 4096
    a = cupy.random.random((size, size), dtype=np.float32)
    b = cupy.random.random((size, size), dtype=np.float32)
    flops = 2 * size ** 3
    gemm = get_backend("cuda").matmul  # gpugrad's cublasGemmEx, in the compute type the precision asks for
    sgemm = flops / gpu_time(lambda: gemm(a, b), repeat=10) / 1e9
    gpugrad.set_matmul_precision("high")
    try:
        tf32 = flops / gpu_time(lambda: gemm(a, b), repeat=10) / 1e9
    finally:
        gpugrad.set_matmul_precision("highest")
    result = {"copy_GBps": copy_gbs, "kernel_copy_GBps": kernel_copy_gbs, "sgemm_TFLOPs": sgemm, "tf32_TFLOPs": tf32}
    print("   " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()))
    return result


@section("fused kernels")
def kernels():
    import cupy
    from gpugrad.cuda import kernels as launch
    from gpugrad.ops.activation import ACTIVATIONS
    from gpugrad.ops.loss import softmax_xent
    get_backend("cuda")  # the device and its allocator
    xp = cupy
    n = 2 ** 26
    rows, cols = n // 4096, 4096
    rng = cupy.random.RandomState(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y_sig = launch.activation_forward("sigmoid", x, 0.0)
    y_relu = launch.activation_forward("relu", x, 0.0)
    g = rng.standard_normal(n, dtype=np.float32)
    bias = rng.standard_normal(cols, dtype=np.float32)
    z = x.reshape(rows, cols).copy()
    logits = rng.standard_normal((n // 1024, 1024), dtype=np.float32)
    labels = rng.randint(0, 1024, n // 1024).astype(np.int64)
    b4 = n * 4

    def formula(name, direction):
        entry = ACTIVATIONS[name]
        return entry.forward if direction == "fwd" else entry.backward

    # name, fused call, the op's xp formula alone (what runs without the kernel), bytes the kernel must move
    cases = []
    for name, y_saved in (("sigmoid", y_sig), ("relu", y_relu), ("tanh", y_sig), ("leaky_relu", None),
                          ("elu", None)):
        param = ACTIVATIONS[name].default
        cases.append((f"{name}_fwd", lambda name=name, p=param: launch.activation_forward(name, x, p),
                      lambda name=name, p=param: formula(name, "fwd")(xp, x, p), 2 * b4))
        if y_saved is not None:
            cases.append((f"{name}_bwd", lambda name=name, y=y_saved: launch.activation_backward(name, y, g, 0.0),
                          lambda name=name, y=y_saved: formula(name, "bwd")(xp, y, g, 0.0), 3 * b4))
    cases.append(("softmax_xent", lambda: launch.softmax_xent(logits, labels),
                  lambda: softmax_xent(xp, logits, labels), 2 * b4))
    for act in ("relu", "sigmoid"):
        y2 = launch.activation_forward(act, z, 0.0)
        g2 = g.reshape(rows, cols)

        def generic_fwd(act=act):
            return formula(act, "fwd")(xp, xp.add(z, bias, out=z), 0.0, out=z)

        def generic_bwd(act=act, y2=y2, g2=g2):
            pre = formula(act, "bwd")(xp, y2, g2, 0.0)
            return pre, pre.sum(axis=0)
        cases.append((f"bias_{act}_fwd", lambda act=act: launch.bias_act_forward(z, bias, act, 0.0), generic_fwd, 2 * b4))
        cases.append((f"bias_{act}_bwd", lambda act=act, y2=y2, g2=g2: launch.bias_act_backward(y2, g2, act, 0.0),
                      generic_bwd, 3 * b4))
    copy = RESULTS["sections"].get("ceilings", {}).get("copy_GBps")
    table = {}
    for name, fused, generic, nbytes in cases:
        fused_ms, generic_ms = gpu_time(fused), gpu_time(generic)
        single_ms = gpu_time(fused, inner=1)  # the first session's way: one launch between the events
        gbs = nbytes / fused_ms / 1e6
        table[name] = {"fused_ms": fused_ms, "generic_ms": generic_ms, "GBps": gbs,
                       "pct_of_copy": 100 * gbs / copy if copy else None, "fused_over_generic": fused_ms / generic_ms,
                       "fused_ms_one_launch_between_events": single_ms}
        print(f"   {name:16s} fused {fused_ms:7.3f} ms  generic {generic_ms:7.3f} ms  {gbs:7.0f} GB/s"
              + (f"  {100 * gbs / copy:5.1f}% of copy" if copy else "") + f"  (one launch timed alone: {single_ms:.3f} ms)")
    for act in ("relu", "sigmoid"):
        f = table[f"bias_{act}_fwd"]["fused_ms"] + table[f"bias_{act}_bwd"]["fused_ms"]
        u = table[f"bias_{act}_fwd"]["generic_ms"] + table[f"bias_{act}_bwd"]["generic_ms"]
        table[f"bias_{act}_fwd+bwd"] = {"fused_ms": f, "generic_ms": u, "fused_over_generic": f / u}
        print(f"   bias+{act} fwd+bwd fused/generic = {f / u:.2f}")
    return table
