"""Homework 02 graders accept their references and reject deliberately wrong implementations with the right hint."""

import pytest
import torch

from utils import grading
from utils.grading import ExerciseNotDone, GradingError
from utils.grading import hw02 as ref


def rejects(check, fn, fragment=""):
    with pytest.raises(GradingError) as info:
        check(fn)
    assert fragment in str(info.value), f"expected {fragment!r} in {str(info.value)!r}"


def not_done(*args):
    raise NotImplementedError


TENSOR_CHECKS = [
    (grading.check_difference_of_means, ref.difference_of_means),
    (grading.check_add_direction, ref.add_direction),
    (grading.check_logit_lens, ref.logit_lens),
    (grading.check_topk_encode, ref.topk_encode),
    (grading.check_feature_f1, ref.feature_f1),
    (grading.check_patchscope, ref.patchscope),
]


@pytest.mark.parametrize(("check", "reference"), TENSOR_CHECKS, ids=lambda x: getattr(x, "__name__", ""))
def test_reference_passes_and_generic_failures_are_explained(check, reference, capsys):
    check(reference)
    assert capsys.readouterr().out.count("✓") == 1
    rejects(check, lambda *a: torch.zeros(7), "shape")
    rejects(check, lambda *a: reference(*a).tolist(), "torch.Tensor")
    rejects(check, lambda *a: reference(*a) * float("nan"))
    rejects(check, lambda *a: 1 / 0, "ZeroDivisionError")
    with pytest.raises(ExerciseNotDone):
        check(not_done)


def test_constant_output_never_passes():
    first = ref.difference_of_means(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 1.0]]))
    rejects(
        grading.check_difference_of_means,
        lambda p, n: first.expand(p.shape[1]).clone() if p.shape[1] == 2 else first,
    )


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda p, n: n.mean(0) - p.mean(0), "sign is reversed"),
        (lambda p, n: p.sum(0) - n.sum(0), "not the sum"),
        (lambda p, n: torch.cat([p, n]).mean(0), "don't pool"),
        (lambda p, n: (p.mean(0) - n.mean(0)) / (p.mean(0) - n.mean(0)).norm(), "raw difference"),
        (lambda p, n: p.mean(0) - n.mean(0) + 0.1, "values differ"),
    ],
)
def test_difference_of_means_hints(wrong, hint):
    rejects(grading.check_difference_of_means, wrong, hint)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda r, d, a: r + a * d, "normalise the direction"),
        (lambda r, d, a: r - a * d / d.norm(), "negative alpha"),
        (lambda r, d, a: torch.cat([r[:, :-1], r[:, -1:] + a * d / d.norm()], 1), "every position"),
        (lambda r, d, a: r + d / d.norm(), "scale the unit direction"),
    ],
)
def test_add_direction_hints(wrong, hint):
    rejects(grading.check_add_direction, wrong, hint)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda r, n, u: torch.log_softmax(r @ u.T, dim=-1), "final norm"),
        (lambda r, n, u: n(r) @ u.T, "apply log_softmax"),
        (lambda r, n, u: torch.softmax(n(r) @ u.T, dim=-1), "not probabilities"),
        (lambda r, n, u: torch.log_softmax(n(r) @ u.T, dim=0), "last dimension"),
    ],
)
def test_logit_lens_hints(wrong, hint):
    rejects(grading.check_logit_lens, wrong, hint)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda x, W, be, bd, k: ref.topk_encode(x + bd, W, be, bd, k), "b_dec"),
        (ref._no_relu, "ReLU"),
        (ref._top_abs, "absolute value"),
        (lambda x, W, be, bd, k: ((x - bd) @ W + be).relu(), "only the top k"),
        (lambda x, W, be, bd, k: ((x - bd) @ W + be).topk(k, dim=-1).values, "shape"),
    ],
)
def test_topk_encode_hints(wrong, hint):
    rejects(grading.check_topk_encode, wrong, hint)


def _naive_f1(active, labels):
    p, r = ref._precision(active, labels), ref._recall(active, labels)
    return 2 * p * r / (p + r)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._precision, "that is the precision"),
        (ref._recall, "that is the recall"),
        (lambda a, y: (ref._precision(a, y) + ref._recall(a, y)) / 2, "harmonic mean"),
        (_naive_f1, "NaN"),
    ],
)
def test_feature_f1_hints(wrong, hint):
    rejects(grading.check_feature_f1, wrong, hint)


def _shifted_layer(shift):
    def wrong(m, s, sp, t, tp, layer):
        return ref.patchscope(m, s, sp, t, tp, min(max(layer + shift, 0), len(ref.blocks(m)) - 1))

    return wrong


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda m, s, sp, t, tp, layer: m(t).logits[0, -1], "unpatched target"),
        (lambda m, s, sp, t, tp, layer: ref.patchscope(m, s, -1, t, tp, layer), "source_pos"),
        (_shifted_layer(-1), "index layer + 1"),
        (_shifted_layer(1), "not after the next block"),
        (lambda *a: ref.patchscope(*a).softmax(-1), "not probabilities"),
    ],
)
def test_patchscope_hints(wrong, hint):
    with torch.no_grad():
        rejects(grading.check_patchscope, wrong, hint)
