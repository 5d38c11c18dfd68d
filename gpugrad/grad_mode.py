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
