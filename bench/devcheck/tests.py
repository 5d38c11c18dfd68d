"""``pytest -m gpu`` as a section: the capture and train tests apart from the others."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import ROOT


# NOTE: the compile and train tests in a process of their own: a capture that hangs or leaves a sticky CUDA error
# there must not cost the rest of the GPU tests
CAPTURE_TESTS = ["tests/test_compile.py", "tests/test_training.py", "tests/test_capture_failures.py"]


def gpu_tests(out: Path, which: str, limit: float):
    """``pytest -m gpu`` over the capture tests ("capture") or all the others ("ops"), under ``limit`` seconds."""
    started = time.time()
    paths = CAPTURE_TESTS if which == "capture" else ["tests", "bench"] + [f"--ignore={p}" for p in CAPTURE_TESTS]
    # -v and unbuffered: a run cut short by the limit still shows each test that ran and how it ended
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider", *paths]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=limit,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        output, returncode = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as expired:  # keep what it printed: which tests ran, which failed
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
                         for part in (expired.stdout, expired.stderr))
        output += f"\n(timed out after {limit:.0f} s)\n"
        returncode = None
    (out / f"pytest_gpu_{which}.log").write_text(output)
    summary = [line for line in output.splitlines() if line.strip()][-1:] or ["(no output)"]
    failed = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))] or \
        [line for line in output.splitlines() if line.endswith("]") and (" FAILED " in line or " ERROR " in line)]
    print("   " + summary[0])
    for line in failed[:30]:
        print("   " + line)
    return {"returncode": returncode, "summary": summary[0], "failed": failed, "seconds": time.time() - started}
