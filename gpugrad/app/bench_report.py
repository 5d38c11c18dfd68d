"""``gpugrad bench``'s measuring and report: the interleaved rounds, the GEMM ceiling the figures are put
against, the table it prints and the bar chart it can write."""
from __future__ import annotations

import statistics
import time

import gpugrad


def measure(candidates, rounds, seconds, warmup, pause=0.25, per_step=False):
    """Median-ready times: each round runs every candidate once, in a rotated order, with a pause
    before each so that thread pools still spinning from the last one (OpenMP in PyTorch's CPU
    build keeps its threads busy for a while) do not slow down the next.

    Each candidate runs about ``seconds`` per round (as many steps as its warm-up says fit): on
    the CPU the first steps after switching candidates run slower (caches, sleeping BLAS
    threads), and 30 ms rounds of the lecture's net measured gpugrad 5% slower against numpy
    than 150 ms rounds did.

    A round's figure is its mean step time, or with ``per_step`` (the CPU, where a step ends when
    it returns) the median of its steps' own times: on a shared machine a burst of stolen time
    lands on a few steps of one candidate's round and moves that round's mean by several percent,
    not its median. Returns ``({name: [figure per round]}, {name: [mean step per round]})``."""
    steps = {}
    for name, (step, sync) in candidates.items():
        for _ in range(warmup):
            step()
        sync()
        start = time.perf_counter()
        step()
        sync()
        steps[name] = max(1, min(5000, round(seconds / max(time.perf_counter() - start, 1e-7))))
    times = {name: [] for name in candidates}
    means = {name: [] for name in candidates}
    names = list(candidates)
    clock = time.perf_counter
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            step, sync, n = *candidates[name], steps[name]
            time.sleep(pause)
            sync()
            each = [0.0] * n if per_step else None
            start = clock()
            for i in range(n):
                if per_step:
                    t0 = clock()
                    step()
                    each[i] = clock() - t0
                else:
                    step()
            sync()
            means[name].append((clock() - start) / n)
            times[name].append(statistics.median(each) if per_step else means[name][-1])
    return times, means


def _fmt(value, spec):
    return format(value, spec) if value is not None else "-"


def print_header():
    header = (f"{'model':8s} {'device':7s} {'impl':8s} {'median ms':>10s} {'samples/s':>10s} {'GFLOP/s':>8s} "
              f"{'% ceil':>7s} {'/numpy':>7s} {'/torch':>7s} {'loss diff':>9s}")
    print(header)
    print("-" * len(header), flush=True)


def print_row(r):
    """One row, printed as soon as it is measured (a long benchmark is never silent)."""
    print(f"{r['model']:8s} {r['device']:7s} {r['impl']:8s} {r['median_ms']:10.3f} {r['samples_per_s']:10.0f} "
          f"{r['gflops']:8.1f} {r['pct_of_matmul_ceiling']:7.1f} {_fmt(r['ratio_to_numpy'], '7.3f')} "
          f"{_fmt(r['ratio_to_torch'], '7.3f')} {_fmt(r.get('max_rel_loss_diff_vs_numpy'), '9.1e')}", flush=True)



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
