"""Every grader accepts its reference and rejects deliberately wrong implementations with a useful message."""

import pytest
import torch

from utils import grading
from utils.grading import ExerciseNotDone, GradingError
from utils.grading import hw00 as ref


def passes(check, fn, capsys):
    check(fn)
    assert "✓" in capsys.readouterr().out


def rejects(check, fn, *fragments):
    with pytest.raises(GradingError) as info:
        check(fn)
    for fragment in fragments:
        assert fragment in str(info.value), f"expected {fragment!r} in {str(info.value)!r}"
    return info.value


def not_done(*args):
    raise NotImplementedError


# --- failure modes every grader must turn into a readable message ------------------------------------------

CHECKS = [
    (grading.check_softmax_with_temperature, ref.softmax_with_temperature),
    (grading.check_top_p_filter, ref.top_p_filter),
    (grading.check_sequence_logprob, ref.sequence_logprob),
]


@pytest.mark.parametrize(("check", "reference"), CHECKS, ids=lambda x: getattr(x, "__name__", ""))
def test_generic_failures_are_explained(check, reference, capsys):
    passes(check, reference, capsys)
    rejects(check, lambda *a: torch.zeros(3))
    rejects(check, lambda *a: reference(*[torch.zeros_like(a[0]), *a[1:]]))  # ignores its input
    rejects(check, lambda *a: reference(*a).mean(), "shape")
    rejects(check, lambda *a: reference(*a).tolist(), "torch.Tensor")
    rejects(check, lambda *a: reference(*a).long(), "dtype")
    rejects(check, lambda *a: reference(*a) * float("nan"), "NaN")
    rejects(check, lambda *a: 1 / 0, "ZeroDivisionError")
    rejects(check, "not a function", "Pass the function itself")
    with pytest.raises(ExerciseNotDone, match="not implemented yet"):
        check(not_done)


def test_constant_output_never_passes():
    """A function that memorised one correct answer fails on the other inputs."""
    first = torch.softmax(torch.tensor([2.0, 1.0, 0.0]), dim=-1)
    rejects(grading.check_softmax_with_temperature, lambda x, t: first.expand_as(x).clone() if x.shape == (3,) else x)


def test_in_place_modification_is_reported():
    def in_place(logits, temperature):
        logits /= temperature
        return torch.softmax(logits, dim=-1)

    rejects(grading.check_softmax_with_temperature, in_place, "in place")


def test_message_renders_without_traceback_in_ipython():
    error = rejects(grading.check_softmax_with_temperature, lambda x, t: torch.softmax(x, -1))
    lines = error._render_traceback_()
    assert len(lines) == 1 and "divide the logits by it" in lines[0] and "Traceback" not in lines[0]


# --- targeted hints ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda x, t: torch.softmax(x, dim=-1), "no effect"),
        (lambda x, t: torch.softmax(x * t, dim=-1), "don't multiply"),
        (lambda x, t: torch.softmax(x / t, dim=0), "last dimension"),
        (lambda x, t: torch.exp(x / t - (x / t).amax(-1, keepdim=True)), "sum to 1"),
        (lambda x, t: x / t, "return probabilities"),
        (lambda x, t: torch.exp(x / t) / torch.exp(x / t).sum(-1, keepdim=True), "NaN"),  # overflows at 1000
    ],
)
def test_softmax_with_temperature_hints(wrong, hint):
    rejects(grading.check_softmax_with_temperature, wrong, hint)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._drop_crossing_token, "past p"),
        (ref._unsorted, "sort tokens"),
        (lambda x, p: torch.softmax(ref.top_p_filter(x, p), dim=-1), "not probabilities"),
        (lambda x, p: x.clone(), "infinite"),  # no filtering at all
        (lambda x, p: ref.top_p_filter(x, p / 2), ""),
    ],
)
def test_top_p_filter_hints(wrong, hint):
    rejects(grading.check_top_p_filter, wrong, hint)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda lg, t: torch.log_softmax(lg, -1)[:, :-1].gather(-1, t[:, :-1, None]).squeeze(-1).sum(-1), "shift by one"),
        (lambda lg, t: torch.log_softmax(lg, -1).gather(-1, t[..., None]).squeeze(-1).sum(-1), "first token"),
        (lambda lg, t: lg[:, :-1].gather(-1, t[:, 1:, None]).squeeze(-1).sum(-1), "log_softmax"),
        (lambda lg, t: ref.sequence_logprob(lg, t) / (t.shape[1] - 1), "don't average"),
        (lambda lg, t: ref.sequence_logprob(lg, t).exp(), "values differ"),
    ],
)
def test_sequence_logprob_hints(wrong, hint):
    rejects(grading.check_sequence_logprob, wrong, hint)
