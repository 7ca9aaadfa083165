"""Homework 06 graders: correct solutions written differently pass, plausible wrong ones fail with their hint; the
several-key update agrees with the constrained least-squares problem solved independently."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

from utils.grading import GradingError, hw06


def rejects(check, fn, hint: str) -> None:
    with pytest.raises(GradingError, match=hint):
        check(fn)


# --- n-gram entropy -------------------------------------------------------------------------------------------


def entropy_with_numpy(text):
    """numpy, natural log converted to bits, a numpy float returned."""
    words = text.split()
    scores = []
    for n, weight in ((2, 2 / 3), (3, 4 / 3)):
        grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        _, counts = np.unique(np.array(grams, dtype=object).astype(str), return_counts=True) if grams else (None, np.array([]))
        p = counts / counts.sum() if len(counts) else counts
        scores.append(weight * float(-(p * np.log(p)).sum() / np.log(2)))
    return np.float64(np.mean(scores))


def entropy_with_loops(text):
    words, total = text.split(), 0.0
    for n, weight in ((3, 4 / 3), (2, 2 / 3)):
        counts = Counter(zip(*(words[i:] for i in range(n)), strict=False))  # shortest run: the n-grams
        size = sum(counts.values())
        total += weight * sum(-c / size * math.log2(c / size) for c in counts.values())
    return total / 2


def entropy_in_float32(text):
    """torch, float32 throughout, a 0-d tensor returned."""
    words, total = text.split(), torch.zeros((), dtype=torch.float32)
    for n, weight in ((2, 2 / 3), (3, 4 / 3)):
        counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        if counts:
            p = torch.tensor(list(counts.values()), dtype=torch.float32)
            p = p / p.sum()
            total = total + weight * -(p * torch.log2(p)).sum() / 2
    return total


def test_ngram_entropy_accepts_other_correct_forms():
    for fn in (hw06.ngram_entropy, entropy_with_numpy, entropy_with_loops, entropy_in_float32):
        hw06.check_ngram_entropy(fn)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"base": math.e}, "bits"), ({"weights": {2: 1.0, 3: 1.0}}, "2/3"), ({"mean": False}, "average"),
     ({"characters": True}, "words"), ({"distinct": True}, "how often"),
     ({"weights": {1: 1 / 3, 2: 2 / 3, 3: 4 / 3}}, "unigrams"), ({"last": 0}, "w - n \\+ 1"),
     ({"chunks": True}, "overlap"), ({"geometric": True}, "arithmetic"), ({"lower": True}, "case")],
)  # fmt: skip
def test_ngram_entropy_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw06.check_ngram_entropy, hw06._entropy_variant(**kwargs), hint)


def test_ngram_entropy_rejects_a_string():
    rejects(hw06.check_ngram_entropy, lambda text: str(hw06.ngram_entropy(text)), "a number")


def test_ngram_entropy_rejects_nan_for_short_texts():
    def nan_when_empty(text):
        return hw06.ngram_entropy(text) if len(text.split()) >= 3 else float("nan")

    rejects(hw06.check_ngram_entropy, nan_when_empty, "without n-grams")


# --- the several-key update -----------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 4, 12])
def test_multi_key_update_agrees_with_the_constrained_least_squares_problem(m):
    W, C, K, V = hw06._update_case(10 + m, 32, 8, m, dtype=torch.float64, correlated=m > 1)
    D = hw06.multi_key_update(W, C, K, V)
    independent = hw06.constrained_least_squares(W, C, K, V)
    assert torch.allclose(D, independent, atol=1e-4 * D.abs().max().item())
    assert torch.allclose(K @ (W + D), V, atol=1e-8)


def test_one_key_is_romes_rank_one_update():
    W, C, K, V = hw06._update_case(3, 20, 6, 1, dtype=torch.float64)
    k, v = K[0], V[0]
    c_inv_k = torch.linalg.solve(C, k)
    rome = torch.outer(c_inv_k / (k @ c_inv_k), v - k @ W)
    assert torch.allclose(hw06.multi_key_update(W, C, K, V), rome, atol=1e-10)


def update_in_float64(W, C, K, V):
    out = hw06.constrained_least_squares(W, C, K, V)
    return out.to(W.dtype)


def update_with_inverse(W, C, K, V):
    c_inv = torch.linalg.inv(C)
    return c_inv @ K.T @ torch.linalg.inv(K @ c_inv @ K.T) @ (V - K @ W)


def update_with_lstsq(W, C, K, V):
    """The C-weighted minimum-norm solution via a Cholesky change of variables and least squares."""
    L = torch.linalg.cholesky(C)  # C = L L^T; D = L^-T E with E the minimum-Frobenius-norm solution of (K L^-T) E = R
    A = torch.linalg.solve_triangular(L, K.T, upper=False).T
    E = torch.linalg.pinv(A) @ (V - K @ W)
    return torch.linalg.solve_triangular(L.T, E, upper=True)


def test_multi_key_update_accepts_other_correct_forms():
    for fn in (hw06.multi_key_update, update_in_float64, update_with_inverse, update_with_lstsq):
        hw06.check_multi_key_update(fn)


@pytest.mark.parametrize(
    "wrong, hint",
    [(hw06._new_matrix, "not the edited matrix"), (hw06._values_not_residuals, "V - K @ W"),
     (hw06._without_c, "Frobenius"), (hw06._c_not_inverted, "C\\^-1, not C"),
     (hw06._gram_without_c, "C\\^-1 belongs"), (hw06._independent_rome, "summing one rank-one update"), (hw06._sequential_rome, "one key after another"),
     (hw06._memit, "MEMIT")],
)  # fmt: skip
def test_multi_key_update_rejects_plausible_mistakes(wrong, hint):
    rejects(hw06.check_multi_key_update, wrong, hint)


def test_multi_key_update_rejects_a_dtype_change():
    rejects(hw06.check_multi_key_update, lambda W, C, K, V: hw06.multi_key_update(W, C, K, V).double(), "dtype")


def test_multi_key_update_rejects_a_transposed_change():
    rejects(hw06.check_multi_key_update, lambda W, C, K, V: hw06.multi_key_update(W, C, K, V).T, "W's shape")


# --- the gated edit -------------------------------------------------------------------------------------------


def gated_with_loops(X, W, K, V, radius):
    out = X @ W
    for i, x in enumerate(X):
        distances = [float(torch.linalg.norm(x - k)) for k in K]
        j = int(np.argmin(distances))
        if distances[j] <= radius:
            out[i] = V[j]
    return out


def gated_with_cdist(X, W, K, V, radius):
    distance, nearest = torch.cdist(X.double(), K.double()).min(1)
    return torch.where((distance <= radius)[:, None], V[nearest], X @ W)


def test_gated_values_accepts_other_correct_forms():
    for fn in (hw06.gated_values, gated_with_loops, gated_with_cdist):
        hw06.check_gated_values(fn)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"always": True}, "near an edited key"), ({"metric": "dot"}, "Euclidean"), ({"squared": True}, "square"),
     ({"first": True}, "NEAREST"), ({"additive": True}, "V\\[j\\] itself"), ({"strict": True}, "<=, not <")],
)  # fmt: skip
def test_gated_values_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw06.check_gated_values, hw06._gated_variant(**kwargs), hint)


def test_gated_values_rejects_a_dtype_change():
    rejects(hw06.check_gated_values, lambda X, W, K, V, r: hw06.gated_values(X, W, K, V, r).double(), "dtype")


def test_ngram_entropy_rejects_grams_joined_without_a_separator():
    def joined(text):
        words, scores = text.split(), []
        for n, weight in ((2, 2 / 3), (3, 4 / 3)):
            counts = Counter("".join(words[i : i + n]) for i in range(len(words) - n + 1))
            size = sum(counts.values())
            scores.append(weight * sum(-c / size * math.log2(c / size) for c in counts.values()))
        return sum(scores) / 2

    with pytest.raises(GradingError):
        hw06.check_ngram_entropy(joined)
