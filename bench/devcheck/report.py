"""results.md: the sections' results as tables."""
from __future__ import annotations

from .common import RESULTS, _f


def markdown() -> str:
    s = RESULTS["sections"]
    env = s.get("environment", {})
    lines = [f"## Device check: {env.get('gpu', '?')} ({env.get('date', '?')})", "",
             f"driver {env.get('driver')}, CUDA runtime {env.get('cuda_runtime')}, cupy {env.get('cupy')}, "
             f"numpy {env.get('numpy')}, torch {env.get('torch')}, Python {env.get('python')}", ""]
    for name in ("pytest -m gpu", "pytest -m gpu (capture and train)"):
        if name in s:
            lines += [f"- `{name}`: {s[name]['summary']}", ""]
    c = s.get("ceilings")
    if c:
        lines += [f"- Ceilings: copy {c['copy_GBps']:.0f} GB/s (read + write; {c.get('kernel_copy_GBps', 0):.0f} GB/s "
                  f"as a plain elementwise kernel), SGEMM {c['sgemm_TFLOPs']:.1f} TFLOP/s, "
                  f"TF32 GEMM {c['tf32_TFLOPs']:.1f} TFLOP/s (4096^3)", ""]
    k = s.get("fused kernels")
    if k:
        lines += ["| kernel (2^26 float32) | fused ms | generic cupy ms | fused / generic | GB/s | % of copy |",
                  "|---|---|---|---|---|---|"]
        for name, r in k.items():
            gbs = f"{r['GBps']:.0f}" if "GBps" in r else ""
            pct = f"{r['pct_of_copy']:.1f}" if r.get("pct_of_copy") else ""
            lines.append(f"| {name} | {r['fused_ms']:.3f} | {r['generic_ms']:.3f} | {r['fused_over_generic']:.2f} | {gbs} | {pct} |")
        lines.append("")
    m = s.get("MLP training steps")
    if m:
        lines += ["| MLP step, float32, SGD | runner | ms per step | / torch eager |", "|---|---|---|---|"]
        for label, r in m.items():
            for name, ms in r["ms_per_step"].items():
                lines.append(f"| {label} | {name} | {ms:.3f} | {r.get('over_torch_eager', {}).get(name, float('nan')):.2f} |")
            if "step_over_gemm_sum" in r:
                lines.append(f"| {label} | gpugrad cuda step / its GEMMs alone | | {r['step_over_gemm_sum']:.2f} |")
        lines.append("")
    mp = s.get("mixed precision")
    if mp:
        lines += ["| 4 x 4096 @4096, SGD | ms per step | TFLOP/s | / torch bf16 autocast |", "|---|---|---|---|"]
        lines += [f"| {name} | {r['ms']:.3f} | {r['TFLOPs']:.1f} | {_f(r['over_torch_bf16'])} |" for name, r in mp.items()
                  if name != "bars"]
        lines.append("")
    small = s.get("small MLP under autocast")
    if small:
        lines += ["| 784-1024-1024-10 @512 under autocast | ms per step |", "|---|---|"]
        lines += [f"| {name} | {r['ms']:.3f} |" for name, r in small.items() if isinstance(r, dict)]
        lines += [f"| {name} | ratio {_f(r)} |" for name, r in small.items() if not isinstance(r, dict)]
        lines.append("")
    dp = s.get("data parallel")
    if dp:
        lines += [f"- Data parallel on one card: NCCL world 1 equals plain training: {dp['nccl_world_1_equals_plain']}; "
                  f"100 MB all-reduce {dp['allreduce_100MB_ms']:.3f} ms ({dp['allreduce_100MB_bus_GBps']:.0f} GB/s); "
                  f"two MPI ranks sharing the card agree: {dp['mpi_two_ranks_on_one_gpu']}; duplicate GPU refused: "
                  f"{bool(dp['duplicate_gpu_refused'])}", ""]
    layers = s.get("layers and ops against PyTorch")
    if layers:
        lines += ["| layer / op, 8192 x 1024 float32, forward + backward | gpugrad ms | torch ms | gpugrad / torch | "
                  "max abs diff |", "|---|---|---|---|---|"]
        for name, r in layers.items():
            lines.append(f"| {name} | {r['gpugrad_ms']:.3f} | {r['torch_ms']:.3f} | {r['gpugrad_over_torch']:.2f} | "
                         f"{r['max_abs_diff']:.1e} |")
        lines.append("")
    tc = s.get("torch.compile")
    if tc:
        lines += ["| 784-1024-1024-10 @512, float32 | ms per step |", "|---|---|"]
        lines += [f"| {name} | {r['ms']:.3f} |" if isinstance(r, dict) else f"| {name} | ratio {_f(r)} |"
                  for name, r in tc.items()]
        lines.append("")
    lc = s.get("CPU-GPU loss curve")
    if lc:
        lines += [f"- CPU-GPU loss curve: {lc['steps']} seeded SGD steps, max relative difference {lc['max_rel_diff']:.2e}", ""]
    for name, error in RESULTS["errors"].items():
        lines += [f"- ERROR in {name}: `{error.strip().splitlines()[-1]}`"]
    lines += [f"- SKIPPED {name}: {why}" for name, why in RESULTS["skipped"].items()]
    return "\n".join(lines)
