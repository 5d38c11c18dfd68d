"""Stopping an --nproc run: real launchers, real ranks, real signals, real files.

A Ctrl-C reaches the launcher alone (mpiexec runs in a session of its own); it passes it on quietly (SIGUSR1, which
MPICH's mpiexec forwards without a word) once every rank handles it; the ranks vote after each step, stop after the
same one, save it and leave together; the launcher prints rank 0's one line. A second Ctrl-C ends the job at once."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import gpugrad
from gpugrad.app import launch
from gpugrad.distributed import LocalCommunicator

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
TRAIN = [sys.executable, "-m", "gpugrad", "train", "--device", "cpu", "--nproc", "2"]
# Small steps (2 ranks x batch 4: 180 per epoch) so that a Ctrl-C lands mid-epoch.
SLOW = ["--hidden", "128", "--batch-size", "4", "--epochs", "30", "--seed", "1"]


def _mpi():
    pytest.importorskip("mpi4py")
    if MPIEXEC is None:
        pytest.skip("no mpiexec (pip install 'gpugrad[dist]')")


def _start(args, tmp_path):
    """The command in a session of its own, as a terminal runs it: os.killpg(pid, SIGINT) is its Ctrl-C. TMPDIR
    shows the launcher's folder (where the ranks say they are ready)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def _until(condition, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def _finish(run, timeout=120):
    try:
        stdout, stderr = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        raise
    assert "Traceback" not in stdout + stderr and "BAD TERMINATION" not in stdout + stderr, stdout[-2000:] + stderr
    # nothing of mpiexec's own: every line is gpugrad's
    assert all(line.startswith(("gpugrad train:", "epoch", "gpugrad bench:", "MLP", "  ")) for line in
               stdout.splitlines()), stdout[-2000:]
    return stdout, stderr.splitlines()


def _weights(folder):
    return gpugrad.load(folder / "model.npz")


def test_ctrl_c_on_an_nproc_run_saves_the_step_quietly_and_resumes_bit_for_bit(tmp_path):
    _mpi()
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(TRAIN + SLOW + ["--out", str(straight)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = _start(TRAIN + SLOW + ["--out", str(cut)], tmp_path)
    _until(lambda: (cut / "history.json").exists())
    os.killpg(run.pid, signal.SIGINT)
    stdout, lines = _finish(run)
    assert run.returncode == 130
    assert len(lines) == 1 and re.fullmatch(
        rf"gpugrad train: interrupted (at epoch \d+, step \d+ of 180: checkpoint and history are|after epoch \d+: "
        rf"files are) in {re.escape(str(cut))}; continue with: gpugrad train --resume {re.escape(str(cut))}",
        lines[0]), lines
    checkpoint = gpugrad.load(cut / "checkpoint.npz")
    assert checkpoint["epoch"] >= 2 and not (cut / "model.npz").exists()
    resumed = subprocess.run(TRAIN[:4] + ["--resume", str(cut)], capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "2 rank(s)" in resumed.stdout and "resumed at epoch" in resumed.stdout
    a, b = _weights(straight), _weights(cut)
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    # an epoch cut in two counts its first part once (rank 0's), not once per rank
    history = [json.loads((folder / "history.json").read_text()) for folder in (straight, cut)]
    assert [r["train_loss"] for r in history[0]] == [r["train_loss"] for r in history[1]]


def test_a_second_ctrl_c_ends_every_rank_at_once_keeping_the_last_checkpoint(tmp_path):
    _mpi()
    out = tmp_path / "run"
    # steps of a few hundred ms: the graceful stop (the step, the vote, a 50 MB checkpoint) cannot end in 20 ms
    run = _start(TRAIN + ["--hidden", "2048,2048", "--batch-size", "512", "--epochs", "50", "--out", str(out)],
                 tmp_path)
    _until(lambda: (out / "checkpoint.npz").exists())
    time.sleep(0.3)
    os.killpg(run.pid, signal.SIGINT)
    time.sleep(0.02)
    os.killpg(run.pid, signal.SIGINT)
    _, lines = _finish(run, timeout=30)
    assert run.returncode == 130
    assert lines == [f"gpugrad train: interrupted at once; the last checkpoint is kept: continue with gpugrad train "
                     f"--resume {out}"]
    _until(lambda: not list(tmp_path.glob("gpugrad-ranks-*")), timeout=10)  # the launcher's folder went with it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    trained = int(gpugrad.load(out / "checkpoint.npz")["epoch"]) - 1
    resumed = subprocess.run(TRAIN[:4] + ["--resume", str(out), "--epochs", str(trained + 1)], capture_output=True,
                             text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_a_ctrl_c_before_the_ranks_handle_it_is_held_then_ends_them_quietly(tmp_path):
    """SIGUSR1 ends a process that has no handler for it: the launcher passes the Ctrl-C on only once every rank said
    it has one; before their first step, the ranks just leave."""
    _mpi()
    out = tmp_path / "run"
    run = _start(TRAIN + SLOW + ["--out", str(out)], tmp_path)
    _until(lambda: list(tmp_path.glob("gpugrad-ranks-*")))  # mpiexec is starting the ranks
    os.killpg(run.pid, signal.SIGINT)
    _, lines = _finish(run)
    assert run.returncode == 130
    # before the steps: they leave; at a step or an epoch's end (the ranks get there in the launcher's 20 ms and
    # vote every 50 ms or so): they save it
    assert len(lines) == 1 and re.fullmatch(
        rf"gpugrad train: interrupted (at once; before its first checkpoint|(at epoch \d+, step \d+ of 180: "
        rf"checkpoint and history are|after epoch \d+: files are) in {re.escape(str(out))}; continue with: gpugrad "
        rf"train --resume {re.escape(str(out))})", lines[0]), lines


def test_sigterm_to_the_launcher_stops_an_nproc_run_as_a_ctrl_c_does(tmp_path):
    _mpi()
    out = tmp_path / "run"
    run = _start(TRAIN + SLOW + ["--out", str(out)], tmp_path)
    _until(lambda: (out / "history.json").exists())
    run.send_signal(signal.SIGTERM)  # a scheduler's stop, to the launcher alone
    _, lines = _finish(run)
    assert run.returncode == 130 and len(lines) == 1 and lines[0].startswith("gpugrad train: interrupted ")
    assert f"continue with: gpugrad train --resume {out}" in lines[0]


def test_ctrl_c_on_bench_nproc_prints_one_line(tmp_path):
    _mpi()
    run = _start([sys.executable, "-m", "gpugrad", "bench", "--nproc", "2", "--device", "cpu"], tmp_path)
    _until(lambda: len(list(tmp_path.glob("gpugrad-ranks-*/rank-*"))) == 2)  # the ranks are up
    os.killpg(run.pid, signal.SIGINT)
    stdout, lines = _finish(run)
    assert run.returncode == 130 and lines == ["gpugrad bench: interrupted"], (stdout, lines)


def test_the_launcher_holds_a_ctrl_c_until_every_rank_is_ready_and_ends_the_job_on_a_second(tmp_path):
    """launch._wait with a stand-in for mpiexec's process: what it sends, and when."""
    class Job:
        def __init__(self, interrupts, ready_at, ends_at):
            self.polls, self.sent, self.returncode = 0, [], None
            self.interrupts, self.ready_at, self.ends_at = interrupts, ready_at, ends_at

        def poll(self):
            self.polls += 1
            if self.polls == self.ready_at:
                for rank in range(2):
                    (tmp_path / f"rank-{rank}").touch()
            if self.polls in self.interrupts:
                raise KeyboardInterrupt
            if self.polls >= self.ends_at and self.returncode is None:
                self.returncode = 130
            return self.returncode

        def send_signal(self, number):
            self.sent.append((self.polls, number))

        def kill(self):
            self.sent.append((self.polls, signal.SIGKILL))
            self.returncode = -9

    job = Job(interrupts={2}, ready_at=6, ends_at=9)
    assert launch._wait(job, tmp_path, 2) == (130, 1)
    assert job.sent == [(6, launch.STOP)]  # held from poll 2 until both ranks were ready
    for name in ("rank-0", "rank-1"):
        (tmp_path / name).unlink()
    job = Job(interrupts={2, 4}, ready_at=3, ends_at=50)
    assert launch._wait(job, tmp_path, 2) == (-9, 2)
    assert job.sent == [(3, launch.STOP), (4, signal.SIGKILL)]


def test_any_rank_is_true_on_every_rank_when_it_is_true_on_one_and_host_max_is_the_most(tmp_path):
    assert LocalCommunicator().any_rank(True) is True and LocalCommunicator().any_rank(0) is False
    assert LocalCommunicator().host_max([0, 7]).tolist() == [0, 7]
    _mpi()
    script = tmp_path / "vote.py"
    script.write_text(textwrap.dedent("""
        import json, sys
        from gpugrad import distributed
        comm = distributed.init()
        with open(f"{sys.argv[1]}/vote{comm.rank}.json", "w") as f:
            json.dump([comm.rank, comm.any_rank(False), comm.any_rank(comm.rank == 1), comm.any_rank(True),
                       comm.host_max([comm.rank, 10 - comm.rank, -5]).tolist()], f)
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([MPIEXEC, "-n", "3", sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    votes = [json.loads((tmp_path / f"vote{rank}.json").read_text()) for rank in range(3)]
    assert votes == [[rank, False, True, True, [2, 10, -5]] for rank in range(3)]


@pytest.mark.gpu
def test_nccl_stages_host_arrays_and_votes(cuda):
    """cupyx.distributed hands NCCL ``in_array.data.ptr``: a numpy array (a memoryview's .data) has none, so the
    epoch's loss total (a numpy array) failed on GPUs; it is staged through the device and copied back."""
    import cupy
    import cupyx.distributed
    from gpugrad.distributed.nccl import NCCLCommunicator
    with pytest.raises(AttributeError, match="ptr"):  # what CuPy does with a host array
        cupyx.distributed.init_process_group(1, 0).all_reduce(np.ones(2), np.ones(2))
    comm = NCCLCommunicator(0, 1, 0)
    totals = np.array([3.5, 7.0])
    assert comm.all_reduce(totals) is totals and totals.tolist() == [3.5, 7.0]
    assert comm.all_reduce(np.array([4.0, 2.0]), op="mean").tolist() == [4.0, 2.0]
    assert comm.any_rank(True) is True and comm.any_rank(False) is False
    assert comm.host_max([3, -1]).tolist() == [3, -1]
    assert isinstance(comm.all_reduce(cupy.ones(2)), cupy.ndarray)


def test_a_non_finite_loss_stops_every_rank_with_one_line(tmp_path):
    """Any stop of train() is rank 0's line, printed by the launcher once every rank has gone."""
    _mpi()
    out = tmp_path / "nan"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(TRAIN + ["--hidden", "16", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3", "--out",
                                   str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 3, done.stderr[-3000:]
    assert done.stderr.splitlines() == [f"gpugrad train: the training loss became nan in epoch 1: lower the learning "
                                        f"rate (--lr 1e+30 now) or check the data for NaN or inf; config and history "
                                        f"are in {out}"]


def test_a_closed_output_pipe_stops_an_nproc_run_as_it_stops_one_process(tmp_path):
    """gpugrad train --nproc 2 | head -2: mpiexec, writing the ranks' lines, meets the closed pipe and ends; the
    launcher says what one process says, status 1, files kept."""
    _mpi()
    out = tmp_path / "run"
    run = subprocess.Popen(TRAIN + ["--epochs", "500", "--out", str(out)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.stdout.readline().startswith("gpugrad train: digits") and run.stdout.readline().startswith("epoch")
    run.stdout.close()
    stderr = run.stderr.read()
    assert run.wait(timeout=120) == 1
    assert stderr.splitlines() == ["gpugrad train: the output pipe was closed; stopped (files written so far are kept)"]
    assert (out / "checkpoint.npz").exists()
