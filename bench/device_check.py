#!/usr/bin/env python
"""The device check: everything that proves gpugrad on a real NVIDIA GPU, in one command.

    timeout -k 10 540 python bench/device_check.py --out $OUT --budget 330 2>&1 | tee $OUT/console.log

In the order that gets the most truth from a lease cut short: the environment; ``pytest -m gpu`` as two
processes (the compile and train tests apart), each under its own limit; the CPU-GPU loss curve of one seeded run;
the two ceilings (device-to-device copy, SGEMM and TF32 GEMM at 4096^3) and each fused kernel's bandwidth against
the generic CuPy sequence it replaces; MLP training steps (gpugrad eager and compiled, PyTorch eager and captured,
JAX's jit, gpugrad on the CPU); bfloat16 autocast against float32 on the GEMM-bound 4 x 4096 model and the small
MLP under autocast (bfloat16 compiled against PyTorch's captured step, float16 with the scaler), where a runner
that fails loses its row, not the section; the layers added for PyTorch users against PyTorch's; data parallel on
one card (NCCL at world size 1, two MPI ranks sharing it, the duplicate-GPU refusal); torch.compile last. Each
section runs in a process of its own, killed at its limit (a hang or a sticky CUDA error costs that section
alone). Writes results.json and results.md into --out after every section (at most five files there, the pytest
logs included); sections that would start after --budget are skipped, and the last may run GRACE seconds past it.
Needs only what the device machine has (no network). The sections live in ``bench/devcheck/``, one module per
kind; this file is the driver: the plan, a process per section, the budget, the files.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # gpugrad from this checkout, and the sections beside this file
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX shares the GPU with CuPy and PyTorch

from devcheck import environment, kernels, layers, parallel, steps  # noqa: E402
from devcheck.common import RESULTS  # noqa: E402
from devcheck.report import markdown  # noqa: E402
from devcheck.tests import gpu_tests  # noqa: E402

# NOTE: set by main: where results go after every section (a run cut short keeps what it measured)
RUN = {"out": None}


def save() -> str:
    """Write results.json and results.md into the output folder (after every section); returns the table."""
    table = markdown()
    if RUN["out"] is not None:
        (RUN["out"] / "results.json").write_text(json.dumps(RESULTS, indent=2, default=float))
        (RUN["out"] / "results.md").write_text(table + "\n")
    return table


# The sections in the order that gets the most truth from a lease cut short, each with the seconds it may take: its
# own process (a hang, a crash or a sticky CUDA error costs that section alone), killed at its limit.
PLAN = [("environment", 60), ("pytest -m gpu", 200), ("pytest -m gpu (capture and train)", 150),
        ("CPU-GPU loss curve", 60), ("ceilings", 60), ("fused kernels", 90), ("MLP training steps", 120),
        ("mixed precision", 90), ("small MLP under autocast", 90), ("layers and ops against PyTorch", 90),
        ("data parallel", 90), ("torch.compile", 180)]


GRACE = 150  # seconds a section started before the --budget's end may run past it


def _functions():
    return {"environment": environment.environment, "CPU-GPU loss curve": steps.loss_curve,
            "ceilings": kernels.ceilings, "fused kernels": kernels.kernels, "MLP training steps": steps.mlp_steps,
            "mixed precision": steps.mixed_precision, "small MLP under autocast": steps.small_mlp_autocast,
            "layers and ops against PyTorch": layers.layers_against_torch, "data parallel": parallel.data_parallel,
            "torch.compile": steps.torch_compile}


def run_section(name, out: Path, limit: float):
    """One section: the GPU tests as pytest processes, every other one as this script with --section, in a process of
    its own under ``limit`` seconds; what it measured (or its error) goes into RESULTS."""
    started = time.time()
    if name.startswith("pytest"):
        print(f"\n== {name}", flush=True)
        RESULTS["sections"][name] = gpu_tests(out, "capture" if "capture" in name else "ops", limit)
        return
    with tempfile.TemporaryDirectory() as scratch:  # the section's results and files, never in --out's few files
        try:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--section", name, "--out", scratch],
                           timeout=limit, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            piece = Path(scratch) / "section.json"
            if not piece.exists():
                raise RuntimeError("the section's process ended without results (a crash)")
            found = json.loads(piece.read_text())
            for kind in ("sections", "errors"):
                RESULTS[kind].update(found[kind])
        except subprocess.TimeoutExpired:
            RESULTS["errors"][name] = f"TimeoutError: the section's process was killed after {limit:.0f} s"
        except Exception as error:
            RESULTS["errors"][name] = f"{type(error).__name__}: {error}"
    if name in RESULTS["errors"]:
        print("   " + RESULTS["errors"][name].strip().splitlines()[-1], flush=True)
    print(f"   ({time.time() - started:.1f} s in all)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("device-check"))
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds; sections that would start later are skipped (default 420)")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # one section, in the process run_section starts
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section:
        function = _functions()[args.section]
        function(args.out) if args.section == "data parallel" else function()
        (args.out / "section.json").write_text(json.dumps(RESULTS, default=float))
        return 0
    RUN["out"], deadline = args.out, time.time() + args.budget
    for name, limit in PLAN:
        if name.startswith("pytest") and args.skip_tests:
            continue
        now = time.time()
        if now > deadline:
            RESULTS["skipped"][name] = "the --budget was spent before this section"
            print(f"\n== {name}\n   skipped: " + RESULTS["skipped"][name], flush=True)
        else:
            run_section(name, args.out, min(limit, deadline + GRACE - now))
        save()
    print("\n" + save())
    return 1 if RESULTS["errors"] or RESULTS["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
