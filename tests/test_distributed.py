"""Data parallel: real ranks under mpiexec (MPICH from the dist extra; skipped cleanly without mpi4py):
every rank ends with the same parameters, equal to one process on the concatenated batch; buckets and
overlap do not change the result; shards are disjoint and cover the data; a failing rank ends the job."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
import gpugrad.nn as nn
import gpugrad.optim as optim
from gpugrad.distributed import DistributedError, LocalCommunicator, launcher_env

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def _mpi():
    pytest.importorskip("mpi4py")
    if MPIEXEC is None:
        pytest.skip("no mpiexec (pip install 'gpugrad[dist]')")


def _run(n, code, tmp_path, timeout=120):
    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=timeout, env=env)


STEPS, PER_RANK = 20, 6
SETUP = """
import sys, json, numpy as np, gpugrad, gpugrad.nn as nn, gpugrad.optim as optim, gpugrad.functional as F
from gpugrad import distributed
out = sys.argv[1]
comm = distributed.init()
OPTIMIZERS = {"momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9), "adamw": lambda p: optim.AdamW(p, lr=1e-2)}
def model_for(seed):
    gpugrad.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 16, activation="relu"), nn.Linear(16, 3))
def batches(world):
    rng = np.random.default_rng(0)
    return rng.standard_normal((%(steps)d, world * %(per)d, 10)).astype(np.float32), rng.integers(0, 3, (%(steps)d, world * %(per)d))
""" % {"steps": STEPS, "per": PER_RANK}


def _reference(optimizer, world):
    """One process on the concatenated batch: rank 0's initial weights, the same steps."""
    namespace = {}
    exec(SETUP.replace("comm = distributed.init()", "").replace("out = sys.argv[1]", ""), namespace)
    model = namespace["model_for"](100)
    opt = namespace["OPTIMIZERS"][optimizer](model.parameters())
    X, Y = namespace["batches"](world)
    for s in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(model(gpugrad.tensor(X[s])), gpugrad.tensor(Y[s])).backward()
        opt.step()
    return np.concatenate([p.numpy().ravel() for p in model.parameters()])


TRAIN = SETUP + """
config = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
for name in ("momentum", "adamw"):
  for bucket_mb, overlap, compiled in ((25, True, False), (1e-4, True, False), (1e-4, False, False), (25, True, True)):
    model = model_for(100 + comm.rank)  # different on every rank: the broadcast makes them rank 0's
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_mb, overlap=overlap)
    opt = OPTIMIZERS[name](model.parameters())
    X, Y = batches(comm.size)
    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(ddp(xb), yb)
        loss.backward()
        opt.step()
        return loss
    run = gpugrad.compile(step) if compiled else step
    for s in range(%(steps)d):
        part = slice(comm.rank * %(per)d, (comm.rank + 1) * %(per)d)
        run(gpugrad.tensor(X[s, part]), gpugrad.tensor(Y[s, part]))
    flat = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    np.save(f"{out}/{name}-{bucket_mb}-{overlap}-{compiled}-rank{comm.rank}.npy", flat)
    print(name, bucket_mb, overlap, compiled, "buckets", len(ddp._buckets), flush=True)
""" % {"steps": STEPS, "per": PER_RANK}


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_agree_bit_for_bit_and_equal_one_process_on_the_whole_batch(tmp_path, world):
    _mpi()
    done = _run(world, TRAIN, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for optimizer in ("momentum", "adamw"):
        reference = _reference(optimizer, world)
        variants = {}
        for bucket_mb, overlap, compiled in ((25, True, False), (1e-4, True, False), (1e-4, False, False), (25, True, True)):
            ranks = [np.load(tmp_path / f"{optimizer}-{bucket_mb}-{overlap}-{compiled}-rank{r}.npy") for r in range(world)]
            for r in range(1, world):
                np.testing.assert_array_equal(ranks[r], ranks[0], err_msg=f"{optimizer}: rank {r} differs from rank 0")
            np.testing.assert_allclose(ranks[0], reference, rtol=1e-5, atol=1e-6, err_msg=optimizer)
            variants[(bucket_mb, overlap, compiled)] = ranks[0]
        one = variants[(25, True, False)]
        assert all(np.allclose(v, one, rtol=1e-6, atol=1e-7) for v in variants.values())  # buckets, overlap, compile
    assert "buckets 1" in done.stdout and "buckets 6" in done.stdout  # one bucket, and one per parameter


def test_a_failing_rank_ends_the_job_with_its_message(tmp_path):
    _mpi()
    code = """
    import sys, time, numpy as np, gpugrad
    from gpugrad import distributed
    comm = distributed.init()
    if comm.rank == 1:
        raise ValueError("rank one broke on purpose")
    comm.all_reduce(np.ones(3))  # rank 0 waits here for a rank that is gone
    time.sleep(60)
    """
    done = _run(2, code, tmp_path, timeout=60)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "rank one broke on purpose" in output and "rank 1 of 2 failed" in output, output


def test_train_nproc_2_on_digits_writes_once_and_learns(tmp_path):
    _mpi()
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--nproc", "2", "--epochs", "15", "--device", "cpu",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["test_accuracy"] >= 0.97
    assert done.stdout.count("epoch  15:") == 1  # rank 0 alone prints
    assert {"config.json", "history.json", "checkpoint.npz", "model.npz"} <= {p.name for p in out.iterdir()}
    assert [p for p in tmp_path.iterdir()] == [out]  # no other rank made a run folder of its own
    assert json.loads((out / "config.json").read_text())["options"]["nproc"] == 2
    # --resume of an --nproc 2 run resumes with 2 ranks without being told, and --epochs extends the finished run
    done = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--resume", str(out), "--epochs", "16"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 rank(s) x batch 64 = global batch 128" in done.stdout and done.stdout.count("epoch  16:") == 1
    assert len(json.loads((out / "history.json").read_text())) == 16


@pytest.mark.parametrize("n,world,drop_last", [(12, 3, False), (13, 4, False), (13, 4, True)])
def test_shards_are_disjoint_cover_the_data_and_shuffle_alike(n, world, drop_last):
    X, y = np.arange(n, dtype=np.float32)[:, None], np.arange(n)
    epochs = []
    for epoch_loaders in [[gpugrad.utils.data.DataLoader(X, y, batch_size=2, seed=7, rank=r, world_size=world,
                                                   drop_last=drop_last) for r in range(world)]]:
        for _ in range(2):
            shards = [np.concatenate([yb.numpy() for _, yb in loader]) for loader in epoch_loaders]
            epochs.append(shards)
    for shards in epochs:
        sizes = {len(s) for s in shards}
        assert len(sizes) == 1  # every rank takes the same number of samples, so of steps
        seen = np.concatenate(shards)
        if n % world == 0:
            assert sorted(seen) == list(range(n))  # disjoint and covering
        elif drop_last:
            assert len(set(seen)) == len(seen) == world * ((n // world) // 2 * 2)  # the tail and short batches dropped
        else:
            assert set(seen) == set(range(n)) and len(seen) == -(-n // world) * world  # padded from the start
    assert not all(np.array_equal(a, b) for a, b in zip(epochs[0], epochs[1]))  # a new shuffle each epoch
    with pytest.raises(ValueError, match="seed"):
        gpugrad.utils.data.DataLoader(X, y, rank=0, world_size=2)


def test_world_of_one_needs_no_mpi_and_ddp_is_plain_training():
    assert launcher_env({}) == (0, 1, 0)
    assert launcher_env({"PMI_RANK": "1", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1"}) == (1, 4, 1)
    assert launcher_env({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3",
                         "OMPI_COMM_WORLD_LOCAL_RANK": "0"}) == (2, 3, 0)
    with pytest.raises(DistributedError, match="outside"):
        launcher_env({"RANK": "4", "WORLD_SIZE": "2"})
    results = []
    for wrap in (False, True):
        gpugrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        net = nn.parallel.DistributedDataParallel(model, comm=LocalCommunicator()) if wrap else model
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = gpugrad.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)), gpugrad.tensor(np.array([0, 1, 1, 0, 1]))
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        results.append(np.concatenate([p.numpy().ravel() for p in model.parameters()]))
        del net
    np.testing.assert_array_equal(results[0], results[1])


def test_no_sync_accumulates_and_the_next_backward_reduces():
    gpugrad.manual_seed(0)
    model = nn.Linear(3, 2)
    ddp = nn.parallel.DistributedDataParallel(model, comm=LocalCommunicator())
    x = gpugrad.ones((4, 3))
    with ddp.no_sync():
        ddp(x).sum().backward()
    first = model.weight.grad.numpy().copy()
    ddp(x).sum().backward()
    np.testing.assert_allclose(model.weight.grad.numpy(), 2 * first)


def test_bench_nproc_reports_the_scaling_efficiency(tmp_path):
    _mpi()
    out = tmp_path / "scaling.json"
    done = subprocess.run([sys.executable, "-m", "gpugrad", "bench", "--nproc", "2", "--device", "cpu", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["nproc"] == 2 and result["one_ms"] > 0 and result["ranks_ms"] > 0
    # NOTE: a figure, not a bound: on a shared machine the two timings move apart by any factor
    assert np.isfinite(result["scaling_efficiency"]) and result["scaling_efficiency"] > 0
    assert result["scaling_efficiency"] == pytest.approx(result["speedup"] / 2)  # speedup / N, perfect = 1.00
    assert "speedup" in done.stdout and "scaling efficiency" in done.stdout and "(perfect 1.00)" in done.stdout


@pytest.mark.parametrize("low", ["bfloat16", "float16"])
def test_ddp_under_autocast_reduces_float32_gradients(low):
    pytest.importorskip("ml_dtypes")
    results = []
    for wrap in (False, True):
        gpugrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8, activation="relu"), nn.Linear(8, 2))
        net = nn.parallel.DistributedDataParallel(model, comm=LocalCommunicator()) if wrap else model
        opt = optim.AdamW(model.parameters(), lr=1e-2)
        x = gpugrad.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
        for _ in range(4):
            opt.zero_grad()
            with gpugrad.autocast(low):
                loss = F.cross_entropy(net(x), gpugrad.tensor(np.array([0, 1, 1, 0, 1])))
            loss.backward()
            assert all(p.grad.dtype == np.float32 for p in model.parameters())
            opt.step()
        results.append(np.concatenate([p.numpy().ravel() for p in model.parameters()]))
        del net
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.gpu
def test_nccl_broadcasts_bfloat16_and_bool_as_bits_and_refuses_their_all_reduce(cuda):
    """cupyx.distributed gives NCCL no bfloat16 and no bool (TypeError 'Unknown dtype'): a DDP's first broadcast of a
    bfloat16 model or a bool buffer failed. Broadcasts move the bits as a same-size type NCCL has; an all-reduce, which must
    add, is refused with the fix."""
    import cupy
    from gpugrad.distributed.nccl import NCCLCommunicator
    comm = NCCLCommunicator(0, 1, 0)
    dtypes = [np.dtype(bool), np.dtype(np.float32)] + ([np.dtype(gpugrad.bfloat16)] if gpugrad.bfloat16 else [])
    for dtype in dtypes:
        array = cupy.asarray(np.arange(6).reshape(2, 3).astype(dtype))
        assert comm.broadcast(array, 0) is array and array.dtype == dtype
    if gpugrad.bfloat16 is not None:
        with pytest.raises(DistributedError, match=r"cannot all-reduce bfloat16 \(shape \(4,\)\)"):
            comm.all_reduce(cupy.asarray(np.ones(4, gpugrad.bfloat16)))


@pytest.mark.gpu
def test_nccl_rendezvous_goes_through_mpi_only_under_an_mpi_launcher_of_the_jobs_size(cuda, tmp_path):
    """use_mpi=True whenever mpi4py imported: under a RANK/WORLD_SIZE launcher each process was an MPI world of one,
    made its own NCCL id, and NcclCommunicator waited forever. Under mpiexec -n 2 (in real ranks), MPI's world
    has 2 processes: yes for a job of 2, no for a job of 3, no without an MPI launcher's variables."""
    _mpi()
    script = tmp_path / "rank.py"
    script.write_text("import json\nfrom gpugrad.distributed.nccl import use_mpi\n"
                      "print(json.dumps([use_mpi(2), use_mpi(3), use_mpi(2, {'RANK': '0', 'WORLD_SIZE': '2'})]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "cupy_standin"), str(ROOT)])}
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # the two ranks share one pipe: their lines may run together, so each JSON list is read on its own
    assert [json.loads(found) for found in re.findall(r"\[[^\]]*\]", done.stdout)] == [[True, False, False]] * 2
    assert not __import__("gpugrad.distributed.nccl", fromlist=["use_mpi"]).use_mpi(
        2, {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
