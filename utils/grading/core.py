"""Grader machinery: run a student's function safely, compare with the reference, explain failures.

A failed check raises `GradingError`; IPython shows its message without a traceback, so a student sees one
readable line, and nbval still fails a master notebook whose solution breaks.

What every check gets from here, whatever it grades:
- the student's function runs on deep copies of its inputs (tensors cloned, lists, dicts and objects copied), and
  the reference runs on its own copies *before* the student's call, so nothing the student does can change the
  expected value; an input changed in place is reported by name (`call`);
- torch modules handed over are not copied but guarded: a hook left registered (on any submodule, or globally),
  weights changed in place or a switch to training mode is reported and undone, so later cells see the model as
  it was (`call`, `guard_modules`);
- an exception, an unfinished stub, a wrong return type (a dict, a generator, None) or an output the check cannot
  read becomes one readable line, never a traceback from inside the grader (`call`, `expect_list`, `graded`);
- NaN or inf where the reference is finite gets its own message, with a per-check hint (`compare`);
- inputs drawn over the statement's whole domain by Hypothesis, the rules' edge cases given as explicit examples,
  and on a failure the *smallest* input on which the function and the reference disagree, shown in the message
  (`holds`, `check_property`). The draws are seeded by the check's name, so the same code gets the same verdict;
  set the environment variable WORKBOOK_FRESH_DRAWS to draw new inputs on every run (grading a class).
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import tempfile
import types
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, example, given, seed, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy

Hint = tuple[Callable, str]  # (predicate(out, *args) -> bool spotting a known mistake, what to tell the student)

NONFINITE = "look for 0/0, inf - inf, the log of 0, or a mean over an empty set."


class GradingError(AssertionError):
    """A check failed; the message is the whole explanation."""

    def _render_traceback_(self) -> list[str]:  # used by IPython instead of the traceback
        return [f"\033[31m✗ {self}\033[0m"]


class ExerciseNotDone(GradingError):
    """The student's function still raises NotImplementedError."""


# --- describing values -------------------------------------------------------------------------------------


def describe(x) -> str:
    """A short, readable description of any value a student's function may return."""
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, types.GeneratorType | Iterator):
        return f"{type(x).__name__} (an iterator: wrap it in list(...))"
    if isinstance(x, torch.nn.Module):
        return f"a torch module ({type(x).__name__})"
    if isinstance(x, dict):
        return f"dict with keys {list(x)[:6]!r}"[:120]
    return " ".join(f"{type(x).__name__} {x!r}".split())[:120]


def expect_list(out, name: str, length: int | None = None, what: str = "a list") -> list:
    """`out` as a list if it is a list or tuple (or a 1-d tensor / array), else a readable GradingError."""
    if isinstance(out, torch.Tensor | np.ndarray) and out.ndim == 1:
        out = out.tolist()
    if not isinstance(out, list | tuple):
        raise GradingError(f"{name} should return {what}, got {describe(out)}.")
    if length is not None and len(out) != length:
        raise GradingError(f"{name} returned {len(out)} items, expected {length}.")
    return list(out)


# --- copies, and noticing what a student's function changed ------------------------------------------------


def _modules_in(x) -> list[torch.nn.Module]:
    if isinstance(x, torch.nn.Module):
        return [x]
    if isinstance(x, list | tuple | set | frozenset):
        return [m for item in x for m in _modules_in(item)]
    if isinstance(x, dict):
        return [m for item in x.values() for m in _modules_in(item)]
    return []


def copies(args: Sequence) -> list:
    """Deep copies of args (tensors cloned); torch modules inside them are shared, not copied."""
    memo = {id(m): m for m in _modules_in(list(args))}
    return [copy.deepcopy(a, memo) for a in args]


def same(a, b) -> bool:
    """Structural equality that also holds for tensors, arrays, NaN and plain objects."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach().cpu(), b.detach().cpu()
        if a.is_floating_point():
            nan = a.isnan()
            return torch.equal(nan, b.isnan()) and torch.equal(a.masked_fill(nan, 0), b.masked_fill(nan, 0))
        return torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")))  # fmt: skip
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and a != a:
        return b != b
    if hasattr(a, "__dict__") and not isinstance(a, type | types.FunctionType | types.ModuleType):
        return same(vars(a), vars(b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without a usable ==: treat it as unchanged
        return True


def _advice(x) -> str:
    if isinstance(x, torch.Tensor):
        return "work on a copy (x.clone()) or use out-of-place operations (x / t, not x /= t)"
    if isinstance(x, list):
        return "use sorted(x) or list(x) + [...] instead of x.sort(), x.append() or x[i] = ..."
    if isinstance(x, dict):
        return "build a new dict (dict(x), {**x, ...}) instead of changing x"
    return "work on a copy (copy.deepcopy(x))"


def _parameter_names(fn: Callable, n: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [f"`{params[i].name}`" if i < len(params) else f"number {i + 1}" for i in range(n)]


# --- side effects on torch modules -------------------------------------------------------------------------

# each hook dict of a module, with the dicts that share its handle ids
_HOOK_DICTS = {"_forward_hooks": ("_forward_hooks_with_kwargs", "_forward_hooks_always_called"),
               "_forward_pre_hooks": ("_forward_pre_hooks_with_kwargs",), "_backward_hooks": (),
               "_backward_pre_hooks": ()}  # fmt: skip


def _hook_tables(modules: Iterable[torch.nn.Module]) -> list[tuple[str, str, dict]]:
    """(where, which dict, the dict) for every hook dict of every submodule, and for the global ones."""
    tables = []
    for attr, shared in _HOOK_DICTS.items():
        for name in (attr, *shared):
            table = getattr(torch.nn.modules.module, f"_global{name}", None)
            if table is not None:
                tables.append(("every module (a global hook)", name, table))
    for root in modules:
        for path, module in root.named_modules():
            for attr, shared in _HOOK_DICTS.items():
                for name in (attr, *shared):
                    table = getattr(module, name, None)
                    if table is not None:
                        tables.append((f"`{path or type(root).__name__}`", name, table))
    return tables


def _from_library(fn) -> bool:
    """A hook or method that transformers or torch installed itself (transformers hooks every layer the first time
    hidden states are requested): not the student's doing."""
    fn = getattr(fn, "func", fn)  # a functools.partial
    return (getattr(fn, "__module__", None) or "").split(".")[0] in ("transformers", "torch")


def _methods(module: torch.nn.Module) -> dict:
    """A module's instance attributes that hold functions (where a patched `forward` lands)."""
    return {key: value for key, value in vars(module).items()
            if callable(value) and not isinstance(value, torch.nn.Module | torch.Tensor | type)}  # fmt: skip


class ModuleGuard:
    """A snapshot of modules' hooks, weights, methods and training flags; `restore()` undoes and reports any change."""

    COPY_LIMIT = 50_000_000  # weights of a model up to this many numbers are copied (and restored if changed)

    def __init__(self, modules: Iterable[torch.nn.Module]):
        self.modules = list({id(m): m for m in modules}.values())
        self.hooks = [(table, dict(table)) for _, _, table in _hook_tables(self.modules)]
        small = sum(p.numel() for m in self.modules for p in m.parameters()) <= self.COPY_LIMIT
        self.weights = [(m, {k: self._snapshot(v, small) for k, v in m.state_dict(keep_vars=True).items()})
                        for m in self.modules]  # fmt: skip
        self.training = [(sub, sub.training) for m in self.modules for sub in m.modules()]
        self.methods = [(path, sub, _methods(sub)) for m in self.modules for path, sub in m.named_modules()]
        self.children = [(path, sub, dict(sub._modules)) for m in self.modules for path, sub in m.named_modules()]
        self.forwards = {cls: cls.__dict__.get("forward") for m in self.modules for cls in {type(s) for s in m.modules()}}

    @staticmethod
    def _snapshot(tensor: torch.Tensor, small: bool):
        """A copy of a small model's tensor; for a large model, where it lives and its in-place edit counter."""
        return tensor.detach().clone() if small else (tensor.data_ptr(), tensor._version, tensor.shape)

    def restore(self) -> list[str]:
        """Put everything back as it was; return what had changed, as phrases for a GradingError."""
        problems = [self._restore_structure(), self._restore_hooks(), self._restore_weights(), self._restore_mode()]
        return [p for p in problems if p]

    def _restore_structure(self) -> str | None:
        """Methods patched on a module or its class, submodules swapped (first: the weights are checked after)."""
        patched = []
        for path, sub, before in self.methods:
            now = _methods(sub)
            for key in [k for k in now if now[k] is not before.get(k) and not _from_library(now[k])]:
                patched.append(f"`{key}` on `{path or type(sub).__name__}`")
                if key in before:
                    setattr(sub, key, before[key])
                else:
                    delattr(sub, key)
        for cls, forward in self.forwards.items():
            if cls.__dict__.get("forward") is not forward:
                patched.append(f"`{cls.__name__}.forward`")
                if forward is None:
                    delattr(cls, "forward")
                else:
                    cls.forward = forward
        for path, sub, before in self.children:
            if list(sub._modules) != list(before) or any(sub._modules[k] is not v for k, v in before.items()):
                patched.append(f"the submodules of `{path or type(sub).__name__}`")
                sub._modules.clear()
                sub._modules.update(before)
        if patched:
            return (f"replaced {', '.join(patched[:3])}: leave the model's methods and submodules as they are (put "
                    "back what you replace, in a `finally:`, or use a hook that you remove). The check put them back.")
        return None

    def _restore_hooks(self) -> str | None:
        saved = {id(table): before for table, before in self.hooks}
        tables = _hook_tables(self.modules)
        library = {key for _, name, table in tables if name in _HOOK_DICTS
                   for key, hook in table.items() if key not in saved.get(id(table), {}) and _from_library(hook)}  # fmt: skip
        added = list(dict.fromkeys(where for where, name, table in tables
                                   if name in _HOOK_DICTS and set(table) - set(saved.get(id(table), {})) - library))  # fmt: skip
        for _, _, table in tables:
            before = saved.get(id(table), {})
            kept = {**before, **{key: value for key, value in table.items() if key in library}}
            if list(table) != list(kept):
                table.clear()
                table.update(kept)
        if added:
            return (f"left a hook registered on {', '.join(added[:3])}{' and more' if len(added) > 3 else ''}: "
                    "remove every hook you register (handle.remove() in a `finally:`, or a context manager), "
                    "or it changes every later forward pass. The check removed it.")
        return None

    def _restore_weights(self) -> str | None:
        changed, restored = [], True
        with torch.no_grad():
            for module, state in self.weights:
                now = module.state_dict(keep_vars=True)
                for key, before in state.items():
                    if key not in now:
                        continue
                    if isinstance(before, torch.Tensor):
                        if not same(now[key].detach(), before):
                            now[key].copy_(before)
                            changed.append(key)
                    elif (now[key].data_ptr(), now[key]._version, now[key].shape) != before:
                        changed.append(key)
                        restored = False
        if changed:
            return (f"changed the model's weights in place ({', '.join(changed[:3])}): leave the model as it "
                    f"was ({'the check restored them' if restored else 'reload the model before you go on'}).")
        return None

    def _restore_mode(self) -> str | None:
        flipped = [sub for sub, training in self.training if sub.training != training]
        for sub, training in self.training:
            sub.training = training
        return "switched the model between eval and training mode: leave its mode as it was." if flipped else None


@contextmanager
def guard_modules(*modules: torch.nn.Module, name: str = "your function"):
    """Run a block that gets a model; afterwards remove leftover hooks, restore weights and mode, and report them.

        with guard_modules(model, name="patchscope"):
            out = student_fn(model, ...)
    """
    guard = ModuleGuard(modules)
    try:
        yield
    finally:
        problems = guard.restore()
    if problems:
        raise GradingError(f"{name} {problems[0]}")


# --- running a student's function --------------------------------------------------------------------------


def call(fn: Callable, args: Sequence, name: str, mutable: Sequence[int] = (), modules: Sequence[torch.nn.Module] = ()):
    """Run fn(*args) on deep copies of args; turn every way it can go wrong into a readable GradingError.

    mutable: positions of arguments the function is meant to change (e.g. a memory store); they are passed as they
    are. Torch modules in args (and `modules`, e.g. a model the function reaches through a global) are passed as
    they are and guarded: hooks, weights and mode are checked and restored after the call.
    """
    if not callable(fn):
        raise GradingError(f"Pass the function itself to the check, e.g. check_...({name}), not {describe(fn)}.")
    unchecked = object()
    given, pristine = [], []
    for i, arg in enumerate(args):
        mine, spare = arg, unchecked  # meant to change, or a model: passed as it is
        if i not in mutable and not isinstance(arg, torch.nn.Module):
            try:
                mine, spare = copies([arg])[0], copies([arg])[0]
            except Exception:  # noqa: BLE001 - an object that cannot be copied (a database connection): as it is
                mine, spare = arg, unchecked
        given.append(mine)
        pristine.append(spare)
    guard = ModuleGuard([*_modules_in(list(args)), *modules])
    try:
        out = fn(*given)
    except NotImplementedError:
        raise ExerciseNotDone(f"{name}: not implemented yet. Replace `raise NotImplementedError` with your code.") from None
    except Exception as exc:  # noqa: BLE001 - any student error becomes a hint
        inputs = ", ".join(describe(a) for a in args)
        message = " ".join(f"{name} raised {type(exc).__name__}: {exc} (inputs: {inputs})".split())
        raise GradingError(message[:400]) from None
    finally:
        problems = guard.restore()
    if problems:
        raise GradingError(f"{name} {problems[0]}")
    names = _parameter_names(fn, len(args))
    for i, (after, before) in enumerate(zip(given, pristine, strict=True)):
        if before is not unchecked and not same(after, before):
            raise GradingError(f"{name} modified its input {names[i]} in place; {_advice(before)}.")
    return out


def graded(name: str):
    """Decorator for a check: any exception raised while reading the student's output becomes a GradingError."""

    def wrap(check: Callable) -> Callable:
        @functools.wraps(check)
        def checked(*args, **kwargs):
            try:
                return check(*args, **kwargs)
            except GradingError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. an output of the wrong type that the check tried to read
                message = f"{name}: the check could not read your function's output ({type(exc).__name__}: {exc})"
                raise GradingError(" ".join(message.split())[:400] + "; return what the docstring describes.") from None

        return checked

    return wrap


# --- comparing tensors -------------------------------------------------------------------------------------


def matches(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape, NaN and infinities in the same places, finite entries allclose."""
    if a.shape != b.shape:
        return False
    a, b = a.detach().cpu(), b.detach().cpu()
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb) or not torch.equal(torch.isnan(a), torch.isnan(b)):
        return False
    infinite = torch.isinf(a)
    if not torch.equal(a[infinite], b[infinite]):
        return False
    return torch.allclose(a[fa].double(), b[fb].double(), atol=atol, rtol=rtol)


def same_as(wrong: Callable) -> Callable:
    """A hint predicate: the student's output equals that of a known-wrong implementation."""

    def predicate(out, *args):
        return matches(out, wrong(*args))

    predicate.exact = True  # an exact diagnosis: tried before the message about NaN / inf
    return predicate


def confirmed(fn: Callable, name: str, mistakes: Iterable[tuple[Callable, str]], out, args: Sequence,
              probes: Sequence[Sequence], close: Callable, read: Callable = lambda out: out,
              mutable: Sequence[int] = ()) -> list[str]:  # fmt: skip
    """The messages of the known mistakes `(wrong_fn, message)` that explain `out` on args AND that fn makes again on
    every probe (fixed inputs on which the mistakes all differ): on one small input several mistakes, or a mistake
    and a stale cache, give the same output, and a hint must name the one the student made.

    close(got, wrong_out, args) -> bool; read(out) turns fn's raw output on a probe into what close compares;
    mutable: as for `call` (each probe is copied first all the same).
    """

    def made(wrong: Callable, inputs: Sequence, got) -> bool:
        try:
            return bool(close(got, wrong(*copies(inputs)), inputs))
        except Exception:  # noqa: BLE001 - a mistake that cannot run on this input, or an output of another shape
            return False

    suspects = [(wrong, message) for wrong, message in mistakes if made(wrong, args, out)]
    for probe in probes if suspects else ():
        try:
            seen = read(call(fn, copies(probe), name, mutable))
        except GradingError:
            return []
        suspects = [(wrong, message) for wrong, message in suspects if made(wrong, probe, seen)]
    return [message for _, message in suspects]


def _spots(predicate: Callable, out, args: Sequence) -> bool:
    """A hint's predicate on copies of the inputs; a predicate that fails on this input spots nothing."""
    try:
        with torch.no_grad():
            return bool(predicate(out, *copies(args)))
    except Exception:  # noqa: BLE001 - e.g. a wrong implementation that cannot run on this case
        return False


def compare(out, expected: torch.Tensor, name: str, args: Sequence, hints: Iterable[Hint] = (),
            atol: float = 1e-5, rtol: float = 1e-4, nonfinite_hint: str | None = None) -> None:  # fmt: skip
    """Raise a GradingError with the most specific explanation if `out` is not `expected`.

    Order of diagnoses: a known wrong implementation (`same_as` hints); NaN or inf where the reference is finite,
    with `nonfinite_hint` if the check gives one; the other hints; NaN / inf with a generic hint; infinities in the
    wrong places; the largest difference.
    """
    if not isinstance(out, torch.Tensor):
        raise GradingError(f"{name} should return a torch.Tensor, got {describe(out)}.")
    out, expected = out.detach().cpu(), expected.detach().cpu()
    if out.shape != expected.shape:
        raise GradingError(f"{name} returned shape {tuple(out.shape)}, expected {tuple(expected.shape)}.")
    if out.dtype.is_floating_point != expected.dtype.is_floating_point or (out.dtype == torch.bool) != (
            expected.dtype == torch.bool):
        raise GradingError(f"{name} returned dtype {out.dtype}, expected a {expected.dtype} tensor.")
    if matches(out, expected, atol, rtol):
        return
    hints = sorted(hints, key=lambda hint: not getattr(hint[0], "exact", False))  # exact diagnoses first
    finite, finite_expected = torch.isfinite(out), torch.isfinite(expected)
    bad = ~finite & finite_expected
    kind = "NaN" if torch.isnan(out[bad]).any() else "inf"
    nonfinite = f"{name} returned {kind} in {bad.sum().item()} entries where the reference is finite: "
    for spots_mistake, message in hints:
        if bad.any() and nonfinite_hint and not getattr(spots_mistake, "exact", False):
            break  # the check's own advice about NaN / inf beats a generic predicate
        if _spots(spots_mistake, out, args):
            raise GradingError(f"{name}: {message}")
    if bad.any():
        raise GradingError(nonfinite + (nonfinite_hint or NONFINITE))
    if not torch.equal(finite, finite_expected) or not same(out[~finite], expected[~finite].to(out.dtype)):
        raise GradingError(f"{name}: {(~finite_expected).sum().item()} entries should be infinite (or NaN); "
                           "yours are not the same ones.")  # fmt: skip
    diff = (out.double() - expected.double()).abs().max().item()
    shown = f": expected {show(expected)}, returned {show(out)}" if expected.numel() <= 32 else ""
    raise GradingError(f"{name}: values differ from the reference (largest difference {diff:.3g}){shown}.")


# --- showing inputs and outputs ----------------------------------------------------------------------------


def show(x, limit: int = 240) -> str:
    """A value as a student can read it: small tensors and arrays in full (4 significant digits), others described."""
    if isinstance(x, torch.nn.Module):
        return describe(x)
    if isinstance(x, torch.Tensor | np.ndarray):
        if x.size == 0 if isinstance(x, np.ndarray) else x.numel() == 0:
            text = f"{'tensor' if isinstance(x, torch.Tensor) else 'array'}([], shape={tuple(x.shape)})"
        elif (x.size if isinstance(x, np.ndarray) else x.numel()) <= 32:
            values = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
            body = np.array2string(values, precision=4, separator=", ", max_line_width=10_000).replace("\n", "")
            text = f"{'tensor' if isinstance(x, torch.Tensor) else 'array'}({' '.join(body.split())}, dtype={x.dtype})"
        else:
            return describe(x)
    elif isinstance(x, list | tuple) and x:
        inner = ", ".join(show(item, limit) for item in x)
        text = f"[{inner}]" if isinstance(x, list) else f"({inner}{',' if len(x) == 1 else ''})"
    elif isinstance(x, float):
        text = f"{x:.6g}"
    else:
        text = repr(x) if isinstance(x, str) else " ".join(repr(x).split())  # one line
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_call(name: str, reference: Callable | None, args: Sequence) -> str:
    """`name(a=..., b=...)` with the reference's parameter names."""
    names = _parameter_names(reference, len(args)) if reference else [""] * len(args)
    parts = [f"{n.strip('`')}={show(a)}" if n.startswith("`") else show(a) for n, a in zip(names, args, strict=True)]
    return f"{name}({', '.join(parts)})"


# --- drawing inputs: property-based checks -----------------------------------------------------------------

FRESH_DRAWS = "WORKBOOK_FRESH_DRAWS"  # set it to draw new inputs on every run, as when grading a class
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "workbook-hypothesis")  # not a .hypothesis folder beside the notebook


class _Stop(BaseException):
    """Carries a verdict out of Hypothesis at once, without shrinking (an exercise not done yet)."""

    def __init__(self, error: GradingError):
        super().__init__(str(error))
        self.error = error


def _not_done(exc: BaseException | None) -> ExerciseNotDone | None:
    """The ExerciseNotDone behind an error, if the error or one it was raised while handling is one."""
    while exc is not None:
        if isinstance(exc, ExerciseNotDone):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def holds(name: str, inputs: SearchStrategy, check_one: Callable, examples: Sequence = (), max_examples: int = 60,
          reference: Callable | None = None) -> int:  # fmt: skip
    """Run check_one(args) on every explicit example, then on inputs drawn from `inputs` (tuples of arguments).

    check_one raises a GradingError when the student's function is wrong on args. Hypothesis then shrinks the input
    to the smallest one that still fails, and that failure is raised with the input appended. Returns the number of
    inputs tried. A function whose verdict changes when it is called again on the same input (it keeps state
    between calls, e.g. a cache) is told so.
    """
    tried = 0

    def prop(args):
        nonlocal tried
        tried += 1
        try:
            check_one(args)
        except GradingError as exc:
            not_done = _not_done(exc)
            if not_done is not None:  # also where a check re-raised it as another message
                raise _Stop(not_done) from None
            raise GradingError(f"{exc} Smallest failing input found: {show_call(name, reference, args)}.") from None

    test = given(inputs)(prop)
    for case in reversed(list(examples)):
        test = example(case)(test)
    test = settings(database=None, deadline=None, max_examples=max_examples, derandomize=False, print_blob=False,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=False, verbosity=Verbosity.quiet,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink))(test)  # fmt: skip
    if FRESH_DRAWS not in os.environ:
        test = seed(zlib.crc32(name.encode()))(test)
    try:
        test()
    except _Stop as stop:
        raise stop.error from None
    except GradingError as exc:
        raise GradingError(str(exc)) from None  # without Hypothesis' notes
    except Flaky as exc:
        first = next((e for e in getattr(exc, "exceptions", ()) if isinstance(e, GradingError)), None)
        raise GradingError(f"{name} gave a different result when called again on the same input: does it keep "
                           "state between calls (a cache, a counter, a global)? It must depend on its inputs only."
                           + (f" First failure: {first}" if first else "")) from None  # fmt: skip
    return tried


TOLERANCES = {torch.float64: (1e-9, 1e-7), torch.float32: (1e-5, 1e-4), torch.float16: (1e-2, 1e-2),
              torch.bfloat16: (2e-2, 2e-2)}  # (atol, rtol) by dtype  # fmt: skip


def tolerance(*dtypes: torch.dtype) -> dict:
    """atol and rtol for comparing values computed in any of these dtypes (the loosest of them)."""
    atol, rtol = zip(*(TOLERANCES.get(d, TOLERANCES[torch.float32]) for d in dtypes), strict=True)
    return {"atol": max(atol), "rtol": max(rtol)}


def check_property(fn: Callable, reference: Callable, name: str, inputs: SearchStrategy, examples: Sequence = (),
                   hints: Iterable[Hint] = (), nonfinite_hint: str | None = None, mutable: Sequence[int] = (),
                   max_examples: int = 60, tol: dict | Callable | None = None,
                   accept: Callable | None = None) -> None:  # fmt: skip
    """Check a tensor-valued fn against reference on the explicit examples and on inputs drawn from `inputs`.

    Every expected value is computed first, on its own copy of the input. `tol`: atol and rtol, or a function of
    the arguments giving them (errors that grow with the inputs' magnitude); by default those of the loosest dtype
    among the output and the reference's. `accept(out, *args)`: where the statement leaves a choice open (a value
    at a cut, up to rounding), True for an output that makes the other choice. Prints one line on success.
    """
    hints = list(hints)

    def one(args):
        want = reference(*copies(args))
        out = call(fn, args, name, mutable)
        if accept is not None and _spots(accept, out, args):
            return
        given_tol = tol(*args) if callable(tol) else tol
        if given_tol is None:
            given_tol = tolerance(out.dtype, want.dtype) if isinstance(out, torch.Tensor) else {}
        try:
            compare(out, want, name, args, hints, nonfinite_hint=nonfinite_hint, **given_tol)
        except GradingError:
            raise
        except Exception as exc:  # noqa: BLE001 - an output the comparison cannot read
            raise GradingError(f"{name}: the check could not read your output, {describe(out)} "
                               f"({type(exc).__name__}: {exc})."[:400]) from None  # fmt: skip

    tried = holds(name, inputs, one, examples, max_examples, reference)
    print(f"✓ {name}: passed on {tried} inputs drawn over the statement's domain, edge cases included.")
