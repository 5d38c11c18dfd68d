"""Grad mode: whether operations record a graph (``no_grad``, ``enable_grad``), per thread."""
from __future__ import annotations

import contextlib
import threading


class _State(threading.local):
    enabled = True  # a class default: every new thread starts with grad mode on


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class _GradMode(contextlib.ContextDecorator):
    enabled = True

    def _recreate_cm(self):  # a fresh instance per decorated call: recursion and threads nest correctly
        return type(self)()

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False


class no_grad(_GradMode):
    """Context manager and decorator: operations inside record no graph."""
    enabled = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside ``no_grad``."""
    enabled = True


class set_grad_enabled(_GradMode):
    """Grad mode on or off: from the call on, or for a ``with`` block or a decorated function (restored at its
    end), as PyTorch's: used as a decorator it sets nothing when the function is defined."""

    def __init__(self, mode: bool):
        self.enabled = bool(mode)
        self._previous = is_grad_enabled()
        _state.enabled = self.enabled

    def __call__(self, function):
        _state.enabled = self._previous  # a decorator: the mode applies inside the function's calls only
        return super().__call__(function)

    def _recreate_cm(self):
        return _GradModeBlock(self.enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False


class _GradModeBlock(_GradMode):
    """One call of a function decorated with ``set_grad_enabled(mode)``."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _recreate_cm(self):
        return type(self)(self.enabled)

