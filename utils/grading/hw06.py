"""Graders for homework 06 (model editing): ROME's fluency score (weighted n-gram entropy) and the exact
several-key update that writes many edits into one matrix at once. The study reuses homework 02's `check_study`
(fit and evaluation apart, a control, an interval).

Every check builds its inputs itself (texts, matrices and keys the student has never seen) and runs the student's
function through `core.call`: expected values first, deep copies handed over.
"""

from __future__ import annotations

import math
import numbers
import random
from collections import Counter
from collections.abc import Callable

import torch

from utils.grading.core import GradingError, call, check_function, describe, graded, same_as
from utils.grading.hw02 import check_study

__all__ = ["check_gated_values", "check_multi_key_update", "check_ngram_entropy", "check_study"]


# --- Exercise 1: n-gram entropy -----------------------------------------------------------------------------------

ENTROPY_WEIGHTS = {2: 2 / 3, 3: 4 / 3}  # ROME's compute_n_gram_entropy


def _entropy_variant(base: float = 2.0, weights: dict[int, float] = ENTROPY_WEIGHTS, mean: bool = True,
                     characters: bool = False, distinct: bool = False, last: int = 1, chunks: bool = False,
                     geometric: bool = False, lower: bool = False):  # fmt: skip
    def variant(text: str) -> float:
        text = text.lower() if lower else text
        tokens = list(text.replace(" ", "")) if characters else text.split()
        values = []
        for n, weight in weights.items():
            starts = range(0, len(tokens) - n + 1, n) if chunks else range(len(tokens) - n + last)
            counts = Counter(tuple(tokens[i : i + n]) for i in starts)
            if distinct:
                counts = Counter(dict.fromkeys(counts, 1))
            total = sum(counts.values())
            entropy = -sum(c / total * math.log(c / total, base) for c in counts.values())
            values.append(weight * entropy)
        if geometric:
            return math.prod(values) ** (1 / len(values))
        return sum(values) / len(values) if mean else sum(values)

    return variant


ngram_entropy = _entropy_variant()
ngram_entropy.__doc__ = """ROME's fluency score of a text: the mean over n = 2, 3 of weight_n * (entropy in bits of
the frequencies of the text's word n-grams), weights 2/3 and 4/3; words are text.split(); 0 without n-grams."""

ENTROPY_TEXTS = [
    "Kavo Rell was born in Tumuki . Kavo Rell was born in Tumuki . Kavo Rell was born in Tumuki .",
    "the cat sat on the mat and the dog sat on the rug",
    "Lima Lima Lima Lima Lima Lima Lima",
    "one two three four five six seven eight nine ten",
    "a b a b a b c",
    "short text",
    "",
    "word",
    "  spaced   out\nover\tlines and spaced out over lines  ",
    "x y z x y z x y z x y w",
    "Tumuki. Tumuki is a city. The city of Tumuki lies in Vel. the city of tumuki lies in vel.",
    "a b c a b d",
    "ab c a bc ab c",  # n-grams joined without a separator would collide
    *(" ".join(random.Random(seed).choices(["Ana", "works", "as", "a", "baker.", "Baker", "in", "Lima,"], k=12 + seed))
      for seed in range(4)),  # random texts from a small vocabulary, punctuation and case kept
]
ENTROPY_HINTS = [
    (_entropy_variant(base=math.e), "entropy in bits: log base 2 (ROME's code divides by log 2), not the natural "
     "log."),
    (_entropy_variant(weights={2: 1.0, 3: 1.0}), "weight the bigram entropy by 2/3 and the trigram entropy by 4/3 "
     "before averaging."),
    (_entropy_variant(mean=False), "average the two weighted entropies (divide their sum by 2)."),
    (_entropy_variant(characters=True), "n-grams of words (text.split()), not of characters."),
    (_entropy_variant(distinct=True), "the entropy of the n-grams' frequencies: count how often each n-gram "
     "occurs, not only which ones occur."),
    (_entropy_variant(weights={1: 1 / 3, 2: 2 / 3, 3: 4 / 3}), "n = 2 and 3 only: unigrams are not in ROME's score."),
    (_entropy_variant(last=0), "a text of w words has w - n + 1 n-grams: the last one starts at word w - n."),
    (_entropy_variant(chunks=True), "the n-grams overlap: one starts at every word, not every n words."),
    (_entropy_variant(geometric=True), "the arithmetic mean of the two weighted entropies, not the geometric one."),
    (_entropy_variant(lower=True), "the words are text.split() as they are: keep case and punctuation (ROME's NLTK "
     "tokeniser would split punctuation off; here it stays on the word)."),
]  # fmt: skip


@graded("ngram_entropy")
def check_ngram_entropy(fn: Callable) -> None:
    for text in ENTROPY_TEXTS:
        want = ngram_entropy(text)
        out = call(fn, (text,), "ngram_entropy")
        if isinstance(out, torch.Tensor) and out.numel() == 1:
            out = out.item()
        if isinstance(out, str | bytes | bool) or not isinstance(out, numbers.Real):
            raise GradingError(f"ngram_entropy should return a number, got {describe(out)}.")
        got = float(out)
        if math.isnan(got):
            raise GradingError(f"ngram_entropy returned NaN for {text!r}: a text without n-grams (fewer than n "
                               "words) scores 0 for that n.")  # fmt: skip
        if math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-7):
            continue
        for variant, message in ENTROPY_HINTS:
            if math.isclose(got, variant(text), rel_tol=1e-5, abs_tol=1e-7):
                raise GradingError(f"ngram_entropy: {message}")
        raise GradingError(f"ngram_entropy({text[:50]!r}) = {got:.4f}, expected {want:.4f}.")
    print(f"✓ ngram_entropy: passed {len(ENTROPY_TEXTS)} texts (repetitions, punctuation and case, short and empty "
          "texts, random texts).")


# --- Exercise 2: the exact update for several keys ------------------------------------------------------------------


def multi_key_update(W: torch.Tensor, C: torch.Tensor, K: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """The change D of W, smallest in the norm tr(D^T C D), with K @ (W + D) = V exactly:
    D = C^-1 K^T (K C^-1 K^T)^-1 (V - K W). W [d_in, d_out], C [d_in, d_in], K [m, d_in], V [m, d_out]."""
    c_inv_kt = torch.linalg.solve(C, K.T)
    return c_inv_kt @ torch.linalg.solve(K @ c_inv_kt, V - K @ W)


def constrained_least_squares(W, C, K, V) -> torch.Tensor:
    """The same problem solved another way, for tests: min tr(D^T C D) s.t. K (W + D) = V as one KKT system,
    [[2C, K^T], [K, 0]] [D; L] = [0; V - K W], in float64."""
    W, C, K, V = (x.double() for x in (W, C, K, V))
    m, d = K.shape
    system = torch.zeros(d + m, d + m, dtype=torch.float64)
    system[:d, :d], system[:d, d:], system[d:, :d] = 2 * C, K.T, K
    rhs = torch.cat([torch.zeros(d, W.shape[1], dtype=torch.float64), V - K @ W])
    return torch.linalg.solve(system, rhs)[:d]


def _independent_rome(W, C, K, V):
    """Each key's rank-one update computed for the original W, summed."""
    return sum(torch.outer(torch.linalg.solve(C, k) / (k @ torch.linalg.solve(C, k)), v - k @ W) for k, v in zip(K, V, strict=True))


def _sequential_rome(W, C, K, V):
    total = torch.zeros_like(W)
    for k, v in zip(K, V, strict=True):
        c_inv_k = torch.linalg.solve(C, k)
        total = total + torch.outer(c_inv_k / (k @ c_inv_k), v - k @ (W + total))
    return total


def _memit(W, C, K, V):
    return torch.linalg.solve(C + K.T @ K, K.T @ (V - K @ W))


def _without_c(W, C, K, V):
    return K.T @ torch.linalg.solve(K @ K.T, V - K @ W)


def _c_not_inverted(W, C, K, V):
    ckt = C @ K.T
    return ckt @ torch.linalg.solve(K @ ckt, V - K @ W)


def _values_not_residuals(W, C, K, V):
    return multi_key_update(W, C, K, V + K @ W)


def _gram_without_c(W, C, K, V):
    c_inv_kt = torch.linalg.solve(C, K.T)
    return c_inv_kt @ torch.linalg.solve(K @ K.T, V - K @ W)


def _new_matrix(W, C, K, V):
    return W + multi_key_update(W, C, K, V)


UPDATE_HINTS = [
    (same_as(_new_matrix), "return the change D, not the edited matrix W + D."),
    (same_as(_values_not_residuals), "the keys must map to V after the edit: solve for V - K @ W (what W does not "
     "yet give), not for V."),
    (same_as(_without_c), "that is the smallest change in the plain Frobenius norm: the norm here is tr(D^T C D), so "
     "C^-1 enters (the directions keys rarely use are the cheap ones)."),
    (same_as(_c_not_inverted), "C^-1, not C: the cheap directions are those where keys are small."),
    (same_as(_gram_without_c), "the multipliers solve (K C^-1 K^T) L = R: C^-1 belongs in the m x m matrix too, not "
     "only in front (K (W + D) = V must hold)."),
    (same_as(_independent_rome), "summing one rank-one update per key, each computed for the original W, breaks the "
     "other keys' constraints: the keys are not C^-1-orthogonal. Solve for all of them together ((K C^-1 K^T)^-1)."),
    (same_as(_sequential_rome), "ROME applied one key after another fits the last key exactly but moves the earlier "
     "ones: the constraints must hold together, K @ (W + D) = V for every row."),
    (same_as(_memit), "that is MEMIT's least-squares trade-off with alpha = 1, (C + K^T K)^-1 K^T R: here the keys "
     "must map to V exactly."),
]  # fmt: skip


def _update_case(seed: int, d_in: int, d_out: int, m: int, dtype=torch.float32, correlated: bool = False):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d_in, 3 * d_in, generator=g, dtype=torch.float64)
    C = A @ A.T / (3 * d_in) + 0.05 * torch.eye(d_in, dtype=torch.float64)
    W = torch.randn(d_in, d_out, generator=g, dtype=torch.float64) / math.sqrt(d_in)
    K = torch.randn(m, d_in, generator=g, dtype=torch.float64)
    if correlated:  # keys that share a direction, as a subject's keys in several contexts do
        K = K * 0.3 + torch.randn(1, d_in, generator=g, dtype=torch.float64)
    V = K @ W + torch.randn(m, d_out, generator=g, dtype=torch.float64)
    return tuple(x.to(dtype) for x in (W, C, K, V))


UPDATE_CASES = [
    _update_case(1, 12, 7, 1),  # one key: ROME's own update
    _update_case(2, 16, 9, 3),
    _update_case(3, 24, 5, 6, correlated=True),
    _update_case(4, 20, 20, 4, dtype=torch.float64),
    _update_case(5, 10, 3, 10),  # as many keys as dimensions: D is fixed by the constraints alone
]


@graded("multi_key_update")
def check_multi_key_update(fn: Callable) -> None:
    for args in UPDATE_CASES:
        out = call(fn, args, "multi_key_update")
        if isinstance(out, torch.Tensor) and out.shape == args[0].shape[::-1] and out.shape != args[0].shape:
            raise GradingError(f"multi_key_update returned shape {tuple(out.shape)}: D has W's shape [d_in, d_out] = "
                               f"{tuple(args[0].shape)} (a key is a row; k @ (W + D)).")  # fmt: skip
        if isinstance(out, torch.Tensor) and out.shape == args[0].shape and out.dtype != args[0].dtype:
            raise GradingError(f"multi_key_update returned {out.dtype} for {args[0].dtype} inputs; keep the inputs' "
                               "dtype.")  # fmt: skip
        W, C, K, V = args
        if isinstance(out, torch.Tensor) and out.shape == W.shape and torch.isfinite(out).all():
            miss = (K.double() @ (W + out).double() - V.double()).abs().max().item()
            if miss > 1e-3 * max(1.0, V.abs().max().item()) and not any(
                    spots(out, *args) for spots, _ in UPDATE_HINTS[:2]):  # fmt: skip
                for spots, message in UPDATE_HINTS[2:]:
                    if spots(out, *args):
                        raise GradingError(f"multi_key_update: {message}")
                raise GradingError(f"multi_key_update: K @ (W + D) misses V by up to {miss:.3g}; every key must map "
                                   "to its value exactly.")  # fmt: skip
    check_function(fn, multi_key_update, "multi_key_update", UPDATE_CASES, UPDATE_HINTS, atol=1e-4, rtol=1e-3)


# --- Exercise 3: a gated edit -----------------------------------------------------------------------------------


def gated_values(X: torch.Tensor, W: torch.Tensor, K: torch.Tensor, V: torch.Tensor, radius: float) -> torch.Tensor:
    """Row i: V[j] for the edited key K[j] nearest to X[i] (Euclidean) if it lies within radius, else X[i] @ W."""
    distance = ((X[:, None, :] - K[None, :, :]) ** 2).sum(-1).sqrt()  # [n, m], exact for identical rows
    nearest = distance.argmin(1)
    inside = distance[torch.arange(len(X)), nearest] <= radius
    return torch.where(inside[:, None], V[nearest], X @ W)


def _gated_variant(metric: str = "euclidean", first: bool = False, squared: bool = False, additive: bool = False,
                   always: bool = False, strict: bool = False):  # fmt: skip
    def variant(X, W, K, V, radius):
        if always:
            return X @ W
        if metric == "dot":
            score = X @ K.T
            nearest, inside = score.argmax(1), score.max(1).values >= radius
        else:
            distance = ((X[:, None, :] - K[None, :, :]) ** 2).sum(-1)
            distance = distance if squared else distance.sqrt()
            within = distance < radius if strict else distance <= radius
            nearest = within.float().argmax(1) if first else distance.argmin(1)
            inside = within.any(1) if first else within[torch.arange(len(X)), nearest]
        value = V[nearest] + (X - K[nearest]) @ W if additive else V[nearest]
        return torch.where(inside[:, None], value, X @ W)

    return variant


def _gated_case(seed: int, n: int, d_in: int, d_out: int, m: int, dtype=torch.float32):
    """Keys (the first two close together), and inputs that are copies of keys, near one key, between the first two
    (nearer the second), or far from all; a radius of 1, 2 or 3 with every distance at least 20% away from it."""
    g = torch.Generator().manual_seed(seed)
    radius = 1.0 + seed % 3

    def unit(away_from=None):  # a random direction, orthogonal to away_from if given
        u = torch.randn(d_in, generator=g, dtype=torch.float64)
        if away_from is not None:
            u -= (u @ away_from) * away_from
        return u / u.norm()

    K = torch.randn(m, d_in, generator=g, dtype=torch.float64) * 3 * radius
    pair = None
    if m > 1:
        pair = unit()
        K[1] = K[0] + 1.3 * radius * pair
    W = torch.randn(d_in, d_out, generator=g, dtype=torch.float64)
    V = torch.randn(m, d_out, generator=g, dtype=torch.float64)
    rows = []
    for i in range(n):
        j, kind = i % m, i % 4
        if kind == 0:
            rows.append(K[j].clone())
        elif kind == 1:  # within the radius; at 0.75 of it, its square is outside a radius above 1
            rows.append(K[j] + (0.5 if (i // 4) % 2 else 0.75) * radius * unit(pair))
        elif kind == 2 and m > 1:  # within the radius of the first two keys, nearer the second
            rows.append(K[0] + 0.58 * (K[1] - K[0]))
        else:
            rows.append(K[j] + (1.6 + 0.2 * i) * radius * unit(pair))
    X = torch.stack(rows)
    distance = ((X[:, None] - K[None]) ** 2).sum(-1).sqrt()
    assert ((distance - radius).abs() > 0.2 * radius).all(), "a grading input too close to the radius"
    return tuple(x.to(dtype) for x in (X, W, K, V)) + (float(radius),)


def _boundary_case():
    """Integer keys and inputs at distances 2 (inside), exactly 3 (the radius: inside) and 4 (outside)."""
    K = torch.tensor([[0.0, 0, 0], [10, 0, 0]])
    X = torch.tensor([[0.0, 2, 0], [0, 0, 3], [10, 3, 0], [0, 0, -4], [10, 0, 0]])
    W = torch.arange(6.0).reshape(3, 2) - 2
    return X, W, K, torch.tensor([[7.0, -7], [5, 5]]), 3.0


GATED_CASES = [_gated_case(0, 9, 6, 4, 3), _gated_case(1, 16, 8, 5, 4), _gated_case(2, 12, 5, 3, 1),
               _gated_case(3, 20, 10, 6, 5, torch.float64), _boundary_case()]  # fmt: skip
GATED_HINTS = [
    (same_as(_gated_variant(always=True)), "rows near an edited key must return that key's value V[j]; only the "
     "others fall back to X @ W."),
    (same_as(_gated_variant(metric="dot")), "nearness is the Euclidean distance |x - k|, not a dot product: a long "
     "key has a large dot product with everything."),
    (same_as(_gated_variant(squared=True)), "compare the distance itself, not its square, with the radius."),
    (same_as(_gated_variant(first=True)), "when several keys lie within the radius, take the NEAREST one, not the "
     "first."),
    (same_as(_gated_variant(additive=True)), "return V[j] itself at a gated row (the value stored for that key), "
     "not V[j] plus a correction for the distance."),
    (same_as(_gated_variant(strict=True)), "a distance equal to the radius counts as inside (<=, not <)."),
]  # fmt: skip


@graded("gated_values")
def check_gated_values(fn: Callable) -> None:
    for args in GATED_CASES:
        out = call(fn, args, "gated_values")
        if isinstance(out, torch.Tensor) and out.dtype != args[0].dtype:
            raise GradingError(f"gated_values returned {out.dtype} for {args[0].dtype} inputs; keep the inputs' dtype "
                               "(compute distances in float64 if you like, then cast back).")  # fmt: skip
    check_function(fn, gated_values, "gated_values", GATED_CASES, GATED_HINTS, atol=1e-5, rtol=1e-4)
