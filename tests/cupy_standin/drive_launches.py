"""Drive every kernel launch wrapper of gpugrad/cuda/kernels.py on CUDA tensors of the CuPy stand-in
(run with this folder first on PYTHONPATH); print as JSON the launches ([[name, [argument tags]], ...]), the
kernels the runtime compiles ({module: [name expressions]}) and its compile options."""
import json

import numpy as np

import cupy
from cuda.pathfinder import _libcublas
import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim
from gpugrad.cuda.kernels import KERNELS, compile_options


def cuda(array, grad=False):
    return gpugrad.tensor(array, device="cuda", requires_grad=grad)


def main():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64, np.float16) + ((gpugrad.bfloat16,) if gpugrad.bfloat16 is not None else ()):
        x = cuda(rng.standard_normal((8, 40)).astype(dtype), grad=True)
        for name in ("sigmoid", "tanh", "relu", "leaky_relu", "elu"):
            getattr(F, name)(x).sum().backward()
        w, b = cuda(np.ones((16, 40), dtype), grad=True), cuda(np.ones(16, dtype), grad=True)
        for activation in (None, "relu", "leaky_relu"):
            F.linear(x, w, b, activation=activation).sum().backward()
        F.layer_norm(x, (40,), cuda(np.ones(40, dtype), grad=True), cuda(np.zeros(40, dtype), grad=True)).sum().backward()
        for activation in (None, "relu"):
            F.dropout(x, 0.5, activation=activation).sum().backward()
    big = cuda(np.ones((1100, 1024), np.float32), grad=True)  # the bias gradient's two-launch path
    F.linear(big, cuda(np.ones((1024, 1024), np.float32), grad=True), cuda(np.ones(1024, np.float32), grad=True),
             activation="sigmoid").sum().backward()
    for dtype in (np.float32, np.float64):
        logits = cuda(rng.standard_normal((8, 5)).astype(dtype), grad=True)
        for labels in (np.arange(8) % 5, (np.arange(8) % 5).astype(np.int32)):
            F.cross_entropy(logits, cuda(labels)).backward()
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).to("cuda")
    data, target = cuda(rng.standard_normal((8, 5)).astype(np.float32)), cuda(np.arange(8) % 3)
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), lambda p: optim.AdamW(p)):
        opt, scaler = make(model.parameters()), gpugrad.GradScaler()
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(data), target).backward()
            opt.step()
            opt.zero_grad()
            scaler.scale(F.cross_entropy(model(data), target)).backward()
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
    # a captured step: the optimizer joins the CUDA graph; the learning rate is written before each replay
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    run = gpugrad.compile(lambda x, y: (opt.zero_grad(), F.cross_entropy(model(x), y).backward(), opt.step()),
                          check=False)  # the stand-in's graphs do nothing: no eager check possible
    cupy._SETS.clear()
    blas_calls = len(_libcublas.CALLS)
    for _ in range(4):
        run(data, target)
        schedule.step()
    steps = [s for entries in run._captures.values() for capture in entries for s in capture.tape.steps]
    handle = next(iter(run._captures.values()))[0].tape.handle
    capture = {"graphs": sum(not callable(s) for s in steps), "host_calls": sum(callable(s) for s in steps),
               "learning_rates_written": [float(values[0]) for values in cupy._SETS if values.shape == (4,)],
               "capture handle": [name for name, h in _libcublas.CALLS[blas_calls:] if h == handle],
               "other handles": [name for name, h in _libcublas.CALLS[blas_calls:] if h != handle]}
    for change in ("momentum", "state"):  # what the graph cannot follow fails a guard: the step is captured again
        if change == "momentum":
            opt.param_groups[0]["momentum"] = 0.0
        else:
            opt.param_groups[0]["momentum"] = 0.9
            opt.load_state_dict(opt.state_dict())
        before = run.captures
        try:
            for _ in range(3):  # an eager warm-up call under the new state, the capture, a replay
                run(data, target)
            capture[f"{change} changed"] = f"captured again: {run.captures - before} new"
        except gpugrad.capture.CaptureError as error:
            capture[f"{change} changed"] = str(error)
    # an optimizer without a kernel, its first group without gradients: a host call between graphs
    frozen = nn.Linear(2, 2).to("cuda")
    rms = optim.RMSprop([{"params": frozen.parameters()}, {"params": model.parameters()}], lr=1e-3)
    run = gpugrad.compile(lambda x, y: (rms.zero_grad(), F.cross_entropy(model(x), y).backward(), rms.step()),
                          check=False)
    for _ in range(3):
        run(data, target)
    capture["rmsprop host calls"] = sum(callable(s) for e in run._captures.values() for c in e for s in c.tape.steps)
    launches = {(name, tuple(tags)) for name, tags in cupy._CALLS}
    print(json.dumps({"launches": sorted([name, list(tags)] for name, tags in launches), "kernels": KERNELS,
                      "options": list(compile_options(True)), "capture": capture}))


if __name__ == "__main__":
    main()
