"""Parameter groups and learning-rate schedules against torch.optim: the same learning rates (and
momenta, for OneCycleLR) over 100 steps, and state dicts that resume the sequence."""
import numpy as np
import pytest

import gpugrad
from gpugrad import nn, optim
from gpugrad.optim import lr_scheduler as ours_lr

torch = pytest.importorskip("torch")
theirs_lr = torch.optim.lr_scheduler

SCHEDULES = {
    "StepLR": (lambda o, m: m.StepLR(o, step_size=7, gamma=0.5)),
    "MultiStepLR": (lambda o, m: m.MultiStepLR(o, milestones=[10, 30, 31, 80], gamma=0.3)),
    "ExponentialLR": (lambda o, m: m.ExponentialLR(o, gamma=0.97)),
    "CosineAnnealingLR": (lambda o, m: m.CosineAnnealingLR(o, T_max=30, eta_min=0.001)),
    "LinearLR": (lambda o, m: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=40)),
    "OneCycleLR": (lambda o, m: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=101)),
    "OneCycleLR-3-linear": (lambda o, m: m.OneCycleLR(o, max_lr=0.4, epochs=10, steps_per_epoch=11, three_phase=True,
                                                     anneal_strategy="linear")),
    "SequentialLR": (lambda o, m: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=10),
                                                     m.ExponentialLR(o, gamma=0.9)], milestones=[12])),
}


def _pair(adam=False):
    w, b = nn.Parameter(gpugrad.ones(3)), nn.Parameter(gpugrad.ones(1))
    tw, tb = torch.ones(3, requires_grad=True), torch.ones(1, requires_grad=True)
    if adam:
        return (optim.Adam([{"params": [w]}, {"params": [b], "lr": 0.05}], lr=0.1),
                torch.optim.Adam([{"params": [tw]}, {"params": [tb], "lr": 0.05}], lr=0.1))
    return (optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.05, "weight_decay": 0.0}], lr=0.1, momentum=0.9,
                      weight_decay=0.01),
            torch.optim.SGD([{"params": [tw]}, {"params": [tb], "lr": 0.05, "weight_decay": 0.0}], lr=0.1,
                            momentum=0.9, weight_decay=0.01))


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


@pytest.mark.parametrize("adam", [False, True], ids=["sgd", "adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_the_learning_rates_equal_pytorchs_for_100_steps(name, adam):
    opt, torch_opt = _pair(adam)
    ours, theirs = SCHEDULES[name](opt, ours_lr), SCHEDULES[name](torch_opt, theirs_lr)
    for step in range(100):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, atol=1e-15, err_msg=str(step))
        np.testing.assert_allclose(_momenta(opt), _momenta(torch_opt), rtol=1e-12, err_msg=f"momentum {step}")
        opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        if step == 49:  # resume half way as a checkpoint does: the optimizer's and the schedule's state dicts
            saved, saved_opt = ours.state_dict(), opt.state_dict()
            ours = SCHEDULES[name](opt, ours_lr)
            opt.load_state_dict(saved_opt)
            ours.load_state_dict(saved)


def test_reduce_on_plateau_equals_pytorchs():
    opt, torch_opt = _pair()
    ours = ours_lr.ReduceLROnPlateau(opt, factor=0.5, patience=3, cooldown=2, min_lr=[0.001, 0.01])
    theirs = theirs_lr.ReduceLROnPlateau(torch_opt, factor=0.5, patience=3, cooldown=2, min_lr=[0.001, 0.01])
    metrics = np.concatenate([np.linspace(1, 0.5, 10), np.full(40, 0.5), np.linspace(0.5, 0.2, 10), np.full(40, 0.3)])
    for value in metrics:
        ours.step(value)
        theirs.step(value)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in torch_opt.param_groups], rel=1e-12)


def test_param_groups_take_their_own_hyperparameters_and_state_dicts_are_pytorchs_layout():
    w, b = nn.Parameter(gpugrad.ones(2)), nn.Parameter(gpugrad.ones(1))
    opt = optim.SGD([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.1, weight_decay=0.5)
    w.grad, b.grad = gpugrad.zeros(2), gpugrad.zeros(1)
    opt.step()
    assert w.numpy().tolist() == [np.float32(0.95)] * 2 and b.numpy().tolist() == [1.0]  # decay on w only
    state = opt.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0], [1]] and state["param_groups"][1]["weight_decay"] == 0
    opt.add_param_group({"params": [nn.Parameter(gpugrad.ones(3))], "lr": 0.5})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["momentum"] == 0.0
    with pytest.raises(ValueError, match="in more than one group"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['betas'\]"):
        opt.add_param_group({"params": [nn.Parameter(gpugrad.ones(1))], "betas": (0.9, 0.99)})
    with pytest.raises(ValueError, match="SGD: lr must be a finite number"):
        opt.add_param_group({"params": [nn.Parameter(gpugrad.ones(1))], "lr": float("nan")})
