"""Graders for homework 06 (model editing): ROME's fluency score (weighted n-gram entropy), the exact several-key
update that writes many edits into one matrix at once, and a gated edit (a GRACE-style codebook). The study reuses
homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check draws its inputs at run time over the statement's whole domain (`core.holds`): texts from a small
vocabulary (n-grams repeat) with any runs of whitespace; well-conditioned matrices of every size from 1; keys and
inputs on an integer grid, where distances are exact, so that two keys equally near and inputs exactly at the radius
are drawn often. Shapes repeat with other contents, so an answer cached by shape or length fails.
"""

from __future__ import annotations

import math
import numbers
import random
import re
import string
from collections import Counter
from collections.abc import Callable

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

from utils.grading import draws
from utils.grading.core import (
    GradingError,
    call,
    compare,
    confirmed,
    copies,
    describe,
    graded,
    holds,
    matches,
    show,
    tolerance,
)
from utils.grading.hw02 import check_study

__all__ = ["check_gated_values", "check_multi_key_update", "check_ngram_entropy", "check_study"]


def _in_float64(mistakes: list) -> list:
    """Known mistakes run on float64 copies of the inputs (their rounding must not hide or fake a match)."""
    return [(lambda *a, wrong=wrong: wrong(*(x.double() if isinstance(x, torch.Tensor) else x for x in a)), message)
            for wrong, message in mistakes]  # fmt: skip


def _close_within(tol_of: Callable) -> Callable:
    return lambda got, wrong_out, args: matches(got, wrong_out.to(got.dtype), **tol_of(*args))


# --- Exercise 1: n-gram entropy -----------------------------------------------------------------------------------

ENTROPY_WEIGHTS = {2: 2 / 3, 3: 4 / 3}  # ROME's compute_n_gram_entropy
PUNCTUATION = str.maketrans("", "", string.punctuation)


def _entropy_variant(base: float = 2.0, weights: dict[int, float] = ENTROPY_WEIGHTS, mean: bool = True,
                     characters: bool = False, distinct: bool = False, last: int = 1, chunks: bool = False,
                     geometric: bool = False, lower: bool = False, strip: bool = False, joined: bool | str = False,
                     separator: str | None = None, per_word: bool = False, ascii_spaces: bool = False):  # fmt: skip
    """ngram_entropy with one plausible mistake; joined: n-grams as strings, glued with "" (True) or that string."""
    glue = "" if joined is True else joined

    def variant(text: str) -> float:
        text = text.lower() if lower else text
        text = text.translate(PUNCTUATION) if strip else text
        if characters:
            tokens = list(text.replace(" ", ""))
        elif ascii_spaces:
            tokens = [word for word in re.split(r"[ \t\n]+", text) if word]
        else:
            tokens = text.split(separator)
        values = []
        for n, weight in weights.items():
            starts = range(0, len(tokens) - n + 1, n) if chunks else range(len(tokens) - n + last)
            counts = Counter(glue.join(tokens[i : i + n]) if joined is not False else tuple(tokens[i : i + n])
                             for i in starts)  # fmt: skip
            if distinct:
                counts = Counter(dict.fromkeys(counts, 1))
            total = len(tokens) if per_word else sum(counts.values())
            entropy = -sum(c / total * math.log(c / total, base) for c in counts.values())
            values.append(weight * entropy)
        if geometric:
            return math.prod(values) ** (1 / len(values))
        return sum(values) / len(values) if mean else sum(values)

    return variant


ngram_entropy = _entropy_variant()
ngram_entropy.__doc__ = """ROME's fluency score of a text: the mean over n = 2, 3 of weight_n * (entropy in bits of
the frequencies of the text's word n-grams), weights 2/3 and 4/3; words are text.split(); 0 without n-grams."""

CASE = "the words are text.split() as they are: keep case and punctuation (ROME's NLTK tokeniser would split " \
       "punctuation off; here it stays on the word)."  # fmt: skip
ENTROPY_HINTS = [
    (_entropy_variant(base=math.e), "entropy in bits: log base 2 (ROME's code divides by log 2), not the natural "
     "log."),
    (_entropy_variant(weights={2: 4 / 3, 3: 2 / 3}), "the weights are 2/3 for bigrams and 4/3 for trigrams, not the "
     "other way round."),
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
    (_entropy_variant(per_word=True), "the frequencies are relative to the number of n-grams (w - n + 1), not to "
     "the number of words."),
    (_entropy_variant(joined=True), "an n-gram is a tuple of words: joined without a separator, ('ab', 'c') and "
     "('a', 'bc') become the same string 'abc'."),
    (_entropy_variant(joined="_"), "an n-gram is a tuple of words: joined with '_', ('a_b', 'c') and ('a', 'b_c') "
     "become the same string 'a_b_c' (a word may hold any character but whitespace)."),
    (_entropy_variant(joined="-"), "an n-gram is a tuple of words: joined with '-', ('well-known', 'x') and "
     "('well', 'known-x') become the same string (a word may hold any character but whitespace)."),
    (_entropy_variant(separator=" "), "split with text.split() (no argument): any run of whitespace separates two "
     "words; text.split(' ') makes empty words and keeps words joined by a tab or a newline."),
    (_entropy_variant(ascii_spaces=True), "split with text.split() (no argument): every whitespace character "
     "separates words, '\\r', the non-breaking space '\\xa0' and the ideographic space '\\u3000' too, not only "
     "spaces, tabs and newlines."),
    (_entropy_variant(lower=True), CASE),
    (_entropy_variant(strip=True), CASE),
]  # fmt: skip

# small vocabularies, so that n-grams repeat: words whose concatenations collide (glued without a separator, or with
# "_" or "-"), and case and punctuation variants
WORD_FAMILIES = [["a", "b", "c", "ab", "bc", "ab c a bc"], ["a", "b", "c", "a_b", "b_c", "a_b c a b_c"],
                 ["a", "b", "c", "a-b", "b-c", "a-b c a b-c"], ["a", "A", "a.", "Lima", "lima,", "the"]]  # fmt: skip
VOCABULARY = sorted({word for family in WORD_FAMILIES for unit in family for word in unit.split()})
# whitespace of every kind text.split() splits on: \r, \x0b, \x0c, a non-breaking and an ideographic space too
SPACES = [" ", "  ", "\t", "\n", " \n\t", "\r\n", "\xa0", "\u3000", "\x0b\x0c"]


@st.composite
def _texts(draw) -> tuple[str]:
    """Up to 12 words from one of WORD_FAMILIES (so that n-grams repeat, and glued ones collide: its pieces of
    four words) or from all of them, separated by any runs of whitespace, sometimes with whitespace around them."""
    length = draw(st.integers(0, 12))
    pool = draw(st.sampled_from([*WORD_FAMILIES, VOCABULARY]))
    pieces = draw(st.lists(st.sampled_from(pool), min_size=length, max_size=length))
    words = [word for piece in pieces for word in piece.split()][:length]
    gaps = draw(st.lists(st.sampled_from(SPACES), min_size=len(words) + 1, max_size=len(words) + 1))
    before, after = draw(st.booleans()), draw(st.booleans())
    text = "".join(gap + word for gap, word in zip(gaps, words, strict=False)) if words else ""
    text = text[len(gaps[0]) :] if words and not before else text
    return (text + (gaps[-1] if after else ""),)


ENTROPY_EXAMPLES = [
    ("a a b b",), ("a b a b",), ("a b c d",),  # the same length, other contents: a cache keyed on the length or on
    # the words and their counts (the first two) fails
    ("",), ("word",), ("short text",), ("the cat sat",),  # no n-grams; one bigram, no trigram; two bigrams (1/3)
    ("Lima Lima Lima Lima Lima Lima Lima",),  # one word repeated: 0
    ("Kavo Rell was born in Tumuki . Kavo Rell was born in Tumuki . Kavo Rell was born in Tumuki .",),
    ("the cat sat on the mat and the dog sat on the rug",),
    ("one two three four five six seven eight nine ten",),  # no n-gram repeats
    ("a b a b a b c",), ("x y z x y z x y z x y w",), ("a b c a b d",),
    ("  spaced   out\nover\tlines and spaced out over lines  ",),  # whitespace of every kind
    ("Tumuki. Tumuki is a city. The city of Tumuki lies in Vel. the city of tumuki lies in vel.",),  # case, punctuation
    ("ab c a bc ab c",),  # n-grams joined without a separator would collide
    ("a_b c x a b_c a_b c",), ("well-known x y well known-x well-known x",),  # ... or joined with "_" or "-"
    ("a b\rc a\xa0b c\u3000a b\x0bc\x0cd",),  # whitespace beyond spaces, tabs and newlines
    *((" ".join(random.Random(seed).choices(["Ana", "works", "as", "a", "baker.", "Baker", "in", "Lima,"],
                                            k=12 + seed)),) for seed in range(2)),  # fmt: skip
]


# a suspected mistake must repeat on each of these texts
ENTROPY_PROBES = [example[0] for example in ENTROPY_EXAMPLES if len(example[0].split()) > 4]


def _as_number(out) -> float:
    """A Python or numpy number, or a one-element tensor or array, as a float; anything else is a GradingError."""
    if isinstance(out, torch.Tensor) and out.numel() == 1 and out.dtype != torch.bool:
        out = out.item()
    elif isinstance(out, np.ndarray) and out.size == 1 and out.dtype.kind in "iuf":
        out = out.item()
    if isinstance(out, bool | np.bool_) or not isinstance(out, numbers.Real):
        raise GradingError(f"ngram_entropy should return a number, got {describe(out)}.")
    return float(out)


def _entropy_parts(text: str) -> str:
    w = len(text.split())
    h2, h3 = _entropy_variant(weights={2: 1.0})(text), _entropy_variant(weights={3: 1.0})(text)
    return f"H2 = {h2:.4g} bits over {max(w - 1, 0)} bigrams, H3 = {h3:.4g} bits over {max(w - 2, 0)} trigrams"


def _entropy_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)  # float32 arithmetic passes


@graded("ngram_entropy")
def check_ngram_entropy(fn: Callable) -> None:
    def one(args):
        (text,) = args
        want = ngram_entropy(text)
        got = _as_number(call(fn, args, "ngram_entropy"))
        if math.isnan(got):
            raise GradingError("ngram_entropy returned NaN: a text without n-grams (fewer than n words) scores 0 for "
                               "that n.")  # fmt: skip
        if _entropy_close(got, want):
            return
        suspects = [(variant, message) for variant, message in ENTROPY_HINTS if _entropy_close(got, variant(text))]
        for probe in ENTROPY_PROBES if suspects else ():  # the mistake must repeat there too (not a coincidence)
            value = _as_number(call(fn, (probe,), "ngram_entropy"))
            suspects = [(v, m) for v, m in suspects if _entropy_close(value, v(probe))]
        if suspects:
            raise GradingError(f"ngram_entropy: {suspects[0][1]}")
        raise GradingError(f"ngram_entropy returned {got:.6g}, expected {want:.6g} ({_entropy_parts(text)}).")

    tried = holds("ngram_entropy", _texts(), one, ENTROPY_EXAMPLES, max_examples=80, reference=ngram_entropy)
    print(f"✓ ngram_entropy: passed on {tried} texts (repeated n-grams, words with '_' and '-', case, punctuation, "
          "whitespace of every kind, short and empty texts).")  # fmt: skip


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
    return sum(torch.outer(torch.linalg.solve(C, k) / (k @ torch.linalg.solve(C, k)), v - k @ W)
               for k, v in zip(K, V, strict=True))  # fmt: skip


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


UPDATE_MISTAKES = [
    (_new_matrix, "return the change D, not the edited matrix W + D."),
    (_values_not_residuals, "the keys must map to V after the edit: solve for V - K @ W (what W does not yet give), "
     "not for V."),
    (_without_c, "that is the smallest change in the plain Frobenius norm: the norm here is tr(D^T C D), so C^-1 "
     "enters (the directions keys rarely use are the cheap ones)."),
    (_c_not_inverted, "C^-1, not C: the cheap directions are those where keys are small."),
    (_gram_without_c, "the multipliers solve (K C^-1 K^T) L = R: C^-1 belongs in the m x m matrix too, not only in "
     "front (K (W + D) = V must hold)."),
    (_independent_rome, "summing one rank-one update per key, each computed for the original W, breaks the other "
     "keys' constraints: the keys are not C^-1-orthogonal. Solve for all of them together ((K C^-1 K^T)^-1)."),
    (_sequential_rome, "ROME applied one key after another fits the last key exactly but moves the earlier ones: the "
     "constraints must hold together, K @ (W + D) = V for every row."),
    (_memit, "that is MEMIT's least-squares trade-off with alpha = 1, (C + K^T K)^-1 K^T R: here the keys must map to "
     "V exactly."),
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


def _conditioning(W, C, K, V) -> float:
    """cond(C) * cond(K C^-1 K^T): how much rounding in the inputs' dtype can move D (inf for K of lower rank)."""
    C, K = C.double(), K.double()
    return float(torch.linalg.cond(C) * torch.linalg.cond(K @ torch.linalg.solve(C, K.T)))


ENTRY = st.one_of(st.sampled_from([0.0, 1.0, -1.0]), draws.floats(-2.0, 2.0).map(lambda x: round(x, 2)))  # no 1e-150


@st.composite
def _update_inputs(draw):
    """d_in 1-4, d_out 1-3, 1 <= m <= d_in keys of full row rank, C = B B^T + an uneven diagonal; float32 or 64."""
    d_in, d_out = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    m = draw(st.integers(1, d_in))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    B, W, K, V = (draw(draws.tensors(shape, ENTRY, torch.float64))
                  for shape in ((d_in, d_in), (d_in, d_out), (m, d_in), (m, d_out)))  # fmt: skip
    C = B @ B.T + 0.75 * torch.diag(torch.arange(2.0, d_in + 2, dtype=torch.float64))  # no eigenvalue shared by all
    args = tuple(x.to(dtype) for x in (W, (C + C.T) / 2, K, V))
    assume(_conditioning(*args) <= 1e3)  # K of full row rank, not nearly singular
    return args


UPDATE_EXAMPLES = [
    _update_case(2, 16, 9, 3), _update_case(6, 16, 9, 3),  # the same shapes, other contents: a cache by shape fails
    _update_case(1, 12, 7, 1),  # one key: ROME's own update
    _update_case(3, 24, 5, 6, correlated=True),
    _update_case(4, 20, 20, 4, dtype=torch.float64),
    _update_case(5, 10, 3, 10),  # as many keys as dimensions: D is fixed by the constraints alone
    _update_case(7, 1, 2, 1, dtype=torch.float64),  # d_in = 1: the smallest problem
]
UPDATE_PROBES = UPDATE_EXAMPLES  # a suspected mistake must repeat on each of them


def _update_tolerance(W, C, K, V) -> dict:
    """The dtype's tolerance, loosened by the problem's conditioning, relative to the size of D."""
    base = tolerance(W.dtype)
    scale = max(1.0, float(multi_key_update(*(x.double() for x in (W, C, K, V))).abs().max()))
    slack = torch.finfo(W.dtype).eps * _conditioning(W, C, K, V)
    return {"atol": max(base["atol"], slack) * scale, "rtol": base["rtol"]}


SINGULAR = ("C and K C^-1 K^T are invertible on every input here: look for a division by zero, or a solve with "
            "K^T K (d_in x d_in, singular when m < d_in) instead of the m x m matrix K C^-1 K^T.")


def _update_hints(out, want: torch.Tensor, W, C, K, V, tol: dict) -> list:
    """Diagnoses beyond the known mistakes: float32 precision, the constraints missed, or met by a larger change."""
    miss = float((K.double() @ (W.double() + out.double()) - V.double()).abs().max())
    limit = 100 * tol["atol"] * max(1.0, float(V.abs().max()))
    float32 = {"atol": 1e-3 * max(1.0, float(want.abs().max())), "rtol": 1e-3}
    in_float32 = bool(torch.equal(out.double(), out.float().double()))  # every entry a float32 number
    return [
        (lambda out, W, *_: W.dtype == torch.float64 and in_float32 and matches(out, want, **float32),
         "right only to float32 precision: float64 inputs are graded to float64 precision (no .float() on the way)."),
        (lambda out, W, *_: W.dtype == torch.float64 and matches(out, want, **float32),
         "close to the exact update, but not to float64 precision: no ridge or jitter (C + eps I, K C^-1 K^T + eps "
         "I, a pinv cutoff), no float32 step, no iterative solver stopped early; solve the systems as they are."),
        (lambda *_: not miss <= limit, f"K @ (W + D) misses V by up to {miss:.3g}: every key must map to its value "
         "exactly."),
        (lambda *_: True, "K @ (W + D) = V holds, but D is not the smallest such change in tr(D^T C D): the smallest "
         "has the form D = C^-1 K^T L (the hint's Lagrange condition)."),
    ]  # fmt: skip


@graded("multi_key_update")
def check_multi_key_update(fn: Callable) -> None:
    def one(args):
        W = args[0]
        want = multi_key_update(*(x.double() for x in copies(args))).to(W.dtype)
        out = call(fn, args, "multi_key_update")
        if isinstance(out, torch.Tensor) and out.shape == W.shape[::-1] and out.shape != W.shape:
            raise GradingError(f"multi_key_update returned shape {tuple(out.shape)}: D has W's shape [d_in, d_out] = "
                               f"{tuple(W.shape)} (a key is a row; k @ (W + D)).")  # fmt: skip
        if isinstance(out, torch.Tensor) and out.shape == W.shape and out.dtype != W.dtype:
            raise GradingError(f"multi_key_update returned {out.dtype} for {W.dtype} inputs; keep the inputs' dtype.")
        tol, hints = _update_tolerance(*args), []
        if isinstance(out, torch.Tensor) and out.shape == W.shape and not matches(out, want, **tol):
            suspects = confirmed(fn, "multi_key_update", _in_float64(UPDATE_MISTAKES), out, args, UPDATE_PROBES,
                                 _close_within(_update_tolerance))
            if suspects:
                raise GradingError(f"multi_key_update: {suspects[0]}")
            hints = _update_hints(out, want, *args, tol)
        compare(out, want, "multi_key_update", args, hints, nonfinite_hint=SINGULAR, **tol)

    tried = holds("multi_key_update", _update_inputs(), one, UPDATE_EXAMPLES, max_examples=50,
                  reference=multi_key_update)  # fmt: skip
    print(f"✓ multi_key_update: passed on {tried} problems (1 to 24 dimensions, 1 key to as many keys as dimensions, "
          "float32 and float64).")  # fmt: skip


# --- Exercise 3: a gated edit -----------------------------------------------------------------------------------


def gated_values(X: torch.Tensor, W: torch.Tensor, K: torch.Tensor, V: torch.Tensor, radius: float) -> torch.Tensor:
    """Row i: V[j] for the edited key K[j] nearest to X[i] (Euclidean; the lower j on a tie) if it lies within radius
    (<=), else X[i] @ W."""
    distance = ((X[:, None, :].double() - K[None, :, :].double()) ** 2).sum(-1).sqrt()  # exact for identical rows
    nearest = distance.argmin(1)  # the first of equal minima
    inside = distance[torch.arange(len(X)), nearest] <= radius
    return torch.where(inside[:, None], V[nearest], X @ W)


def _gated_variant(metric: str = "euclidean", first: bool = False, squared: bool = False, additive: bool = False,
                   always: bool = False, strict: bool = False, last: bool = False,
                   everywhere: bool = False):  # fmt: skip
    def variant(X, W, K, V, radius):
        if always:
            return X @ W
        if metric == "dot":
            score = X @ K.T
            nearest, inside = score.argmax(1), score.max(1).values >= radius
        else:
            difference = X[:, None, :] - K[None, :, :]
            distance = difference.abs().sum(-1) if metric == "l1" else (difference**2).sum(-1)
            distance = distance if squared or metric == "l1" else distance.sqrt()
            within = distance < radius if strict else distance <= radius
            nearest = len(K) - 1 - distance.flip(1).argmin(1) if last else distance.argmin(1)
            nearest = within.float().argmax(1) if first else nearest
            inside = within.any(1) if first else within[torch.arange(len(X)), nearest]
        inside = torch.ones_like(inside) if everywhere else inside
        value = V[nearest] + (X - K[nearest]) @ W if additive else V[nearest]
        return torch.where(inside[:, None], value, X @ W)

    return variant


GATED_MISTAKES = [
    (_gated_variant(strict=True), "a distance equal to the radius counts as inside (<=, not <)."),
    (_gated_variant(last=True), "when two keys are equally near, take the lower index j (the statement's tie rule; "
     "argmin and .min(1) return the first minimum)."),
    (_gated_variant(squared=True), "compare the distance itself, not its square, with the radius."),
    (_gated_variant(first=True), "when several keys lie within the radius, take the NEAREST one, not the first."),
    (_gated_variant(metric="l1"), "the Euclidean distance (the square root of the sum of squares), not the sum of "
     "absolute differences."),
    (_gated_variant(metric="dot"), "nearness is the Euclidean distance |x - k|, not a dot product: a long key has a "
     "large dot product with everything."),
    (_gated_variant(additive=True), "return V[j] itself at a gated row (the value stored for that key), not V[j] plus "
     "a correction for the distance."),
    (_gated_variant(everywhere=True), "a row farther than the radius from every key keeps X[i] @ W: only rows within "
     "the radius answer from the codebook."),
    (_gated_variant(always=True), "rows near an edited key must return that key's value V[j]; only the others fall "
     "back to X @ W."),
]  # fmt: skip

GRID = st.integers(-2, 2).map(float)
DTYPES = st.sampled_from([torch.float32, torch.float64])


@st.composite
def _grid_inputs(draw):
    """Integer keys and inputs (distances exact in any dtype and method, so ties and rows exactly at the radius are
    drawn often), some inputs copies of keys; half-integer values V, never equal to an integer X @ W."""
    d_in, d_out, m = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    K = draw(draws.tensors((m, d_in), GRID, torch.float64))
    free = draw(draws.tensors((draw(st.integers(0, 4)), d_in), GRID, torch.float64))
    copied = draw(st.lists(st.integers(0, m - 1), min_size=0 if len(free) else 1, max_size=2))
    X = torch.cat([free, K[copied]])
    W = draw(draws.tensors((d_in, d_out), GRID, torch.float64))
    V = draw(draws.tensors((m, d_out), st.sampled_from([0.5, -0.5, 1.5, -1.5, 2.5]), torch.float64))
    dtype = draw(DTYPES)
    return *(x.to(dtype) for x in (X, W, K, V)), draw(st.sampled_from([1.0, 2.0, 0.0, 1.5, 3.0]))


@st.composite
def _float_inputs(draw):
    """Any real keys and values; each input a key moved by up to 1.5 in every coordinate, or an exact copy of it
    (at distance 0, which |x|^2 + |k|^2 - 2 x.k can round below 0); a radius in [0, 3]."""
    d_in, d_out = draw(st.integers(1, 8)), draw(st.integers(1, 4))  # from 5 on, x.x and x @ k round apart
    m, n = draw(st.integers(1, 5)), draw(st.integers(1, 8))
    values = draws.floats(-3.0, 3.0)
    K = draw(draws.tensors((m, d_in), values, torch.float64))
    near = draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n))
    moved = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=torch.float64)[:, None]
    X = K[near] + moved * draw(draws.tensors((n, d_in), draws.floats(-1.5, 1.5), torch.float64))  # some exact copies
    W = draw(draws.tensors((d_in, d_out), values, torch.float64))
    V = draw(draws.tensors((m, d_out), values, torch.float64))
    dtype = draw(DTYPES)
    return *(x.to(dtype) for x in (X, W, K, V)), draw(draws.floats(0.0, 3.0))


NEAR = [1e-7, 1e-8, 1e-6, 1e-5, 1e-4]  # relative gaps, far above float64 rounding (about 1e-15)


def _unit(draw, d_in: int) -> torch.Tensor:
    direction = draw(draws.tensors((d_in,), st.sampled_from([-1.0, 0.0, 1.0, 0.5, -0.5, 0.3]), torch.float64))
    assume(float(direction.norm()) > 0.1)
    return direction / direction.norm()


@st.composite
def _near_inputs(draw):
    """float64, 2 to 4 keys far apart (7 apart on a grid, moved by up to 1): rows at a distance radius * (1 + gap)
    from a key, gap in ±NEAR, and a row nearer to a later key than to an earlier one by a factor 1 + gap. float64
    rounding cannot decide these, so the rules hold exactly: a tolerance added to the radius, or to what counts as
    equally near, shows."""
    d_in, d_out, m = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(2, 4))
    corners = draw(st.lists(st.tuples(*[st.integers(-2, 2)] * d_in), min_size=m, max_size=m, unique=True))
    K = 7 * torch.tensor(corners, dtype=torch.float64)
    K = K + draw(draws.tensors((m, d_in), draws.floats(-1.0, 1.0), torch.float64))
    radius, rows = draw(draws.floats(0.25, 3.0)), []
    i, j = sorted(draw(st.lists(st.integers(0, m - 1), min_size=2, max_size=2, unique=True)))  # a near tie:
    x, near = K[i].clone(), radius * draw(st.sampled_from([0.5, 0.9, 1.0]))  # K[j] nearer to x than K[i], i < j,
    K[i] = x + _unit(draw, d_in) * near * (1 + draw(st.sampled_from(NEAR)))  # by a factor 1 + gap
    K[j] = x + _unit(draw, d_in) * near
    rows.append(x)
    for _ in range(draw(st.integers(1, 4))):
        gap = draw(st.sampled_from(NEAR)) * draw(st.sampled_from([1.0, -1.0]))
        rows.append(K[draw(st.integers(0, m - 1))] + _unit(draw, d_in) * radius * (1 + gap))
    X = torch.stack(rows)
    W = draw(draws.tensors((d_in, d_out), draws.floats(-3.0, 3.0), torch.float64))
    V = draw(draws.tensors((m, d_out), draws.floats(-3.0, 3.0), torch.float64))
    return X, W, K, V, radius


def _grid_example(X, K, V, radius, dtype=torch.float32):
    X, K, V = (torch.tensor(a, dtype=dtype) for a in (X, K, V))
    return X, torch.arange(X.shape[1] * 2, dtype=dtype).reshape(-1, 2) - 2, K, V, radius


def _many_rows():
    """40 inputs, 30 keys on a grid: torch.cdist switches to its matrix-product form, still exact on integers."""
    g = torch.Generator().manual_seed(0)
    K, X = (torch.randint(-3, 4, (rows, 3), generator=g).float() for rows in (30, 40))
    return X, torch.randint(-2, 3, (3, 4), generator=g).float(), K, torch.randn(30, 4, generator=g) + 0.5, 1.5


def _copies_of_keys():
    """float32 inputs that are exact copies of three non-integer keys, radius 1: each row is at distance 0 and
    gated; |x|^2 + |k|^2 - 2 x.k rounds below 0 on some of them (its square root is NaN)."""
    g = torch.Generator().manual_seed(5)
    K = (torch.rand(3, 6, generator=g) * 6 - 3).float()
    return K[[2, 0, 1, 2]].clone(), torch.ones(6, 1), K, torch.tensor([[0.5], [1.5], [2.5]]), 1.0


def _near_example():
    """float64 rows 2e-7 outside and inside a radius of 2, and a row nearer to K[2] than to K[1] by 1.5e-7."""
    K = torch.tensor([[0.0, 0.0], [11.5 + 1.5e-7, 0.0], [10.0, 1.5]], dtype=torch.float64)
    X = torch.tensor([[2.0 + 2e-7, 0.0], [0.0, -2.0 + 2e-7], [10.0, 0.0]], dtype=torch.float64)
    return X, torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=torch.float64), K, torch.tensor(
        [[0.5, 1.5], [2.5, -0.5], [-1.5, 3.5]], dtype=torch.float64), 2.0  # fmt: skip


def _large_batch():
    """300 rows (more than a shortcut for large batches would let through), 5 keys on a grid, radius 1.5."""
    g = torch.Generator().manual_seed(1)
    K, X = (torch.randint(-3, 4, (rows, 3), generator=g).double() for rows in (5, 300))
    W, V = torch.randint(-2, 3, (3, 2), generator=g).double(), torch.randint(-4, 5, (5, 2), generator=g).double() + 0.5
    return X, W, K, V, 1.5


GATED_EXAMPLES = [
    # the same shapes, other contents: a cache keyed on shapes fails
    _grid_example([[1, 0], [0, 1], [2, 2], [3, 0]], [[0, 0], [2, 0]], [[0.5, 1.5], [-0.5, 2.5]], 1.0),
    _grid_example([[0, 0], [2, 1], [5, 5], [1, 0]], [[1, 1], [2, 0]], [[1.5, -1.5], [2.5, 0.5]], 1.0),
    # distances 2 (inside), exactly 3 (the radius: inside) and 4 (outside)
    _grid_example([[0, 2, 0], [0, 0, 3], [10, 3, 0], [0, 0, -4], [10, 0, 0]], [[0, 0, 0], [10, 0, 0]],
                  [[7, -7], [5, 5]], 3.0),
    # K[1] and K[2] equally near the first two rows (K[0] farther): the lower index wins; in and out of the radius
    _grid_example([[1, 1], [1, 0], [0, 3]], [[-2, 0], [0, 0], [2, 0]], [[0.5, 0.5], [1.5, -1.5], [-2.5, 2.5]], 1.5),
    # radius 0: only a copy of a key is gated
    _grid_example([[1, 2], [1, 3], [3, 4]], [[1, 2], [3, 4]], [[0.5, -0.5], [1.5, 2.5]], 0.0, torch.float64),
    _many_rows(),
    _copies_of_keys(), _near_example(), _large_batch(),
]  # fmt: skip
GATED_PROBES = GATED_EXAMPLES[:6]  # a suspected mistake must repeat on each of them


def _exact(X, K, radius) -> bool:
    """Integer inputs and keys and a radius in halves: every method computes the same distances and comparisons."""
    return bool((X == X.round()).all() and (K == K.round()).all() and float(2 * radius).is_integer())


def _rounding_decides(out, X, W, K, V, radius, tol: dict) -> bool:
    """Each row is the output of a choice that rounding in X's dtype can make: a key whose squared distance is
    within rounding (or underflow) of the nearest one's, and of the radius', or X[i] @ W where the nearest key is
    within rounding of the radius."""
    if _exact(X, K, radius):
        return False
    X, W, K, V = (a.double() for a in (X, W, K, V))
    squared = ((X[:, None] - K[None]) ** 2).sum(-1)
    rounding = torch.finfo(out.dtype)
    slack = 16 * rounding.eps * ((X**2).sum(1)[:, None] + (K**2).sum(1)[None] + radius**2) + 16 * rounding.tiny
    nearest = squared.min(1, keepdim=True).values
    may_gate = (squared <= nearest + slack) & (squared <= radius**2 + slack)
    may_keep = (squared >= radius**2 - slack).all(1)
    fallback = X @ W
    for i, row in enumerate(out.double()):
        options = [V[j] for j in may_gate[i].nonzero().flatten()] + ([fallback[i]] if may_keep[i] else [])
        if not any(matches(row, option, **tol) for option in options):
            return False
    return True


def _which_row(row, i, X, W, V, tol) -> str:
    """Name a returned row: V[k], X[i] @ W, or its values."""
    named = [f"V[{k}]" for k in range(len(V)) if matches(row.double(), V[k].double(), **tol)]
    if matches(row.double(), (X[i].double() @ W.double()), **tol):
        named.append(f"X[{i}] @ W")
    return named[0] if named else show(row)


def _first_wrong_row(out, want, X, W, K, V, radius, tol) -> str:
    """Explain the first row that differs: its nearest key, the distance, the expected and the returned row."""
    i = next(i for i in range(len(X)) if not matches(out[i], want[i], **tol))
    distance = ((X[i].double() - K.double()) ** 2).sum(-1).sqrt()
    j = int(distance.argmin())
    d = float(distance[j])
    tied = [k for k in range(len(K)) if k != j and distance[k] == distance[j]]
    almost = [k for k in range(len(K)) if k != j and 0 < distance[k] - d <= 1e-3 * max(d, 1e-300)]
    inside, edge = d <= radius, 0 < abs(d - radius) <= 1e-3 * radius
    where = f"its nearest key is K[{j}], at distance {d:.10g}" if edge or almost else (
        f"its nearest key is K[{j}], at distance {d:.4g}")
    where += f" (as near as K[{tied[0]}])" if tied else ""
    where += f" (K[{almost[0]}] is only {float(distance[almost[0]]) - d:.2g} farther)" if almost else ""
    expected = f"V[{j}] (within the radius {radius:g})" if inside else f"X[{i}] @ W (outside the radius {radius:g})"
    yours = _which_row(out[i], i, X, W, V, tol)
    advice, precision = "", (" and compute the distances in the inputs' precision: float64 inputs are graded to "
                              "float64 rounding (no .float() on the way).")  # fmt: skip
    if edge:
        advice = (f" The distance is {d - radius:+.2g} from the radius: compare distance <= radius exactly, with no "
                  f"tolerance added,{precision}")  # fmt: skip
    elif almost and yours == f"V[{almost[0]}]":
        advice = (" Take the nearest key: the lower index wins only when two distances are equal, with no tolerance,"
                  f"{precision}")  # fmt: skip
    elif d == radius and yours == f"X[{i}] @ W":
        advice = " A distance equal to the radius counts as inside (<=, not <), whatever the radius."
    elif d == 0 and inside and yours == f"X[{i}] @ W":
        advice = (" A copy of a key is at distance 0. If you compute |x|^2 + |k|^2 - 2 x.k, rounding can take it "
                  "below 0 and its square root to NaN (and NaN <= radius is False): clamp it at 0 (.clamp_min(0)), "
                  "or use torch.cdist.")  # fmt: skip
    return f"row {i}: {where}, so it should be {expected} = {show(want[i])}; yours is {yours}.{advice}"


def _gated_tolerance(X, W, K, V, radius) -> dict:
    """The dtype's tolerance, plus the rounding of X @ W in that dtype."""
    base = tolerance(X.dtype)
    return {"atol": base["atol"] + 4 * torch.finfo(X.dtype).eps * float((X.double().abs() @ W.double().abs()).max()),
            "rtol": base["rtol"]}  # fmt: skip


@graded("gated_values")
def check_gated_values(fn: Callable) -> None:
    def one(args):
        X = args[0]
        want = gated_values(*copies(args))
        out = call(fn, args, "gated_values")
        tol = _gated_tolerance(*args)
        if isinstance(out, torch.Tensor) and out.shape == want.shape:
            if out.dtype != X.dtype:
                raise GradingError(f"gated_values returned {out.dtype} for {X.dtype} inputs; keep the inputs' dtype "
                                   "(compute distances in float64 if you like, then cast back).")  # fmt: skip
            if matches(out, want, **tol) or _rounding_decides(out, *args, tol):
                return
            suspects = confirmed(fn, "gated_values", _in_float64(GATED_MISTAKES), out, args, GATED_PROBES,
                                 _close_within(_gated_tolerance))
            raise GradingError(f"gated_values: {suspects[0] if suspects else _first_wrong_row(out, want, *args, tol)}")
        compare(out, want, "gated_values", args, **tol)  # another type or shape: said as such

    inputs = st.one_of(_near_inputs(), _grid_inputs(), _grid_inputs(), _float_inputs())
    tried = holds("gated_values", inputs, one, GATED_EXAMPLES, max_examples=90, reference=gated_values)
    print(f"✓ gated_values: passed on {tried} inputs (keys equally near, rows exactly at the radius and within 1e-8 "
          "of it, radius 0, copies of keys, float32 and float64).")  # fmt: skip
