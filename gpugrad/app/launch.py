"""Starting N ranks: ``mpiexec -n N python -m gpugrad ...`` (``--nproc`` of train and bench), and stopping them.

A Ctrl-C reaches this process alone: mpiexec runs in a session of its own (hydra starts each rank in one of its
own too, ``setsid`` in ``src/pm/hydra/lib/utils/launch.c``). It is passed on as SIGUSR1, which MPICH's mpiexec
forwards to every rank without a word (``signal_cb`` in ``src/pm/hydra/mpiexec/mpiexec.c`` prints two lines for a
SIGINT only), and only once every rank has said that it handles it (SIGUSR1 ends a process that does not). The
ranks agree on the step to stop after (``any_rank``), save it and leave together. A second Ctrl-C ends mpiexec
(SIGKILL): its proxy, finding the control socket closed, kills every rank (``fn_fail`` in
``src/pm/hydra/proxy/pmip.c``), even one inside a long GEMM, whose Python handler would wait for the GEMM (and
merge two signals into one); the checkpoints are written whole or not at all. SIGTERM and SIGHUP are taken as a
Ctrl-C (a scheduler's stop or a closed terminal keeps the work).
The one line about it is printed here, after every rank has gone: rank 0's (``say``), else the caller's.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

STOP = signal.SIGUSR1          # what a rank takes as a Ctrl-C from its launcher
READY = "GPUGRAD_RANKS_READY"  # the launcher's folder: rank-<r> says rank r handles STOP; "said" holds rank 0's line


class Finished(NamedTuple):
    status: int        # mpiexec's exit status
    interrupted: int   # Ctrl-Cs (or SIGTERM / SIGHUP) the launcher passed on or was given
    said: str | None   # the line rank 0 left with ``say`` (printed already)


def launch_ranks(nproc, argv, env=None) -> Finished:
    """``mpiexec -n N python -m gpugrad <argv>``: MPICH's launcher from the dist extra, else the system's;
    one BLAS thread per rank on the CPU (N ranks share the cores)."""
    with tempfile.TemporaryDirectory(prefix="gpugrad-ranks-") as ready:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               **(env or {}), READY: ready}
        job = subprocess.Popen([mpiexec(), "-n", str(nproc), sys.executable, "-m", "gpugrad", *argv], env=env,
                               start_new_session=True)
        previous = {number: signal.signal(number, _as_ctrl_c) for number in (signal.SIGTERM, signal.SIGHUP)}
        try:
            status, interrupted = _wait(job, Path(ready), nproc)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        said = Path(ready, "said").read_text() if Path(ready, "said").exists() else None
    if said:
        print(said, file=sys.stderr, flush=True)
    return Finished(status, interrupted, said)


def _as_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def _wait(job, ready: Path, nproc: int) -> tuple[int, int]:
    # NOTE: polled, not job.wait(): Popen.wait answers a KeyboardInterrupt by waiting 0.25 s more for the child, in
    # which a second Ctrl-C merges with the first
    requests = passed = 0
    while True:
        try:
            while job.poll() is None:
                if passed < requests and len(list(ready.glob("rank-*"))) >= nproc:
                    job.send_signal(STOP)
                    passed += 1
                time.sleep(0.02)
            return job.returncode, requests
        except KeyboardInterrupt:
            requests += 1
            if requests >= 2:
                job.kill()


def as_rank() -> None:
    """In a rank this launcher started: its STOP is a Ctrl-C (KeyboardInterrupt until a command handles it
    otherwise)."""
    if launched():
        signal.signal(STOP, signal.default_int_handler)


def ready(comm) -> None:
    """A rank tells its launcher it may be stopped: called once MPI is up (``comm`` made). NOTE: a rank that left
    inside MPI's start would leave the others waiting for it there, and hydra's proxy spinning; after it, a rank
    that leaves makes the proxy end the others."""
    if launched() and os.path.isdir(os.environ[READY]):
        Path(os.environ[READY], f"rank-{comm.rank}").touch()


def launched() -> bool:
    """Whether this process is a rank this launcher started."""
    return os.environ.get(READY) is not None


def say(line: str) -> None:
    """Rank 0's one line at the end: left for the launcher to print after every rank has gone (a rank that prints
    may be ended first by another's exit); printed at once elsewhere."""
    if launched():
        Path(os.environ[READY], "said").write_text(line)
    else:
        print(line, file=sys.stderr, flush=True)


def leave_as_rank() -> None:
    """A rank whose command returned ignores STOP from here on: Python's finalization puts its handlers back to the
    default (which ends the process, and mpiexec reports a rank killed by a signal), but leaves an ignored one."""
    if launched():
        signal.signal(STOP, signal.SIG_IGN)


def mpiexec() -> str:
    """The mpiexec beside this Python (the dist extra's MPICH), else the system's."""
    launcher = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if launcher is None:
        raise ImportError("--nproc needs mpiexec: pip install 'gpugrad[dist]' (mpi4py and MPICH)")
    return launcher
