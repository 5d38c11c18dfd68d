"""A compiled step is never stale: it guards on the state its capture read and captures again when that state
changes (train / eval, a frozen parameter, a rebound array, the optimizer's groups and structural
hyperparameters, grad mode, autocast), and refuses at the capture what it could not replay (a scheduler's step,
add_param_group, train() / eval(), a new hook, manual_seed). Each change is checked by twins: the same model run
eagerly and compiled, compared after every call (bit for bit on the CPU)."""
import warnings

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
import gpugrad.nn as nn
import gpugrad.optim as optim
from gpugrad.capture import CaptureError


def _same(a, b, device, what):
    if device == "cpu":
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), what
    else:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=what)


def _batch(device, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return (gpugrad.tensor(rng.standard_normal((n, 12)).astype(np.float32), device=device),
            gpugrad.tensor(rng.integers(0, 4, n), device=device))


def _model():
    return nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


class Twins:
    """One model and optimizer run eagerly, an identical pair through gpugrad.compile; ``call`` runs both from
    the same seed and compares the losses, the parameters and the buffers."""

    def __init__(self, device, make_opt=lambda p: optim.SGD(p, lr=0.05, momentum=0.9), **options):
        self.device, self.pairs = device, []
        for compiled in (False, True):
            gpugrad.manual_seed(0)
            model = _model().to(device)
            opt = make_opt(model.parameters())

            def step(x, y, model=model, opt=opt):
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                return loss
            self.pairs.append((model, opt, gpugrad.compile(step, **options) if compiled else step))
        self.run = self.pairs[1][2]

    def both(self, change):
        for model, opt, _ in self.pairs:
            change(model, opt)

    def call(self, x, y, seed, what=""):
        losses = []
        for model, opt, step in self.pairs:
            gpugrad.manual_seed(seed)
            losses.append(step(x, y).numpy().copy())
        _same(losses[1], losses[0], self.device, f"loss {what}")
        (eager, _, _), (compiled, _, _) = self.pairs
        for (name, a), (_, b) in zip(eager.state_dict().items(), compiled.state_dict().items()):
            _same(b.numpy(), a.numpy(), self.device, f"{name} {what}")


@pytest.mark.parametrize("first", ["train", "eval"])
def test_train_and_eval_after_the_capture_are_seen(device, first):
    """Before, eval() after the capture kept dropping and kept moving BatchNorm's statistics (and train() after an
    eval capture kept the eval step)."""
    twins, x, y = Twins(device), *_batch(device)
    twins.both(lambda m, o: getattr(m, first)())
    for i in range(3):
        twins.call(x, y, i, f"{first}, call {i}")
    other = "eval" if first == "train" else "train"
    twins.both(lambda m, o: getattr(m, other)())
    for i in range(10):
        twins.call(x, y, 10 + i, f"after {other}(), call {i}")
    twins.both(lambda m, o: getattr(m, first)())
    for i in range(10):
        twins.call(x, y, 30 + i, f"back to {first}(), call {i}")
    assert twins.run.captures == 2  # one per mode, both kept: switching back replays at once


def test_a_layer_run_fused_inside_a_sequential_is_guarded_too(device):
    """Sequential runs ReLU and the Dropout after it as one op, never calling the Dropout: its mode is guarded all
    the same (dropout switched off alone)."""
    twins, x, y = Twins(device), *_batch(device)
    for i in range(3):
        twins.call(x, y, i)
    twins.both(lambda m, o: m[3].eval())
    for i in range(5):
        twins.call(x, y, 10 + i, f"dropout in eval mode, call {i}")


def test_a_parameter_frozen_after_the_capture_stays_put(device):
    twins, x, y = Twins(device), *_batch(device)
    for i in range(3):
        twins.call(x, y, i)
    twins.both(lambda m, o: m[0].weight.requires_grad_(False))
    frozen = twins.pairs[1][0][0].weight.numpy().copy()
    for i in range(10):
        twins.call(x, y, 10 + i, f"frozen, call {i}")
    assert np.array_equal(twins.pairs[1][0][0].weight.numpy(), frozen)


def test_an_array_rebound_after_the_capture_is_used(device):
    """Before, ``p.data = new`` was ignored on the CPU (the replay kept the old buffer) and refused on a GPU."""
    twins, x, y = Twins(device), *_batch(device)
    for i in range(3):
        twins.call(x, y, i)

    def rebind(model, opt):
        model[4].weight.data = model[4].weight.data * 0.5
    twins.both(rebind)
    for i in range(10):
        twins.call(x, y, 10 + i, f"rebound, call {i}")


@pytest.mark.parametrize("make_opt", [lambda p: optim.SGD(p, lr=0.05, momentum=0.9), lambda p: optim.Adam(p, lr=1e-2)],
                         ids=["sgd-momentum", "adam"])
def test_optimizer_and_model_state_loaded_after_the_capture_are_used(device, make_opt):
    """Before, on a GPU a replaced optimizer state raised CaptureError at the next replay."""
    twins, x, y = Twins(device, make_opt=make_opt), *_batch(device)
    for i in range(4):
        twins.call(x, y, i)
    saved = [(m.state_dict(), o.state_dict()) for m, o, _ in twins.pairs]
    for i in range(3):
        twins.call(x, y, 10 + i)
    for (model, opt, _), (model_state, opt_state) in zip(twins.pairs, saved):
        model.load_state_dict({k: v.clone() for k, v in model_state.items()})
        opt.load_state_dict(opt_state)
    for i in range(10):
        twins.call(x, y, 20 + i, f"after load_state_dict, call {i}")


def test_a_tensor_the_step_writes_in_place_is_guarded(device):
    """A running total the step only writes (add_), rebound between calls: the replay writes the new one."""
    x, _ = _batch(device)
    totals = [gpugrad.zeros(4, device=device) for _ in range(2)]

    def step(x, total):
        total.add_(x[:4, 0])
    runs = [lambda x: step(x, totals[0]), gpugrad.compile(lambda x: step(x, totals[1]))]
    for i in range(6):
        if i == 3:
            for t in totals:
                t.data = t.data * 0 + 1  # a new array
        for run in runs:
            run(x)
        _same(totals[1].numpy(), totals[0].numpy(), device, f"call {i}")


def test_learning_rate_and_momentum_changes_take_effect(device):
    twins, x, y = Twins(device, make_opt=lambda p: optim.SGD(p, lr=0.05)), *_batch(device)
    for i in range(3):
        twins.call(x, y, i)
    for lr, momentum in ((0.01, 0.0), (0.01, 0.9), (0.2, 0.9), (0.05, 0.0)):
        twins.both(lambda m, o: o.param_groups[0].update(lr=lr, momentum=momentum))
        for i in range(10):
            twins.call(x, y, 10 + i, f"lr {lr}, momentum {momentum}, call {i}")


def test_grad_mode_and_autocast_are_guarded(device):
    model = nn.Linear(12, 4).to(device)
    x, _ = _batch(device)

    def step(x):
        y = model(x) * 2.0
        return y, gpugrad.tensor(float(y.requires_grad))  # (the host read is at the capture: a constant of it)
    run = gpugrad.compile(lambda x: step(x)[0] * (step(x)[0].requires_grad + 1.0))
    eager = lambda x: step(x)[0] * (step(x)[0].requires_grad + 1.0)  # noqa: E731
    for _ in range(3):
        _same(run(x).numpy(), eager(x).numpy(), device, "grad mode on")
    with gpugrad.no_grad():  # the step's Python saw requires_grad True at the capture: a new capture sees False
        for _ in range(3):
            _same(run(x).numpy(), eager(x).numpy(), device, "under no_grad")
    assert run.captures == 2
    with gpugrad.autocast("float16"):
        for _ in range(3):
            assert run(x).dtype == np.float16
    assert run.captures == 3 and run(x).dtype == np.float32


@pytest.mark.parametrize("schedule", ["StepLR", "OneCycleLR"])
def test_a_scheduler_stepped_inside_the_step_is_refused_at_the_capture(device, schedule):
    """Before, a StepLR stepped inside stayed frozen (lr 0.05 after 10 calls where eager gives 0.003125) and a
    OneCycleLR failed the first-replay check without saying why."""
    model = nn.Linear(12, 4).to(device)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 2, 0.5) if schedule == "StepLR" else \
        optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    x, y = _batch(device)

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    run = gpugrad.compile(step)
    run(x, y)
    with pytest.raises(CaptureError, match=rf"{schedule}.step\(\) inside a captured step.*step the scheduler outside"):
        run(x, y)


@pytest.mark.parametrize("what", ["add_param_group", "train", "eval", "register_forward_hook", "register_hook",
                                  "manual_seed"])
def test_what_cannot_be_replayed_is_refused_at_the_capture(device, what):
    model = nn.Linear(12, 4).to(device)
    extra = nn.Linear(2, 2).to(device)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = _batch(device)
    actions = {"add_param_group": lambda: opt.add_param_group({"params": extra.parameters()}),
               "train": model.train, "eval": model.eval,
               "register_forward_hook": lambda: model.register_forward_hook(lambda m, a, o: None),
               "register_hook": lambda: model.weight.register_hook(lambda g: g),
               "manual_seed": lambda: gpugrad.manual_seed(1)}

    def step(x, y):
        actions[what]()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    run = gpugrad.compile(step)
    run(x, y)  # the warm-up call, eager: allowed
    with pytest.raises(CaptureError, match=rf"{what}\(\) inside a captured step would run once"):
        run(x, y)


def test_a_step_that_keeps_failing_a_guard_warns_once_naming_it(device):
    twins, x, y = Twins(device, cache_size=1), *_batch(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(12):
            twins.both(lambda m, o: m.train(i % 2 == 0))
            twins.call(x, y, i, f"call {i}")
    mine = [w for w in caught if "keeps failing its guards" in str(w.message)]
    assert len(mine) == 1 and "training" in str(mine[0].message)


def test_a_steady_training_loop_captures_once(device):
    twins, x, y = Twins(device), *_batch(device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(20):
            twins.call(x, y, i)
    assert twins.run.captures == 1


def test_random_state_changes_between_calls_of_compiled_and_eager_twins(device):
    """A few hundred calls; between them, at random: train / eval, freezing and unfreezing, rebinding a parameter's
    array, learning-rate and momentum changes, and a new batch size."""
    rng = np.random.default_rng(7)
    twins = Twins(device, make_opt=lambda p: optim.SGD(p, lr=0.05))
    batches = [_batch(device, n=16, seed=0), _batch(device, n=16, seed=1), _batch(device, n=9, seed=2)]
    params = lambda model: [model[0].weight, model[0].bias, model[4].weight, model[4].bias]  # noqa: E731
    changes = {
        "train/eval": lambda m, o, k: m.train(not m.training),
        "freeze": lambda m, o, k: params(m)[k].requires_grad_(not params(m)[k].requires_grad),
        "rebind": lambda m, o, k: setattr(params(m)[k], "data", params(m)[k].data.copy()),
        "lr": lambda m, o, k: o.param_groups[0].update(lr=[0.01, 0.05, 0.1, 0.02][k]),
        "momentum": lambda m, o, k: o.param_groups[0].update(momentum=[0.0, 0.9, 0.5, 0.0][k]),
    }
    names = sorted(changes)
    calls = 300 if device == "cpu" else 100
    batch = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(calls):
            if rng.random() < 0.15:
                name, k = names[rng.integers(len(names))], int(rng.integers(4))
                twins.both(lambda m, o: changes[name](m, o, k))
            if rng.random() < 0.1:
                batch = int(rng.integers(len(batches)))
            twins.call(*batches[batch], i, f"call {i}")
    assert 1 < twins.run.captures <= 8
    assert len([w for w in caught if "keeps failing its guards" in str(w.message)]) <= 1  # once at most
