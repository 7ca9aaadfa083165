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


# an outside red team's implementations


def _h(counts):
    n = sum(counts)
    return -sum(c / n * math.log2(c / n) for c in counts) if n else 0.0


def _score(words, key=tuple):
    return sum(w * _h(list(Counter(key(words[i : i + n]) for i in range(len(words) - n + 1)).values()))
               for n, w in ((2, 2 / 3), (3, 4 / 3))) / 2  # fmt: skip


def _per_n(text, entropy):
    """(2/3 e(words, 2) + 4/3 e(words, 3)) / 2 for another entropy e of the words' n-grams."""
    words = text.split()
    return sum(w * entropy(words, n) for n, w in ((2, 2 / 3), (3, 4 / 3))) / 2


def _grams(words, n):
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _unique_flat(words, n):  # np.unique without axis=0 on the n-grams: counts words
    grams = [words[i : i + n] for i in range(len(words) - n + 1)]
    return _h(list(np.unique(np.array(grams, dtype=str), return_counts=True)[1])) if grams else 0.0


def _normalised(words, n):  # divided by log2 of the number of n-grams
    grams = _grams(words, n)
    return _h(list(Counter(grams).values())) / math.log2(len(grams)) if len(grams) > 1 else 0.0


def _over_bigrams(words, n):  # trigram frequencies relative to the number of bigrams
    counts, total = Counter(_grams(words, n)), max(len(words) - 1, 0)
    return -sum(v / total * math.log2(v / total) for v in counts.values()) if counts else 0.0


def _counts_not_p(words, n):  # -sum (c/N) log2 c
    counts = list(Counter(_grams(words, n)).values())
    return -sum(v / sum(counts) * math.log2(v) for v in counts) if counts else 0.0


def _float16(text):
    words, total = text.split(), torch.zeros((), dtype=torch.float16)
    for n, w in ((2, 2 / 3), (3, 4 / 3)):
        counts = Counter(_grams(words, n))
        if counts:
            p = torch.tensor(list(counts.values()), dtype=torch.float16)
            p = p / p.sum()
            total = total + w * -(p * torch.log2(p)).sum() / 2
    return total


@pytest.mark.parametrize(
    "wrong, hint",
    [(lambda t: _score(t.split(), "_".join), "joined with '_'"), (lambda t: _score(t.split(), "-".join), "'-'"),
     (lambda t: _score([w for w in __import__("re").split(r"[ \t\n]+", t) if w]), "ideographic space"),
     (lambda t: _per_n(t, _unique_flat), "expected"), (lambda t: _per_n(t, _normalised), "expected"),
     (lambda t: _score([w for i, w in enumerate(t.split()) if i == 0 or w != t.split()[i - 1]]), "expected"),
     (lambda t: _per_n(t, _over_bigrams), "expected"),
     (lambda t: _score(["<s>", *t.split(), "</s>"]), "expected"), (lambda t: _per_n(t, _counts_not_p), "expected"),
     (lambda t: (2 / 3 * _h(list(Counter(zip(t.split(), t.split()[2:], strict=False)).values()))
                 + 4 / 3 * _h(list(Counter(_grams(t.split(), 3)).values()))) / 2, "expected"),  # skip-bigrams
     (lambda t: _h(list(Counter(_grams(t.split(), 2)).values())), "expected"),  # bigrams for both, (2/3 + 4/3) / 2
     (_float16, "expected"), (lambda t: _score(__import__("re").findall(r"\w+|[^\w\s]", t)), "expected"),
     (lambda t: max(w * _h(list(Counter(_grams(t.split(), n)).values())) for n, w in ((2, 2 / 3), (3, 4 / 3))),
      "expected"),
     (memo(hw06.ngram_entropy, lambda t: tuple(sorted(Counter(t.split()).items()))), "expected"),  # same bag
     (lambda t: 0.0 if len(t.split()) < 4 else hw06.ngram_entropy(t), "expected")],
)  # fmt: skip
def test_ngram_entropy_rejects_the_red_teams_mistakes(wrong, hint):
    rejects(hw06.check_ngram_entropy, wrong, hint)


def entropy_torch_unique_rows(text):
    """Words mapped to ids; torch.unique(dim=0) counts the n-gram rows; a float64 0-d tensor."""
    words = text.split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = torch.tensor([vocab[w] for w in words], dtype=torch.long)
    total = torch.zeros((), dtype=torch.float64)
    for n, w in ((2, 2 / 3), (3, 4 / 3)):
        if len(ids) >= n:
            c = torch.unique(ids.unfold(0, n, 1), dim=0, return_counts=True)[1].double()
            p = c / c.sum()
            total = total - w * (p * torch.log2(p)).sum() / 2
    return total


def entropy_dict_float32(text):
    """A dict of tuple keys, np.float32 arithmetic, an np.float32 returned."""
    words, total = text.split(), np.float32(0)
    for n, w in ((2, 2 / 3), (3, 4 / 3)):
        d = {}
        for gram in _grams(words, n):
            d[gram] = d.get(gram, 0) + 1
        if d:
            c = np.array(list(d.values()), dtype=np.float32)
            p = c / c.sum()
            total = total + np.float32(w) * np.float32(-(p * np.log2(p)).sum()) / np.float32(2)
    return total


@pytest.mark.parametrize(
    "fn",
    [lambda t: sum({2: 2 / 3, 3: 4 / 3}[n] * _h(list(Counter(_grams(t.split(), n)).values())) for n in (2, 3)) / 2,
     lambda t: sum(w * (scipy.stats.entropy(list(c.values()), base=2) if (c := Counter(_grams(t.split(), n))) else 0.0)
                   for n, w in ((2, 2 / 3), (3, 4 / 3))) / 2,
     entropy_torch_unique_rows, entropy_dict_float32],
)  # fmt: skip
def test_ngram_entropy_accepts_the_red_teams_correct_forms(fn, capsys):
    passes(hw06.check_ngram_entropy, fn, capsys)


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


# an outside red team's implementations


def update_ridge(W, C, K, V):
    """K C^-1 K^T + 1e-6 I "for stability": the constraints no longer hold exactly."""
    ck = torch.linalg.solve(C, K.T)
    return ck @ torch.linalg.solve(K @ ck + 1e-6 * torch.eye(len(K), dtype=W.dtype), V - K @ W)


def update_c_whitened_by_sqrt(W, C, K, V):
    e, Q = torch.linalg.eigh(C)
    ck = Q @ torch.diag(e.rsqrt()) @ Q.T @ K.T
    return ck @ torch.linalg.solve(K @ ck, V - K @ W)


def update_rome_sweeps(W, C, K, V, sweeps=3):
    D = torch.zeros_like(W)
    for _ in range(sweeps):
        for k, v in zip(K, V, strict=True):
            ck = torch.linalg.solve(C, k)
            D = D + torch.outer(ck / (k @ ck), v - k @ (W + D))
    return D


def update_r_in_place(W, C, K, V):
    V -= K @ W
    ck = torch.linalg.solve(C, K.T)
    return ck @ torch.linalg.solve(K @ ck, V)


def update_mean_key(W, C, K, V):
    k, v = K.mean(0), V.mean(0)
    ck = torch.linalg.solve(C, k)
    return torch.outer(ck / (k @ ck), v - k @ W)


def update_pinv_cutoff(W, C, K, V):
    ck = torch.linalg.solve(C, K.T)
    return ck @ torch.linalg.pinv(K @ ck, rtol=1e-3) @ (V - K @ W)


@pytest.mark.parametrize(
    "wrong, hint",
    [(update_ridge, "not to float64 precision"),
     (lambda W, C, K, V: hw06.multi_key_update(W, C + 1e-3 * torch.eye(len(C), dtype=C.dtype), K, V),
      "not the smallest"),
     (lambda W, C, K, V: hw06.multi_key_update(W, torch.diag(torch.diag(C)), K, V), "not the smallest"),
     (update_c_whitened_by_sqrt, "not the smallest"),
     (lambda W, C, K, V: torch.linalg.solve(C, torch.linalg.pinv(K) @ (V - K @ W)), "C^-1 belongs"),
     (update_rome_sweeps, "misses V"),
     (lambda W, C, K, V: hw06.multi_key_update(W, C, K / K.norm(dim=1, keepdim=True), V), "misses V"),
     (update_r_in_place, "in place"), (update_mean_key, "misses V"), (update_pinv_cutoff, "not the smallest"),
     (lambda W, C, K, V: torch.linalg.lstsq(torch.linalg.solve(C, K.T).T, V - K @ W).solution, "misses V"),
     (memo(hw06.multi_key_update, lambda W, C, K, V: (*sizes(W, K), W.dtype, round(float(W.sum()), 6))), "misses V")],
)  # fmt: skip
def test_multi_key_update_rejects_the_red_teams_mistakes(wrong, hint):
    rejects(hw06.check_multi_key_update, wrong, hint)


def update_cholesky(W, C, K, V):
    ck = torch.cholesky_solve(K.T, torch.linalg.cholesky(C))
    return ck @ torch.cholesky_solve(V - K @ W, torch.linalg.cholesky(K @ ck))


def update_scipy_positive(W, C, K, V):
    linalg = pytest.importorskip("scipy.linalg")
    W_, C_, K_, V_ = (x.numpy().astype(np.float64) for x in (W, C, K, V))
    ck = linalg.solve(C_, K_.T, assume_a="pos")
    return torch.from_numpy(ck @ linalg.solve(K_ @ ck, V_ - K_ @ W_, assume_a="pos")).to(W.dtype)


def update_kkt_in_input_dtype(W, C, K, V):
    m, d = K.shape
    A = torch.zeros(d + m, d + m, dtype=W.dtype)
    A[:d, :d], A[:d, d:], A[d:, :d] = C, K.T, K
    return torch.linalg.solve(A, torch.cat([torch.zeros(d, W.shape[1], dtype=W.dtype), V - K @ W]))[:d]


def update_rome_until_converged(W, C, K, V):
    """Cyclic ROME projections in the C metric from D = 0, in float64, until the constraints hold to 1e-14."""
    W64, C64, K64, V64 = (x.double() for x in (W, C, K, V))
    D, cks = torch.zeros_like(W64), [torch.linalg.solve(C64, k) for k in K64]
    scale = float(V64.abs().max()) + float((K64 @ W64).abs().max()) + 1e-300
    for _ in range(200_000):
        for k, ck, v in zip(K64, cks, V64, strict=True):
            D = D + torch.outer(ck / (k @ ck), v - k @ (W64 + D))
        if float((K64 @ (W64 + D) - V64).abs().max()) <= 1e-14 * scale:
            break
    return D.to(W.dtype)


def update_qr_whitened(W, C, K, V):
    L = torch.linalg.cholesky(C)
    A = torch.linalg.solve_triangular(L, K.T, upper=False).T  # K L^-T
    Q, R = torch.linalg.qr(A.T)
    E = Q @ torch.linalg.solve_triangular(R.T, V - K @ W, upper=False)
    return torch.linalg.solve_triangular(L.T, E, upper=True)


@pytest.mark.parametrize("fn", [update_cholesky, update_scipy_positive, update_kkt_in_input_dtype,
                                update_rome_until_converged, update_qr_whitened])  # fmt: skip
def test_multi_key_update_accepts_the_red_teams_correct_forms(fn, capsys):
    passes(hw06.check_multi_key_update, fn, capsys)


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


# an outside red team's implementations


def _pick(X, W, V, nearest, inside):
    return torch.where(inside[:, None], V[nearest], X @ W)


def gated_with_slack(slack):
    """distance <= radius + slack ("to be safe with floating point")."""

    def gated(X, W, K, V, radius):
        d, j = torch.cdist(X.double(), K.double()).min(1)
        return _pick(X, W, V, j, d <= radius + slack)

    return gated


def gated_isclose_radius(X, W, K, V, radius):
    d, j = torch.cdist(X.double(), K.double()).min(1)
    r = torch.full_like(d, radius)
    return _pick(X, W, V, j, (d < r) | torch.isclose(d, r))


def gated_tie_tolerance(X, W, K, V, radius):
    """The lowest index among keys within 1e-6 of the minimum, even when a later key is strictly nearer."""
    D = torch.cdist(X.double(), K.double())
    j = (D <= D.min(1, keepdim=True).values + 1e-6).float().argmax(1)
    return _pick(X, W, V, j, D.gather(1, j[:, None])[:, 0] <= radius)


def gated_float32_distances(X, W, K, V, radius):
    d, j = torch.cdist(X.float(), K.float()).min(1)
    return _pick(X, W, V, j, d <= radius)


def gated_by(distances, nearest=lambda D: D.argmin(1)):
    def gated(X, W, K, V, radius):
        D = distances(X.double(), K.double())
        j = nearest(D)
        return _pick(X, W, V, j, D.gather(1, j[:, None])[:, 0] <= radius)

    return gated


def gated_expansion_unclamped(X, W, K, V, radius):
    """|x|^2 + |k|^2 - 2 x.k in the inputs' dtype, no clamp: NaN at a copy of a key, and NaN <= r is False."""
    d, j = ((X * X).sum(1)[:, None] + (K * K).sum(1)[None] - 2 * X @ K.T).sqrt().min(1)
    return _pick(X, W, V, j, d <= radius)


def gated_any_inside_dot_value(X, W, K, V, radius):
    return _pick(X, W, V, (X @ K.T).argmax(1), (torch.cdist(X.double(), K.double()) <= radius).any(1))


def gated_strict_except_zero(X, W, K, V, radius):
    d, j = torch.cdist(X.double(), K.double()).min(1)
    return _pick(X, W, V, j, (d < radius) | ((radius == 0) & (d == 0)))


def gated_mean_of_ties(X, W, K, V, radius):
    D = torch.cdist(X.double(), K.double())
    best = D.min(1, keepdim=True).values
    tied = (D == best).to(V.dtype)
    return torch.where((best[:, 0] <= radius)[:, None], (tied @ V) / tied.sum(1, keepdim=True), X @ W)


def gated_large_batch_shortcut(X, W, K, V, radius):
    d, j = torch.cdist(X.double(), K.double()).min(1)
    return _pick(X, W, V, j, d <= (0.0 if len(X) > 256 else radius))


def gated_centres_x_in_place(X, W, K, V, radius):
    c = K.mean(0)
    X -= c
    d, j = torch.cdist(X.double(), (K - c).double()).min(1)
    X += c
    return _pick(X, W, V, j, d <= radius)


@pytest.mark.parametrize(
    "wrong, hint",
    [(gated_with_slack(1e-6), "no tolerance added"), (gated_with_slack(1e-3), "no tolerance added"),
     (gated_isclose_radius, "no tolerance added"), (gated_tie_tolerance, "only when two distances are equal"),
     (gated_float32_distances, "float64 rounding"),
     (gated_by(lambda x, k: torch.cdist(x, k, p=float("inf"))), "row "),  # Chebyshev
     (gated_by(torch.cdist, lambda D: D.argsort(dim=1, descending=True, stable=True)[:, -1]), "lower index"),
     (gated_expansion_unclamped, "clamp it at 0"), (gated_any_inside_dot_value, "row "),
     (gated_strict_except_zero, "<=, not <"), (gated_mean_of_ties, "row "),
     (gated_large_batch_shortcut, "row "), (gated_centres_x_in_place, "in place")],
)  # fmt: skip
def test_gated_values_rejects_the_red_teams_mistakes(wrong, hint):
    rejects(hw06.check_gated_values, wrong, hint)


def gated_keys_by_rows(X, W, K, V, radius):
    """Distances keys x rows, the minimum over dim 0 (the first minimum: the lower key index)."""
    d, j = torch.cdist(K.double(), X.double()).min(0)
    return _pick(X, W, V, j, d <= radius)


def gated_cdist_direct(X, W, K, V, radius):
    """torch.cdist in the inputs' dtype, computed directly (not as a matrix product)."""
    d, j = torch.cdist(X, K, compute_mode="donot_use_mm_for_euclid_dist").min(1)
    return _pick(X, W, V, j, d <= radius)


def gated_loop_over_keys(X, W, K, V, radius):
    """A loop over the m keys (not the rows), squared distances in float64, strict < keeps the lower index."""
    best = torch.full((len(X),), math.inf, dtype=torch.float64)
    j = torch.zeros(len(X), dtype=torch.long)
    for i, k in enumerate(K.double()):
        squared = ((X.double() - k) ** 2).sum(1)
        better = squared < best
        best, j = torch.where(better, squared, best), torch.where(better, torch.full_like(j, i), j)
    return _pick(X, W, V, j, best <= radius**2)


def gated_scipy(X, W, K, V, radius):
    cdist = pytest.importorskip("scipy.spatial.distance").cdist
    D = cdist(X.numpy().astype(np.float64), K.numpy().astype(np.float64))
    j = D.argmin(1)
    return torch.from_numpy(np.where((D[np.arange(len(D)), j] <= radius)[:, None], V.numpy()[j], (X @ W).numpy()))


def gated_addmm_clamped(X, W, K, V, radius):
    """Squared distances by torch.addmm in the inputs' dtype, clamped at 0, compared with radius^2."""
    squared = torch.addmm((X * X).sum(1)[:, None] + (K * K).sum(1)[None], X, K.T, alpha=-2).clamp_min(0)
    best, j = squared.min(1)
    return _pick(X, W, V, j, best <= radius * radius)


@pytest.mark.parametrize(
    "fn",
    [gated_keys_by_rows, gated_loop_over_keys, gated_scipy, gated_addmm_clamped, gated_cdist_direct],
)  # fmt: skip
def test_gated_values_accepts_the_red_teams_correct_forms(fn, capsys):
    passes(hw06.check_gated_values, fn, capsys)


# --- the draws alone find the edge cases: a cheat that looks up the fixed examples still fails ----------------


@pytest.mark.parametrize(
    "check, examples, wrong, hint",
    [(hw06.check_gated_values, "GATED_EXAMPLES", hw06._gated_variant(strict=True), "<=, not <"),
     (hw06.check_gated_values, "GATED_EXAMPLES", hw06._gated_variant(last=True), "lower index"),
     (hw06.check_gated_values, "GATED_EXAMPLES", memo(hw06.gated_values, sizes), "row 0|inputs' dtype"),
     (hw06.check_multi_key_update, "UPDATE_EXAMPLES", hw06._memit, "MEMIT"),
     (hw06.check_multi_key_update, "UPDATE_EXAMPLES", memo(hw06.multi_key_update, sizes), "multi_key_update"),
     (hw06.check_ngram_entropy, "ENTROPY_EXAMPLES", hw06._entropy_variant(joined=True), "tuple of words"),
     (hw06.check_ngram_entropy, "ENTROPY_EXAMPLES", memo(hw06.ngram_entropy, lambda text: len(text.split())),
      "expected")],
)  # fmt: skip
def test_the_draws_alone_catch_edge_case_mistakes_and_caches(monkeypatch, check, examples, wrong, hint):
    monkeypatch.setattr(hw06, examples, [])
    assert "Smallest failing input found" in rejects(check, wrong, hint)
