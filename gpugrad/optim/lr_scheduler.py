"""Learning-rate schedules, PyTorch's names and semantics: ``scheduler.step()`` once per epoch (or per
batch for OneCycleLR), after ``optimizer.step()``; each group's ``lr`` is written in place.

Each schedule is a closed form of the step count and the group's initial learning rate, so two
schedules stepping one optimizer at once do not chain (use ``SequentialLR`` to switch between them).
"""
from __future__ import annotations

import bisect
import math

from ..seam import refuse_in_capture


def _outside_capture(scheduler):
    refuse_in_capture(f"{type(scheduler).__name__}.step()", "step the scheduler outside the compiled step (after it, once per "
                      "epoch or batch)")


class LRScheduler:
    def __init__(self, optimizer, last_epoch=-1):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__}: expected an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr, epoch) -> float:
        raise NotImplementedError

    def _adopt_new_groups(self):
        """A group added to the optimizer since is scheduled from the learning rate it has now, as PyTorch's
        chainable schedules do: its base is the one whose closed form gives that rate at this epoch (each
        schedule is affine in its base: lr_at(b, e) = A(e) + B(e) b)."""
        for group in self.optimizer.param_groups[len(self.base_lrs):]:
            offset = self.lr_at(0.0, self.last_epoch)
            slope = self.lr_at(1.0, self.last_epoch) - offset
            base = (group["lr"] - offset) / slope if slope else group["lr"]
            group.setdefault("initial_lr", base)
            self.base_lrs.append(group["initial_lr"])

    def step(self, epoch=None):
        _outside_capture(self)
        self._adopt_new_groups()
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        self._last_lr = [self.lr_at(base, self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    """lr = initial * lr_lambda(epoch) (one function, or one per parameter group), as PyTorch's."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.lr_lambdas = _per_group(self, optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def step(self, epoch=None):
        _outside_capture(self)
        self._adopt_new_groups()
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        self._last_lr = [base * self._factor(i, self.last_epoch) for i, base in enumerate(self.base_lrs)]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def _factor(self, i, epoch):
        return self.lr_lambdas[min(i, len(self.lr_lambdas) - 1)](epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self._factor(0, epoch)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class MultiplicativeLR(LambdaLR):
    """lr = the last lr * lr_lambda(epoch) from the first step on (initial * the product of the factors), as
    PyTorch's."""

    def _factor(self, i, epoch):
        function, product = self.lr_lambdas[min(i, len(self.lr_lambdas) - 1)], 1.0
        for e in range(1, epoch + 1):
            product *= function(e)
        return product


def _per_group(scheduler, optimizer, lr_lambda):
    name = type(scheduler).__name__
    functions = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda]
    if not all(callable(f) for f in functions):
        raise TypeError(f"{name}: lr_lambda must be a function or a list of them, got {lr_lambda!r}")
    if isinstance(lr_lambda, (list, tuple)) and len(functions) != len(optimizer.param_groups):
        raise ValueError(f"{name}: {len(functions)} lr_lambda functions for {len(optimizer.param_groups)} groups")
    return functions


class StepLR(LRScheduler):
    """lr = initial * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be an integer >= 1, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = initial * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = initial * gamma ** epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """The factor goes linearly from start_factor to end_factor over total_iters epochs, then stays."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], "
                             f"got {start_factor} and {end_factor}")
        if not total_iters >= 1:
            raise ValueError(f"LinearLR: total_iters must be >= 1, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        done = min(self.total_iters, epoch) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class OneCycleLR(LRScheduler):
    """Leslie Smith's one cycle, stepped once per batch: from max_lr / div_factor up to max_lr over the
    first pct_start of total_steps, then down to that / final_div_factor (cosine or linear); momentum
    (or Adam's beta1) cycles the other way between base_momentum and max_momentum."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = int(total_steps), anneal_strategy, cycle_momentum
        up = float(pct_start * self.total_steps) - 1
        self.phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum")]
        if three_phase:
            self.phases += [(2 * up, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                            (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases += [(self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        self.uses_betas = "betas" in optimizer.defaults
        if cycle_momentum and not self.uses_betas and "momentum" not in optimizer.defaults:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
        maxima = max_lr if isinstance(max_lr, (list, tuple)) else [max_lr] * len(optimizer.param_groups)
        for group, top in zip(optimizer.param_groups, maxima):
            group.update(initial_lr=top / div_factor, max_lr=top, min_lr=top / div_factor / final_div_factor)
            if cycle_momentum:
                group.update(max_momentum=max_momentum, base_momentum=base_momentum)
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def step(self, epoch=None):
        _outside_capture(self)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self.last_epoch > self.total_steps:  # NOTE: PyTorch's bound: one step past the last phase is allowed
            raise ValueError(f"OneCycleLR: stepped {self.last_epoch} times with total_steps={self.total_steps}")
        self._last_lr = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self.phases):
                if self.last_epoch <= end_step or i == len(self.phases) - 1:
                    pct = (self.last_epoch - start_step) / (end_step - start_step)
                    group["lr"] = self._anneal(group[lr_from], group[lr_to], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[momentum_from], group[momentum_to], pct)
                        if self.uses_betas:
                            group["betas"] = (momentum, *group["betas"][1:])
                        else:
                            group["momentum"] = momentum
                    break
                start_step = end_step
            self._last_lr.append(group["lr"])


class SequentialLR(LRScheduler):
    """``schedulers[i]`` runs from ``milestones[i - 1]`` on, each restarted at its milestone."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                             f"got {len(milestones)}")
        self.optimizer, self.schedulers, self.milestones = optimizer, list(schedulers), list(milestones)
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self.schedulers[0].step(0)
        self._last_lr = self.schedulers[0].get_last_lr()

    def step(self, epoch=None):
        _outside_capture(self)
        self.last_epoch += 1
        index = bisect.bisect_right(self.milestones, self.last_epoch)
        scheduler = self.schedulers[index]
        if index > 0 and self.milestones[index - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "milestones": self.milestones, "_last_lr": self._last_lr,
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state_dict):
        for scheduler, saved in zip(self.schedulers, state_dict["schedulers"]):
            scheduler.load_state_dict(saved)
        self.last_epoch, self.milestones, self._last_lr = (state_dict[k] for k in ("last_epoch", "milestones",
                                                                                   "_last_lr"))


class ReduceLROnPlateau:
    """Multiply the learning rates by ``factor`` when ``step(metric)`` has not improved for ``patience``
    steps (improved: below best * (1 - threshold) in "min" mode, "rel" threshold), then wait ``cooldown``."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        if factor >= 1.0 or mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: need factor < 1, mode 'min' or 'max', threshold_mode 'rel' or "
                             f"'abs'; got {factor}, {mode!r}, {threshold_mode!r}")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        groups = optimizer.param_groups
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [group["lr"] for group in groups]

    def _better(self, value):
        if self.mode == "min":
            edge = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return value < edge
        edge = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return value > edge

    def step(self, metrics):
        _outside_capture(self)
        value = float(metrics)
        self.last_epoch += 1
        if self._better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, floor)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
