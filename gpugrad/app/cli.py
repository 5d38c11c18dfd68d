"""The ``gpugrad`` command (also ``python -m gpugrad``): info, train, bench, lecture."""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
from pathlib import Path

import numpy as np

from .. import __version__
from ..amp import PRECISIONS
from ..backend import CudaUnavailableError
from ..distributed import DistributedError, launcher_env
from ..nn.layers import MLP_ACTIVATIONS
from ..utils.data import DATASETS
from .bench_dist import run as run_distributed
from .benchmark import add_arguments as add_bench_arguments
from .benchmark import run as run_bench
from .launch import as_rank, launch_ranks, launched, leave_as_rank, say
from .lecture import run as run_lecture
from .runs import new_run_folder
from .train import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig, TrainingStopped, check_resume, train




def _sizes(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 256,256, got {text!r}") from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive integers, got {text!r}")
    return sizes


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = _Parser(prog="gpugrad", description="Array autodiff on NVIDIA GPUs (CuPy) and CPUs (numpy).")
    parser.add_argument("--version", action="version", version=f"gpugrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("info", help="versions, BLAS, and every visible GPU")

    def choices(names):
        return "one of " + ", ".join(names)

    train = commands.add_parser("train", help="train an MLP on a bundled data set",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--dataset", default="digits", help=choices(DATASETS))
    train.add_argument("--data", default=None, metavar="FILE",
                       help="train on your own data instead: an .npz with arrays X and y, or a .csv (see --label); "
                            "split 80/20 stratified by class")
    train.add_argument("--label", default=None, help="the .csv column that holds the labels")
    train.add_argument("--hidden", type=_sizes, default=(256, 256), help="hidden layer sizes, e.g. 256,256")
    train.add_argument("--activation", default="relu", help=choices(MLP_ACTIVATIONS))
    train.add_argument("--loss", default="cross_entropy", help=choices(LOSSES))
    train.add_argument("--optimizer", default="adam", help=choices(OPTIMIZERS) + " (sgd with momentum 0.9)")
    train.add_argument("--lr", type=float, default=None, help="learning rate (None: 1e-3 for adam, 0.1 for sgd)")
    train.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled decay (adam) or L2 (sgd)")
    train.add_argument("--schedule", default="constant", help="learning rate per epoch: " + choices(SCHEDULES))
    train.add_argument("--epochs", type=int, default=30, help="passes over the training set (with --resume, given: "
                       "a finished run is trained further to that many)")
    train.add_argument("--batch-size", type=int, default=64, help="samples per step")
    train.add_argument("--device", default="auto", help="auto (a GPU when usable), cpu, cuda or cuda:N")
    train.add_argument("--precision", default="fp32", help=choices(PRECISIONS) + ": tf32 GEMMs on a GPU, bf16 autocast, "
                       "fp16 autocast with loss scaling")
    train.add_argument("--nproc", type=int, default=1, help="data-parallel ranks, started through mpiexec (each takes "
                       "--batch-size samples per step; on GPUs rank i uses cuda:i of its node)")
    train.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                       help="capture the training step once and replay it (gpugrad.compile); --no-compile runs it eagerly")
    train.add_argument("--seed", type=int, default=0, help="seeds the weights and the shuffling")
    train.add_argument("--out", default=None, help="output folder (None: runs/<timestamp>)")
    train.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help="continue an interrupted run from its folder (its options are used)")

    add_bench_arguments(commands.add_parser("bench", help="training-step benchmarks: gpugrad, numpy, PyTorch"))
    lecture = commands.add_parser("lecture", help="the lecture's worked examples, step by step, with pictures")
    lecture.add_argument("--example", default="all",
                         choices=("add-mul", "sigmoid-neuron", "max-router", "l2-vector", "two-layer", "all"))
    lecture.add_argument("--out", default="lecture", help="folder for the graph pictures (default ./lecture)")
    return parser


def info() -> int:
    print(f"gpugrad {__version__}")
    print(f"Python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    print(f"numpy {np.__version__}; BLAS: {_blas()}")
    try:
        import cupy
    except ImportError:
        print("cupy: not installed (pip install 'gpugrad[cuda12]' or 'gpugrad[cuda13]' for GPUs)")
        return 0
    print(f"cupy {cupy.__version__}")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        print(f"CUDA driver {cupy.cuda.runtime.driverGetVersion()}, runtime {cupy.cuda.runtime.runtimeGetVersion()}")
    except Exception as error:
        print(f"no usable CUDA device: {error}")
        return 0
    for i in range(count):
        props = cupy.cuda.runtime.getDeviceProperties(i)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"cuda:{i}: {name}, {props['totalGlobalMem'] / 2 ** 30:.1f} GiB, "
              f"compute capability {props['major']}.{props['minor']}, {props['multiProcessorCount']} SMs; "
              f"tensor cores: {_precisions(props['major'])}")
    return 0


def _precisions(major: int) -> str:
    """What --precision can use on a GPU of this compute capability (Volta 7.0: fp16; Ampere 8.0: bf16, tf32)."""
    return "fp16, bf16, tf32" if major >= 8 else "fp16 (no bf16 or tf32 tensor cores)" if major >= 7 else "none"


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
        libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            return ", ".join(libs)
    except ImportError:
        pass
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown"


def main(argv=None) -> int:
    as_rank()  # a rank of --nproc: its launcher's Ctrl-C is handled from here on
    try:
        return _command(build_parser().parse_args(argv), argv)
    finally:
        leave_as_rank()


def _command(args, argv) -> int:
    if args.command == "info":
        return info()
    if args.command == "train":
        return _train(args, argv)
    try:
        if args.command == "bench":
            return run_distributed(args) if args.nproc > 1 else run_bench(args)
        return run_lecture(args)
    except KeyboardInterrupt:  # what was printed stays; one line, no traceback
        if launcher_env()[1] > 1:
            os._exit(130)  # a rank: its launcher says it (NOTE: no MPI finalize while another rank may wait)
        print(f"gpugrad {args.command}: interrupted", file=sys.stderr)
        return 130


def _train(args, argv=None) -> int:
    config = TrainConfig(dataset=args.dataset, data=args.data, label=args.label, hidden=args.hidden, activation=args.activation, loss=args.loss,
                         optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                         epochs=args.epochs,
                         batch_size=args.batch_size, schedule=args.schedule,
                         device=args.device, compile=args.compile, precision=args.precision, nproc=args.nproc,
                         seed=args.seed, out=args.out)
    try:
        if args.resume is None:
            config.check()  # a bad option is reported before a run folder is made for it
            if config.out is None:
                config.out = str(new_run_folder())
        else:  # a run of N ranks resumes with N ranks, without being told
            config.nproc = _saved_nproc(Path(args.resume))
        given = any(a == "--epochs" or a.startswith("--epochs=") for a in (argv if argv is not None else sys.argv[1:]))
        if config.nproc > 1 and launcher_env()[1] == 1:  # not started by a launcher yet: start the ranks
            if args.resume is not None:
                check_resume(args.resume, args.epochs if given else None)  # said once, not by every rank
            finished = launch_ranks(config.nproc, list(argv or sys.argv[1:]) + (["--out", config.out] if
                                                                                           args.resume is None else []))
            if finished.interrupted and finished.status:
                if not finished.said:  # the ranks were ended at once (a second Ctrl-C), or before their first step
                    _interrupted_at_once(args.resume or config.out)
                return finished.status if finished.status > 0 else 130
            if finished.status == -signal.SIGPIPE:  # mpiexec wrote to a closed pipe (gpugrad train | head)
                raise BrokenPipeError
            if finished.status < 0:
                print(f"gpugrad train: mpiexec was ended by {signal.Signals(-finished.status).name}; the ranks with it"
                      + _kept(args.resume or config.out), file=sys.stderr)
                return 1
            return finished.status
        train(config, log=_print_or_stop, resume=args.resume, epochs=args.epochs if args.resume and given else None)
    except (ValueError, CudaUnavailableError, ImportError, DistributedError) as error:
        print(f"gpugrad train: error: {error}", file=sys.stderr)
        return 2
    except TrainingStopped as stopped:
        if launcher_env()[0] == 0:  # every rank stops after the same step; rank 0 alone says so
            say(f"gpugrad train: {stopped}")
        return stopped.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the steps began
        rank, world, _ = launcher_env()
        if rank == 0 and not launched():  # a launched rank's launcher says it, once every rank has gone
            _interrupted_at_once(args.resume or config.out)
        if world == 1:
            return 130
        # NOTE: out at once, without MPI's finalize: a rank that finalizes while another waits in an all-reduce for
        # it would wait forever; hydra's proxy ends the others when one leaves without it
        os._exit(130)
    except MemoryError as error:
        detail = str(error).splitlines()[0] if str(error) else "an allocation failed"
        print(f"gpugrad train: out of memory ({detail}); try smaller --hidden or --batch-size", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _silence_stdout()
        print("gpugrad train: the output pipe was closed; stopped (files written so far are kept)", file=sys.stderr)
        return 1
    return 0


def _interrupted_at_once(run) -> None:
    print("gpugrad train: interrupted at once" + _kept(run), file=sys.stderr, flush=True)


def _kept(run) -> str:
    return "; " + (f"the last checkpoint is kept: continue with gpugrad train --resume {run}" if
                   run and Path(run, "checkpoint.npz").exists() else "before its first checkpoint")


def _saved_nproc(run) -> int:
    """The ranks a run folder was trained with (1 where its config cannot be read: train() says what is wrong)."""
    try:
        return int(json.loads((run / "config.json").read_text())["options"].get("nproc", 1))
    except (OSError, ValueError, KeyError, TypeError):
        return 1


def _print_or_stop(*args):
    print(*args, flush=True)  # a closed pipe (gpugrad train | head) raises here, between epochs


def _silence_stdout():
    """After a closed pipe, point stdout at /dev/null so that Python's exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
