"""Homework 06 graders: correct solutions written differently pass, plausible wrong ones (edge-case mistakes, caches
keyed on shapes or lengths, constants) fail with their hint; the several-key update agrees with the constrained
least-squares problem solved independently."""

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from grading_helpers import memo, passes, rejects, sizes

from utils.grading import hw06

# --- n-gram entropy -------------------------------------------------------------------------------------------


def entropy_with_numpy(text):
    """numpy, natural log converted to bits, a numpy float returned."""
    words = text.split()
    scores = []
    for n, weight in ((2, 2 / 3), (3, 4 / 3)):
        grams = ["\x00".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        counts = np.unique(np.array(grams, dtype=str), return_counts=True)[1] if grams else np.array([])
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


def entropy_from_counts(text):
    """H = log2 N - sum(c log2 c) / N, with pandas counting the n-grams and scipy's entropy as a cross-check."""
    words, scores = text.split(), []
    for n, weight in ((2, 2 / 3), (3, 4 / 3)):
        counts = pd.Series([tuple(words[i : i + n]) for i in range(len(words) - n + 1)], dtype=object).value_counts()
        size = int(counts.sum())
        h = math.log2(size) - sum(c * math.log2(c) for c in counts) / size if size else 0.0
        assert not size or math.isclose(h, scipy.stats.entropy(counts.to_numpy(), base=2), abs_tol=1e-9)
        scores.append(weight * h)
    return sum(scores) / 2


@pytest.mark.parametrize("fn", [hw06.ngram_entropy, entropy_with_numpy, entropy_with_loops, entropy_in_float32,
                                entropy_from_counts])  # fmt: skip
def test_ngram_entropy_accepts_other_correct_forms(fn, capsys):
    passes(hw06.check_ngram_entropy, fn, capsys)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"base": math.e}, "bits"), ({"weights": {2: 1.0, 3: 1.0}}, "2/3"), ({"mean": False}, "average"),
     ({"weights": {2: 4 / 3, 3: 2 / 3}}, "other way round"),
     ({"characters": True}, "words"), ({"distinct": True}, "how often"),
     ({"weights": {1: 1 / 3, 2: 2 / 3, 3: 4 / 3}}, "unigrams"), ({"last": 0}, "w - n + 1"),
     ({"chunks": True}, "overlap"), ({"geometric": True}, "arithmetic"), ({"lower": True}, "case"),
     ({"strip": True}, "punctuation"), ({"per_word": True}, "number of n-grams"),
     ({"joined": True}, "tuple of words"), ({"separator": " "}, "text.split() (no argument)")],
)  # fmt: skip
def test_ngram_entropy_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw06.check_ngram_entropy, hw06._entropy_variant(**kwargs), hint)


def joined_by_hand(text):
    """Bigrams and trigrams counted as strings glued without a separator: 'ab c' and 'a bc' collide."""
    words, scores = text.split(), []
    for n, weight in ((2, 2 / 3), (3, 4 / 3)):
        counts = Counter("".join(words[i : i + n]) for i in range(len(words) - n + 1))
        size = sum(counts.values())
        scores.append(weight * sum(-c / size * math.log2(c / size) for c in counts.values()))
    return sum(scores) / 2


@pytest.mark.parametrize(
    "wrong, hint",
    [(lambda text: str(hw06.ngram_entropy(text)), "a number"),
     (lambda text: hw06.ngram_entropy(text) if len(text.split()) >= 3 else float("nan"), "without n-grams"),
     (joined_by_hand, "tuple of words"),
     (memo(hw06.ngram_entropy, lambda text: len(text.split())), "expected"),  # a cache keyed on the number of words
     (memo(hw06.ngram_entropy, len), "expected"),  # ... on the number of characters
     (lambda text: 0.0, "expected"),
     (lambda text: hw06.ngram_entropy(text.strip()[:-1] if text.strip().endswith(".") else text), "expected"),
     (lambda text: round(hw06.ngram_entropy(text), 2), "expected"),  # rounded: not the value
     (lambda text: torch.tensor(hw06.ngram_entropy(text) > 1), "a number")],
)  # fmt: skip
def test_ngram_entropy_rejects_other_mistakes(wrong, hint):
    rejects(hw06.check_ngram_entropy, wrong, hint)


def test_ngram_entropy_reports_the_smallest_failing_text():
    message = rejects(hw06.check_ngram_entropy, hw06._entropy_variant(lower=True), "case")
    assert "Smallest failing input found: ngram_entropy(" in message


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
    return hw06.constrained_least_squares(W, C, K, V).to(W.dtype)


def update_with_inverse(W, C, K, V):
    c_inv = torch.linalg.inv(C)
    return c_inv @ K.T @ torch.linalg.inv(K @ c_inv @ K.T) @ (V - K @ W)


def update_with_lstsq(W, C, K, V):
    """The C-weighted minimum-norm solution via a Cholesky change of variables and least squares."""
    L = torch.linalg.cholesky(C)  # C = L L^T; D = L^-T E, E the minimum-Frobenius-norm solution of (K L^-T) E = R
    A = torch.linalg.solve_triangular(L, K.T, upper=False).T
    E = torch.linalg.pinv(A) @ (V - K @ W)
    return torch.linalg.solve_triangular(L.T, E, upper=True)


def update_with_numpy(W, C, K, V):
    W_, C_, K_, V_ = (x.numpy().astype(np.float64) for x in (W, C, K, V))
    c_inv_kt = np.linalg.solve(C_, K_.T)
    return torch.from_numpy(c_inv_kt @ np.linalg.solve(K_ @ c_inv_kt, V_ - K_ @ W_)).to(W.dtype)


@pytest.mark.parametrize("fn", [hw06.multi_key_update, update_in_float64, update_with_inverse, update_with_lstsq,
                                update_with_numpy])  # fmt: skip
def test_multi_key_update_accepts_other_correct_forms(fn, capsys):
    passes(hw06.check_multi_key_update, fn, capsys)


def with_a_null_space_term(W, C, K, V):
    """A solution of K D = R that is not the smallest: the plain minimum-norm one plus a move along K's null space."""
    D = torch.linalg.pinv(K) @ (V - K @ W)
    null = torch.eye(len(W), dtype=W.dtype) - torch.linalg.pinv(K) @ K
    return D + null @ torch.ones_like(W)


def computed_in_float32(W, C, K, V):
    return hw06.multi_key_update(*(x.float() for x in (W, C, K, V))).to(W.dtype)


def first_key_only(W, C, K, V):
    return hw06.multi_key_update(W, C, K[:1], V[:1])


@pytest.mark.parametrize(
    "wrong, hint",
    [(hw06._new_matrix, "not the edited matrix"), (hw06._values_not_residuals, "V - K @ W"),
     (hw06._without_c, "Frobenius"), (hw06._c_not_inverted, "C^-1, not C"),
     (hw06._gram_without_c, "C^-1 belongs"), (hw06._independent_rome, "summing one rank-one update"),
     (hw06._sequential_rome, "one key after another"), (hw06._memit, "MEMIT"),
     (lambda W, C, K, V: hw06.multi_key_update(W, C, K, V).double(), "dtype"),
     (lambda W, C, K, V: hw06.multi_key_update(W, C, K, V).T, "W's shape"),
     (memo(hw06.multi_key_update, sizes), "misses V"),  # a cache keyed on the shapes
     (lambda W, C, K, V: torch.zeros_like(W), "misses V"),
     (first_key_only, "misses V"),
     (computed_in_float32, "float32 precision"),
     (with_a_null_space_term, "not the smallest")],
)  # fmt: skip
def test_multi_key_update_rejects_plausible_mistakes(wrong, hint):
    rejects(hw06.check_multi_key_update, wrong, hint)


# --- the gated edit -------------------------------------------------------------------------------------------


def gated_with_loops(X, W, K, V, radius):
    out = X @ W
    for i, x in enumerate(X):
        distances = [float(torch.linalg.norm(x.double() - k.double())) for k in K]
        j = int(np.argmin(distances))  # the first of equal minima
        if distances[j] <= radius:
            out[i] = V[j]
    return out


def gated_with_cdist(X, W, K, V, radius):
    """The master solution."""
    distance, nearest = torch.cdist(X.double(), K.double()).min(1)
    return torch.where((distance <= radius)[:, None], V[nearest].to(X.dtype), X @ W)


def gated_with_expansion(X, W, K, V, radius):
    """|x|^2 + |k|^2 - 2 x.k in the inputs' dtype, squared distances compared with radius^2."""
    squared = ((X * X).sum(1)[:, None] + (K * K).sum(1)[None] - 2 * X @ K.T).clamp_min(0)
    best, nearest = squared.min(1)
    return torch.where((best <= radius**2)[:, None], V[nearest], X @ W)


def gated_with_numpy(X, W, K, V, radius):
    x, k = X.numpy(), K.numpy()
    distance = np.sqrt(((x[:, None, :] - k[None, :, :]) ** 2).sum(-1))
    nearest = distance.argmin(1)
    inside = distance[np.arange(len(x)), nearest] <= radius
    return torch.from_numpy(np.where(inside[:, None], V.numpy()[nearest], x @ W.numpy()))


@pytest.mark.parametrize("fn", [hw06.gated_values, gated_with_loops, gated_with_cdist, gated_with_expansion,
                                gated_with_numpy])  # fmt: skip
def test_gated_values_accepts_other_correct_forms(fn, capsys):
    passes(hw06.check_gated_values, fn, capsys)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"always": True}, "near an edited key"), ({"metric": "dot"}, "Euclidean"), ({"squared": True}, "square"),
     ({"first": True}, "NEAREST"), ({"additive": True}, "V[j] itself"), ({"strict": True}, "<=, not <"),
     ({"last": True}, "lower index"), ({"metric": "l1"}, "absolute differences"),
     ({"everywhere": True}, "farther than the radius")],
)  # fmt: skip
def test_gated_values_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw06.check_gated_values, hw06._gated_variant(**kwargs), hint)


def nearest_by_sorting_reversed(X, W, K, V, radius):
    """Ties broken towards the higher index by a stable sort of the reversed distances."""
    distance = torch.cdist(X.double(), K.double())
    order = distance.flip(1).argsort(dim=1, stable=True)[:, 0]
    nearest = len(K) - 1 - order
    inside = distance.gather(1, nearest[:, None])[:, 0] <= radius
    return torch.where(inside[:, None], V[nearest], X @ W)


@pytest.mark.parametrize(
    "wrong, hint",
    [(lambda X, W, K, V, r: hw06.gated_values(X, W, K, V, r).double(), "dtype"),
     (memo(hw06.gated_values, sizes), "row "),  # a cache keyed on the shapes
     (lambda X, W, K, V, r: torch.zeros(len(X), W.shape[1], dtype=X.dtype), "row "),
     (lambda X, W, K, V, r: hw06.gated_values(X, W, K, V, r) if r > 0 else X @ W, "within the radius 0"),
     (nearest_by_sorting_reversed, "lower index")],
)  # fmt: skip
def test_gated_values_rejects_other_mistakes(wrong, hint):
    rejects(hw06.check_gated_values, wrong, hint)


def test_gated_values_explains_the_first_wrong_row():
    message = rejects(hw06.check_gated_values, lambda X, W, K, V, r: torch.zeros(len(X), W.shape[1], dtype=X.dtype),
                      "should be")  # fmt: skip
    assert "nearest key is K[" in message and "yours is" in message


def gated_with_cdist_in_float32(X, W, K, V, radius):
    """torch.cdist in the inputs' dtype (a matrix product from 25 rows on): rounding decides near the radius."""
    distance, nearest = torch.cdist(X, K).min(1)
    return torch.where((distance <= radius)[:, None], V[nearest], X @ W)


def test_gated_values_accepts_float32_distances(capsys):
    passes(hw06.check_gated_values, gated_with_cdist_in_float32, capsys)


# --- the draws alone find the edge cases: a cheat that looks up the fixed examples still fails ----------------


@pytest.mark.parametrize(
    "check, examples, wrong, hint",
    [(hw06.check_gated_values, "GATED_EXAMPLES", hw06._gated_variant(strict=True), "<=, not <"),
     (hw06.check_gated_values, "GATED_EXAMPLES", hw06._gated_variant(last=True), "lower index"),
     (hw06.check_gated_values, "GATED_EXAMPLES", memo(hw06.gated_values, sizes), "row 0"),
     (hw06.check_multi_key_update, "UPDATE_EXAMPLES", hw06._memit, "MEMIT"),
     (hw06.check_multi_key_update, "UPDATE_EXAMPLES", memo(hw06.multi_key_update, sizes), "multi_key_update"),
     (hw06.check_ngram_entropy, "ENTROPY_EXAMPLES", hw06._entropy_variant(joined=True), "tuple of words"),
     (hw06.check_ngram_entropy, "ENTROPY_EXAMPLES", memo(hw06.ngram_entropy, lambda text: len(text.split())),
      "expected")],
)  # fmt: skip
def test_the_draws_alone_catch_edge_case_mistakes_and_caches(monkeypatch, check, examples, wrong, hint):
    monkeypatch.setattr(hw06, examples, [])
    assert "Smallest failing input found" in rejects(check, wrong, hint)
