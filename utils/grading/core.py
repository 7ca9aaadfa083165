"""Grader machinery: run a student's function safely, compare with the reference, explain failures.

A failed check raises `GradingError`; IPython shows its message without a traceback, so a student sees one
readable line, and nbval still fails a master notebook whose solution breaks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

Hint = tuple[Callable, str]  # (predicate(out, *args) -> bool spotting a known mistake, what to tell the student)


class GradingError(AssertionError):
    """A check failed; the message is the whole explanation."""

    def _render_traceback_(self) -> list[str]:  # used by IPython instead of the traceback
        return [f"\033[31m✗ {self}\033[0m"]


class ExerciseNotDone(GradingError):
    """The student's function still raises NotImplementedError."""


def _clone(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def call(fn: Callable, args: Sequence, name: str):
    """Run fn(*args) on copies of args; turn every way it can go wrong into a readable GradingError."""
    copies = [_clone(a) for a in args]
    try:
        out = fn(*copies)
    except NotImplementedError:
        raise ExerciseNotDone(f"{name}: not implemented yet. Replace `raise NotImplementedError` with your code.") from None
    except Exception as exc:  # noqa: BLE001 - any student error becomes a hint
        inputs = ", ".join(_describe(a) for a in args)
        raise GradingError(f"{name} raised {type(exc).__name__}: {exc} (inputs: {inputs})") from None
    for original, copy in zip(args, copies, strict=True):
        if isinstance(original, torch.Tensor) and not torch.equal(original, copy):
            raise GradingError(f"{name} modified its input tensor in place; work on a copy (e.g. x.clone()).")
    return out


def matches(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape, infinities in the same places, finite entries allclose."""
    if a.shape != b.shape:
        return False
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb) or not torch.equal(a[~fa], b[~fb]):
        return False
    return torch.allclose(a[fa].double(), b[fb].double(), atol=atol, rtol=rtol)


def same_as(wrong: Callable) -> Callable:
    """A hint predicate: the student's output equals that of a known-wrong implementation."""
    return lambda out, *args: matches(out, wrong(*args))


def compare(out, expected: torch.Tensor, name: str, args: Sequence, hints: Iterable[Hint] = (),
            atol: float = 1e-5, rtol: float = 1e-4) -> None:  # fmt: skip
    """Raise a GradingError with the most specific explanation if `out` is not `expected`."""
    if not isinstance(out, torch.Tensor):
        raise GradingError(f"{name} should return a torch.Tensor, got {_describe(out)}.")
    if out.shape != expected.shape:
        raise GradingError(f"{name} returned shape {tuple(out.shape)}, expected {tuple(expected.shape)}.")
    if out.dtype.is_floating_point != expected.dtype.is_floating_point:
        raise GradingError(f"{name} returned dtype {out.dtype}, expected a {expected.dtype} tensor.")
    if torch.isnan(out).any() and not torch.isnan(expected).any():
        raise GradingError(f"{name} returned NaN. Large logits overflow exp(): subtract the maximum first.")
    if matches(out, expected, atol, rtol):
        return
    for spots_mistake, message in hints:
        if spots_mistake(out, *[_clone(a) for a in args]):
            raise GradingError(f"{name}: {message}")
    n_out, n_expected = (~torch.isfinite(out)).sum().item(), (~torch.isfinite(expected)).sum().item()
    if not torch.equal(torch.isfinite(out), torch.isfinite(expected)):
        raise GradingError(f"{name}: {n_out} entries are infinite where {n_expected} should be, or not the same ones.")
    finite = torch.isfinite(expected)
    diff = (out[finite].double() - expected[finite].double()).abs().max().item()
    raise GradingError(f"{name}: values differ from the reference (largest difference {diff:.3g}).")


def check_function(fn: Callable, reference: Callable, name: str, cases: Sequence[Sequence],
                   hints: Iterable[Hint] = (), **tolerances) -> None:  # fmt: skip
    """Check fn against reference on every case (a tuple of arguments); print one line on success.

    The cases must give different expected outputs, so that a function returning a constant cannot pass.
    """
    if not callable(fn):
        raise GradingError(f"Pass the function itself to the check, e.g. check_...({name}), not {_describe(fn)}.")
    hints = list(hints)
    for args in cases:
        compare(call(fn, args, name), reference(*args), name, args, hints, **tolerances)
    print(f"✓ {name}: passed {len(cases)} checks on fixed and random inputs.")
