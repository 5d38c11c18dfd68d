"""``gpugrad bench``'s report: the GEMM ceiling the figures are put against, the table it prints and the bar
chart it can write."""
from __future__ import annotations

import time


def _fmt(value, spec):
    return format(value, spec) if value is not None else "-"


def print_table(results):
    header = (f"{'model':8s} {'device':7s} {'impl':8s} {'median ms':>10s} {'samples/s':>10s} {'GFLOP/s':>8s} "
              f"{'% ceil':>7s} {'/numpy':>7s} {'/torch':>7s} {'loss diff':>9s}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['model']:8s} {r['device']:7s} {r['impl']:8s} {r['median_ms']:10.3f} {r['samples_per_s']:10.0f} "
              f"{r['gflops']:8.1f} {r['pct_of_matmul_ceiling']:7.1f} {_fmt(r['ratio_to_numpy'], '7.3f')} "
              f"{_fmt(r['ratio_to_torch'], '7.3f')} {_fmt(r.get('max_rel_loss_diff_vs_numpy'), '9.1e')}")


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.patches
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no plot: matplotlib is not installed; pip install matplotlib to write {path})")
        return
    labels = [f"{r['model']}\n{r['device']}\n{r['impl']}" for r in results]
    fig, ax = plt.subplots(figsize=(max(6, len(results) * 0.9), 4))
    colors = {"gpugrad": "tab:blue", "compiled": "tab:green", "written": "tab:cyan", "numpy": "tab:gray", "torch": "tab:orange"}
    ax.bar(range(len(results)), [r["median_ms"] for r in results], color=[colors[r["impl"]] for r in results])
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("median step time (ms)")
    ax.set_yscale("log")
    shown = dict.fromkeys(r["impl"] for r in results)
    ax.legend(handles=[matplotlib.patches.Patch(color=colors[name], label=name) for name in shown],
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(shown), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def matmul_ceiling_gflops(device, dtype):
    """This machine's GEMM rate: 1024^3 on the CPU, 4096^3 on a GPU (GFLOP/s)."""
    import gpugrad
    backend = gpugrad.get_backend(device)
    n = 1024 if backend.kind == "cpu" else 4096
    a = backend.xp.ones((n, n), dtype=dtype)
    best = float("inf")
    for _ in range(5):
        backend.synchronize()
        start = time.perf_counter()
        backend.matmul(a, a)
        backend.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9
