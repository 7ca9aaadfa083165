"""What every grader test uses: a check passes with its tick, a check rejects with its hint on one line, and the
cheat that caches an answer per size of its inputs."""

import re

import numpy as np
import pytest
import torch

from utils.grading import GradingError


def passes(check, fn, capsys) -> None:
    check(fn)
    assert "✓" in capsys.readouterr().out


def _found(pattern: str, message: str) -> bool:
    """A fragment of the message, or a regular expression that matches it."""
    if pattern in message:
        return True
    try:
        return re.search(pattern, message) is not None
    except re.error:
        return False


def rejects(check, fn, *patterns: str) -> str:
    """The check raises a GradingError whose one-line message holds every pattern; returns the message."""
    with pytest.raises(GradingError) as info:
        check(fn)
    message = str(info.value)
    for pattern in patterns:
        assert _found(pattern, message), f"expected {pattern!r} in {message!r}"
    assert "\n" not in message and "Traceback" not in message and len(info.value._render_traceback_()) == 1
    return message


def not_done(*args):
    raise NotImplementedError


def sizes(*args) -> tuple:
    """Shapes of tensors and arrays (of each, in a sequence of tensors), lengths of other sequences, plain values."""

    def size(a):
        if isinstance(a, torch.Tensor | np.ndarray):
            return tuple(a.shape)
        if isinstance(a, list | tuple):
            return tuple(map(size, a)) if a and all(isinstance(x, torch.Tensor) for x in a) else len(a)
        return a if isinstance(a, bool | int | float | str) else type(a).__name__

    return tuple(map(size, args))


def memo(fn, key=sizes):
    """A cheat: computes the answer once per key of its inputs (by default their sizes) and returns it again."""
    cache = {}

    def cached(*args):
        k = key(*args)
        if k not in cache:
            cache[k] = fn(*args)
        return cache[k]

    return cached
