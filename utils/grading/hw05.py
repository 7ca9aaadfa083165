"""Graders for homework 05 (evaluation): Chatbot Arena's style features, a Bradley–Terry fit with ties and a
first-move term, the Min-K%++ score, and a GSM-Symbolic perturbation that adds a clause. The study reuses
homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check draws its inputs at run time with Hypothesis (replies, battle logs, logits and word problems over the
statement's whole domain, its edge cases as explicit examples) and runs the student's function through
`core.call`: expected values first, deep copies handed over, the smallest failing input shown.
"""

from __future__ import annotations

import math
import random
import re
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
    confirmed,
    describe,
    expect_list,
    graded,
    holds,
    show,
)
from utils.grading.hw02 import check_study
from utils.tinyworld import symbolic
from utils.tinyworld.tasks import ITEMS

__all__ = ["check_add_clause", "check_bradley_terry_fit", "check_min_k_plus_plus", "check_style_differences",
           "check_study"]  # fmt: skip


def _number(x, name: str) -> float:
    """A Python, numpy or one-element torch number as a float, else a readable GradingError."""
    if (isinstance(x, torch.Tensor) and x.numel() == 1) or (isinstance(x, np.ndarray) and x.size == 1):
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise GradingError(f"{name} should return numbers, got {describe(x)}.")
    return float(x)


# --- Exercise 1: style features ----------------------------------------------------------------------------------

HEADER = re.compile(r"^[ \t]*#{1,6} ", re.MULTILINE)
BOLD = re.compile(r"\*\*[^\n]+?\*\*|__[^\n]+?__")
LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)]) ", re.MULTILINE)
FEATURES = ["length", "headers", "bold", "list items"]


def style_counts(reply: str) -> list[int]:
    """[words, markdown headers, bold spans, list items] of a reply."""
    return [len(reply.split()), len(HEADER.findall(reply)), len(BOLD.findall(reply)), len(LIST_ITEM.findall(reply))]


def normalised_differences(a: list[float], b: list[float]) -> list[float]:
    return [(x - y) / (x + y) if x + y else 0.0 for x, y in zip(a, b, strict=True)]


def style_differences(reply_a: str, reply_b: str) -> list[float]:
    """Chatbot Arena's style features: (a - b) / (a + b) per count, 0 where both counts are 0."""
    return normalised_differences(style_counts(reply_a), style_counts(reply_b))


def _bold_kinds_apart(reply_a: str, reply_b: str) -> list[float]:
    """The other reading the statement allows: `**` spans and `__` spans counted each on their own (they differ
    from one left-to-right pass only where a span of one kind overlaps one of the other)."""

    def counts(reply: str) -> list[int]:
        words, headers, _, items = style_counts(reply)
        return [words, headers, len(re.findall(r"\*\*[^\n]+?\*\*", reply)) + len(re.findall(r"__[^\n]+?__", reply)), items]

    return normalised_differences(counts(reply_a), counts(reply_b))


def _style_variant(raw=False, markers=False, underscores=True, any_hash=False, indented=True, ordered=True,
                   characters=False, nan=False, split_space=False, swapped=False, one_digit=False,
                   across_lines=False, empty_bold=False, stripped=False, reordered=False,
                   intraword=False):  # fmt: skip
    """style_differences with one plausible mistake."""

    def counts(reply: str) -> list[int]:
        lines = [line.strip() for line in reply.split("\n")] if stripped else [reply]
        words = len(reply) if characters else len(reply.split(" ") if split_space else reply.split())
        if any_hash:
            headers = sum(line.lstrip().startswith("#") for line in reply.split("\n"))
        else:
            headers = sum(len(HEADER.findall(line)) for line in lines)
        if markers:
            bold = reply.count("**") + reply.count("__")
        else:
            text = "." if across_lines else "[^\\n]"
            inside = text + ("*?" if empty_bold else "+?")
            under = rf"(?<!\w)__{inside}__(?!\w)" if intraword else rf"__{inside}__"  # CommonMark's, or any
            pattern = rf"\*\*{inside}\*\*" + (rf"|{under}" if underscores else "")
            bold = len(re.findall(pattern, reply, re.DOTALL if across_lines else 0))
        number = r"\d" if one_digit else r"\d+"
        marker = rf"(?:[-*+]|{number}[.)]) " if ordered else r"[-*+] "
        items = sum(len(re.findall("^" + (r"[ \t]*" if indented else "") + marker, line, re.MULTILINE))
                    for line in lines)  # fmt: skip
        return [words, bold, headers, items] if reordered else [words, headers, bold, items]

    def variant(reply_a, reply_b):
        a, b = counts(reply_a), counts(reply_b)
        if swapped:
            a, b = b, a
        if raw:
            return [float(x - y) for x, y in zip(a, b, strict=True)]
        return [(x - y) / (x + y) if x + y else (math.nan if nan else 0.0) for x, y in zip(a, b, strict=True)]

    return variant


STYLE_HINTS = [
    (_style_variant(raw=True), "divide each difference by the sum of the two counts, (a - b) / (a + b): a 20-word "
     "gap matters between short replies, not between long ones."),
    (_style_variant(swapped=True), "each difference is reply_a's count minus reply_b's, (a - b) / (a + b), not "
     "b - a."),
    (_style_variant(reordered=True), "return the features in the statement's order: [length, headers, bold, "
     "list items]."),
    (_style_variant(markers=True), "count bold SPANS (**text** or __text__), not the ** markers: each span has two."),
    (_style_variant(underscores=False), "__text__ is bold too."),
    (_style_variant(intraword=True), "a __text__ span counts inside a word too ('snake__case__x' has one): the "
     "statement's rule, not CommonMark's, which ignores underscores between letters."),
    (_style_variant(across_lines=True), "a bold span stays on one line: ** on one line and ** on the next make no "
     "span."),
    (_style_variant(empty_bold=True), "a bold span has at least one character between its markers: '****' is no "
     "span."),
    (_style_variant(any_hash=True), "a header is 1 to 6 '#' and then a space, at the start of a line (after any "
     "spaces): '#hashtag' and '#######' are not headers."),
    (_style_variant(indented=False), "list items may be indented: allow spaces before the marker."),
    (_style_variant(ordered=False), "numbered items ('1. ' or '2) ') are list items too."),
    (_style_variant(one_digit=True), "a numbered item's number may have several digits ('10. ')."),
    (_style_variant(stripped=True), "a header or item with nothing after its space still counts ('## ' is a "
     "header, '- ' an item): don't strip the end of the line before matching."),
    (_style_variant(split_space=True), "length is the number of words, reply.split() (any run of spaces, tabs or "
     "newlines), not reply.split(' ')."),
    (_style_variant(characters=True), "length is the number of words (reply.split()), not characters."),
]  # fmt: skip

# what a line of a reply is made of: ties between counts, markers at the edges of the rules, tabs and empty lines
_INDENTS = ["", "", " ", "  ", "\t", "    "]
_MARKERS = ["", "", "", "# ", "## ", "###### ", "####### ", "#", "#tag ", "- ", "* ", "+ ", "-", "*", "1. ",
            "2) ", "10. ", "3.", "1.5 ", "a) ", "**", "__"]  # fmt: skip
_PIECES = ["word", "a", "two words", "**b**", "__c__", "**", "__", "*", "_", "#", "- x", "1.", "2**10", "😊",
           "****", "*****", "**__d**__", "snake__case__x", "\t", "  "]  # fmt: skip


def _reply():
    body = st.lists(st.tuples(st.sampled_from(["", " ", " ", "\t", "  "]), st.sampled_from(_PIECES)), max_size=4)
    line = st.tuples(st.sampled_from(_INDENTS), st.sampled_from(_MARKERS), body).map(
        lambda imb: imb[0] + imb[1] + "".join(sep + piece for sep, piece in imb[2]))
    return st.lists(line, max_size=4).map("\n".join)


# a pair on which every mistake above gives its own answer: where one fits a smaller input, it confirms the diagnosis
STYLE_PROBE = ("## Answer\n\n**Lima** is  the snake__case__x capital.\n\n- It is in Peru\n  - It is __large__\n10. ten"
               "\n#tag\n## \n****",
               "# Summary\n### Details\n1. **Lima** **z** and **w**\n2) __Peru__ and **x\ny**\n\t3. Andes\n   - coast\n- ")
# then pairs with the same lengths (in characters and in words) and other answers, so a cache keyed on sizes fails
STYLE_EXAMPLES = [
    STYLE_PROBE,
    ("# Hi\n- one two", "**bold** text"),
    ("#Hi\n-  one two", "text **bold**"),
    ("#hashtag and ####### seven is no header\n* one\n+ two", "Plain words only, with a stray * in the middle."),
    ("  ## indented header\n\t3. indented item\n10. tenth item", "word " * 40),
    ("**Note:** in Python, 2**10 is 1024", "**Answer:** 1024"),  # a stray ** is no bold span
    ("## \n- \n****\n**a\nb**", "two\twords"),  # empty header and item count; no empty or two-line span
    ("snake__case__x", "x"),  # a __ span inside a word counts (the statement's rule, not CommonMark's)
    ("", ""),
    ("Same length", "Same length"),
]  # fmt: skip


def _close_lists(got: list[float], want: list[float]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6) for x, y in zip(got, want, strict=True))


def _read_style(out) -> list[float]:
    if hasattr(out, "to_numpy"):  # a pandas Series
        out = out.to_numpy()
    out = expect_list(out, "style_differences", 4, "a list of 4 numbers (length, headers, bold, list items)")
    return [_number(x, "style_differences") for x in out]


def _style_one(fn: Callable) -> Callable:

    def one(args):
        reply_a, reply_b = args
        want, other = style_differences(reply_a, reply_b), _bold_kinds_apart(reply_a, reply_b)
        got = _read_style(call(fn, (reply_a, reply_b), "style_differences"))
        if _close_lists(got, want) or _close_lists(got, other):
            return
        if any(math.isnan(x) for x in got):
            raise GradingError("style_differences returned NaN: when both replies have none of something, "
                               "(a - b) / (a + b) is 0 / 0; that difference is 0.")  # fmt: skip
        mistakes = confirmed(fn, "style_differences", STYLE_HINTS, got, args, [STYLE_PROBE],
                             lambda got, wrong, _: _close_lists(got, wrong), _read_style)  # fmt: skip
        if mistakes:
            raise GradingError(f"style_differences: {mistakes[0]}")
        wrong = [n for n, x, y in zip(FEATURES, got, want, strict=True) if not math.isclose(x, y, abs_tol=1e-6)]
        raise GradingError(f"style_differences: {', '.join(wrong)} differ: returned {show(got)}, expected "
                           f"{show(want)} (counts {style_counts(reply_a)} and {style_counts(reply_b)}).")  # fmt: skip

    return one


@graded("style_differences")
def check_style_differences(fn: Callable) -> None:
    tried = holds("style_differences", st.tuples(_reply(), _reply()), _style_one(fn), STYLE_EXAMPLES, 80,
                  style_differences)  # fmt: skip
    print(f"✓ style_differences: passed on {tried} pairs of replies (headers, bold, lists, empty replies, "
          "markers at the edges of each rule).")  # fmt: skip


# --- Exercise 2: Bradley–Terry with ties and a first-move term ----------------------------------------------------

OUTCOME = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}
FIT_TOLERANCE = 0.1  # rating points: Newton's method, or gradient steps run until below 0.0001 point, are closer


def _models(battles: list[dict]) -> list[str]:
    return sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})


def _newton(battles: list[dict], first_move: bool = True, l2: float = 0.0, outcome: dict = OUTCOME,
            tie_weight: float = 1.0):  # fmt: skip
    """The maximum-likelihood fit (with an L2 penalty in log-odds if l2 > 0, each tie weighing tie_weight
    battles): (models, log-odds coefficients with the first model's held at 0 and the first-move term last,
    converged)."""
    models = _models(battles)
    X = np.zeros((len(battles), len(models) + 1))
    for i, b in enumerate(battles):
        X[i, models.index(b["model_a"])] += 1.0
        X[i, models.index(b["model_b"])] -= 1.0
        X[i, -1] = 1.0  # model_a was shown first
    y = np.array([outcome[b["winner"]] for b in battles])
    w = np.array([tie_weight if b["winner"] == "tie" else 1.0 for b in battles])
    Z = X[:, 1:] if first_move else X[:, 1:-1]
    theta, converged = np.zeros(Z.shape[1]), False
    for _ in range(50):
        p = 1 / (1 + np.exp(-Z @ theta))
        step = np.linalg.solve((Z * (w * p * (1 - p))[:, None]).T @ Z + l2 * np.eye(len(theta)),
                               Z.T @ (w * (y - p)) - l2 * theta)  # fmt: skip
        theta += step
        if np.abs(step).max() < 1e-9:
            converged = True
            break
    return models, np.append(theta, 0.0) if not first_move else theta, converged


def _ratings(models: list[str], theta: np.ndarray, scale: float = 400.0) -> tuple[dict[str, float], float]:
    beta = np.concatenate([[0.0], theta[:-1]]) * scale
    return dict(zip(models, beta - beta.mean() + 1000, strict=True)), float(theta[-1] * scale)


def bradley_terry_fit(battles: list[dict]) -> tuple[dict[str, float], float]:
    """Ratings (mean 1000, scale 400, natural exp) and the first-shown side's advantage, ties as half a win each,
    by Newton's method: the notebook's solution."""
    models, theta, _ = _newton(battles)
    return _ratings(models, theta)


def simulated_log(seed: int, n: int, n_models: int, first: float, ties: float, favoured_first: bool = False):
    """Battles drawn from known ratings with a first-move advantage; with favoured_first the strongest model is
    always shown first (as when a new model is always put on the left)."""
    rng = np.random.default_rng(seed)
    words = ["otter", "lynx", "heron", "bison", "gecko", "moose", "quail", "viper"]
    names = [f"{w}-{rng.integers(1, 99)}" for w in rng.choice(words, n_models, replace=False)]
    true = dict(zip(names, rng.normal(1000, 120, n_models), strict=True))
    strongest = max(true, key=true.get)
    battles = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        if favoured_first and b == strongest:
            a, b = b, a
        if rng.random() < ties:
            winner = "tie"
        else:
            winner = "model_a" if rng.random() < 1 / (1 + np.exp(-(true[a] - true[b] + first) / 400)) else "model_b"
        battles.append({"model_a": str(a), "model_b": str(b), "winner": winner})
    return battles


def _has_finite_fit(battles: list[dict]) -> bool:
    """The maximum-likelihood fit exists, is unique and is moderate (within 12 log-odds, 4800 points)."""
    if not battles:
        return False
    try:
        with np.errstate(over="ignore"):  # a log without a finite fit: its steps run off
            _, theta, converged = _newton(battles)
    except np.linalg.LinAlgError:  # some models never meet, or the position is one column with a model's
        return False
    return converged and bool(np.abs(theta).max() < 12)


def _with_a_finite_fit(battles: list[dict], names: list[str], decided: bool) -> list[dict]:
    """The log, with battles appended (for each ordered pair of models in turn) until its fit is finite: both
    outcomes of a pair if `decided` (then its fit without ties is finite too), else a tie (a model may never win)."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    pairs = [p for a, b in pairs for p in ((a, b), (b, a))]
    battles = list(battles)
    for a, b in [(None, None), *pairs]:
        if a is not None:
            extra = ["model_a", "model_b"] if decided else ["tie"]
            battles += [{"model_a": a, "model_b": b, "winner": w} for w in extra]
        kept = [x for x in battles if x["winner"] != "tie"] if decided else battles
        if _models(kept) == _models(battles) and _has_finite_fit(kept):
            return battles
    raise AssertionError("every ordered pair met with both outcomes: the fit is finite")


MODEL_NAMES = ["otter-7b", "lynx-2", "heron", "bison-70b", "gecko-mini", "moose"]


@st.composite
def _battle_logs(draw) -> list[dict]:
    """Logs of 2 to 5 models (names repeating across logs), up to 16 drawn battles and those appended to make the
    fit finite, ties and unbalanced positions common; either every model wins some decided battle, or (ties
    appended instead) a model may never win."""
    names = draw(st.lists(st.sampled_from(MODEL_NAMES), min_size=2, max_size=5, unique=True))
    raw = draw(st.lists(st.tuples(st.integers(0, len(names) - 1), st.integers(1, len(names) - 1),
                                  st.sampled_from(["model_a", "model_b", "tie"])), min_size=1, max_size=16))  # fmt: skip
    battles = [{"model_a": names[i], "model_b": names[(i + j) % len(names)], "winner": w} for i, j, w in raw]
    return _with_a_finite_fit(battles, names, decided=not draw(st.booleans()))


LOPSIDED = [0, 5, 15, 40]  # wins of the stronger side in one position of a pair, besides one tie or loss


@st.composite
def _lopsided_logs(draw) -> list[dict]:
    """Logs of 2 to 4 models in a chain, each stronger than the next by up to 40 wins in a position against one
    tie (or one loss): fitted coefficients up to 12 log-odds, where a fit stopped after a fixed number of steps
    (5 Newton steps, 2000 gradient steps) is still far from the maximum."""
    names = draw(st.lists(st.sampled_from(MODEL_NAMES), min_size=2, max_size=4, unique=True))
    battles = []
    for a, b in zip(names, names[1:], strict=False):
        for first, second, win, lose in ((a, b, "model_a", "model_b"), (b, a, "model_b", "model_a")):
            battles += [{"model_a": first, "model_b": second, "winner": win}] * draw(st.sampled_from(LOPSIDED))
            battles.append({"model_a": first, "model_b": second, "winner": draw(st.sampled_from(["tie", lose]))})
    assume(_has_finite_fit(battles))
    return battles


def _davidson(battles: list[dict]) -> tuple[list[str], np.ndarray]:
    """Davidson's model (a tie is a third outcome with its own parameter nu: P(a), P(b), P(tie) in proportion to
    exp(d / 2), exp(-d / 2), exp(nu)), fitted by Newton's method on its concave log-likelihood: (models, log-odds
    coefficients as in _newton)."""
    models = _models(battles)
    X = np.zeros((len(battles), len(models) + 1))
    for i, b in enumerate(battles):
        X[i, models.index(b["model_a"])] += 1.0
        X[i, models.index(b["model_b"])] -= 1.0
        X[i, -1] = 1.0
    Z = X[:, 1:]
    half = np.array([{"model_a": 0.5, "model_b": -0.5, "tie": 0.0}[b["winner"]] for b in battles])
    tie = np.array([b["winner"] == "tie" for b in battles], dtype=float)

    def fit_at(params):
        d, nu = Z @ params[:-1], params[-1]
        logits = np.stack([d / 2, -d / 2, np.full_like(d, nu)], axis=1)
        top = logits.max(1, keepdims=True)
        log_den = top[:, 0] + np.log(np.exp(logits - top).sum(1))
        q = np.exp(logits - log_den[:, None])
        return float((half * d + tie * nu - log_den).sum()), q

    params = np.zeros(Z.shape[1] + 1)
    value, q = fit_at(params)
    for _ in range(100):
        mean_c, mean_t = (q[:, 0] - q[:, 1]) / 2, q[:, 2]
        var_c, var_t = (q[:, 0] + q[:, 1]) / 4 - mean_c**2, mean_t * (1 - mean_t)
        cov = -mean_c * mean_t
        grad = np.append(Z.T @ (half - mean_c), (tie - mean_t).sum())
        hess = np.zeros((len(params), len(params)))
        hess[:-1, :-1], hess[:-1, -1], hess[-1, -1] = (Z * var_c[:, None]).T @ Z, Z.T @ cov, var_t.sum()
        hess[-1, :-1] = hess[:-1, -1]
        step = np.linalg.solve(hess, grad)
        while True:  # halve the step until the likelihood does not fall
            new_value, new_q = fit_at(params + step)
            if new_value >= value - 1e-12 or np.abs(step).max() < 1e-12:
                break
            step /= 2
        params, value, q = params + step, new_value, new_q
        if np.abs(step).max() < 1e-10:
            return models, params[:-1]
    raise ValueError("Davidson's model has no finite fit on this log")


def _fit_variant(ties: str = "half", position: str = "yes", scale: float = 1.0, l2: float = 0.0,
                 reversed_outcome: bool = False, first_scale: float = 1.0):  # fmt: skip
    """bradley_terry_fit with one plausible mistake."""

    def variant(battles):
        outcome, weight = dict(OUTCOME), {"double": 2.0, "half_weight": 0.5}.get(ties, 1.0)
        if ties == "drop":
            battles = [b for b in battles if b["winner"] != "tie"]
        elif ties == "dedup":
            battles = [dict(zip(("model_a", "model_b", "winner"), key, strict=True)) for key in
                       dict.fromkeys((b["model_a"], b["model_b"], b["winner"]) for b in battles)]  # fmt: skip
        elif ties in ("model_a", "model_b"):
            outcome["tie"] = outcome[ties]
        if reversed_outcome:
            outcome = {w: 1 - y for w, y in outcome.items()}
        if ties == "davidson":
            models, theta = _davidson(battles)
        else:
            models, theta, converged = _newton(battles, position != "no", l2, outcome, weight)
            if not converged:
                raise ValueError("this mistake has no finite fit on this log")
        ratings, first = _ratings(models, theta, 400.0 * scale)
        first *= first_scale
        return ratings, -first if position == "flipped" else first

    return variant


FIT_HINTS = [
    (_fit_variant(ties="drop"), "a tie is data: count it as half a win for each side (two rows of weight 1/2, or "
     "a target of 1/2), don't drop it."),
    (_fit_variant(ties="model_b"), "a tie is half a win for each side, not a loss for model_a."),
    (_fit_variant(ties="model_a"), "a tie is half a win for each side, not a win for model_a."),
    (_fit_variant(ties="double"), "a tie is ONE battle, half a win for each side: a target of 1/2 (or two rows of "
     "weight 1/2, one won, one lost), not a full win plus a full loss, which counts every tie twice."),
    (_fit_variant(ties="half_weight"), "a tie weighs as much as a decided battle: a target of 1/2 with weight 1 "
     "(or two rows of weight 1/2, one won, one lost), not one row of weight 1/2."),
    (_fit_variant(ties="davidson"), "here a tie is half a win for each side in the Bradley–Terry likelihood (a "
     "target of 1/2), not a third outcome with its own parameter (Davidson's model)."),
    (_fit_variant(ties="dedup"), "every battle of the log counts, repeated ones too: don't drop duplicate battles "
     "(a pair that met 40 times with the same outcome is 40 observations)."),
    (_fit_variant(reversed_outcome=True), "the target is 1 when model_a wins: your ratings are upside down (the "
     "winners rated lowest)."),
    (_fit_variant(position="no"), "fit the first-move term jointly with the ratings: a column of ones (model_a is "
     "the side shown first) in the same regression."),
    (_fit_variant(position="flipped"), "first_move is the advantage of the side shown FIRST (model_a): positive when "
     "model_a wins more often than the ratings alone say."),
    (_fit_variant(scale=1 / math.log(10)), "the lecture's formula uses exp and 400, not 10^(d/400): P = 1 / (1 + "
     "exp(-(beta_a - beta_b + first_move) / 400))."),
    (_fit_variant(scale=1 / 400), "ratings and first_move are in rating points: multiply the log-odds "
     "coefficients by 400."),
    (_fit_variant(first_scale=1 / 400), "first_move is in rating points too: multiply its log-odds coefficient by "
     "400, as the ratings'."),
    (_fit_variant(l2=1.0), "a penalty (such as scikit-learn's default C=1.0) shrinks the ratings towards each "
     "other: fit the maximum likelihood without one."),
]  # fmt: skip


def _read_fit(out, models: list[str]) -> tuple[dict[str, float], float]:
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise GradingError(f"bradley_terry_fit should return (ratings, first_move), got {describe(out)}.")
    ratings, first = out
    if not hasattr(ratings, "keys"):
        raise GradingError(f"bradley_terry_fit: ratings should be a dict {{model: rating}}, got {describe(ratings)}.")
    missing = [m for m in models if m not in ratings.keys()]
    if missing:
        raise GradingError(f"bradley_terry_fit: no rating for {missing[0]!r}; give every model in the log a rating.")
    return {m: _number(ratings[m], "bradley_terry_fit") for m in models}, _number(first, "bradley_terry_fit")


def _close(a: tuple[dict, float], b: tuple[dict, float], tol: float = FIT_TOLERANCE) -> bool:
    """Same rating differences (any shift) and the same first-move term, within tol rating points."""
    ra, rb = np.array(list(a[0].values())), np.array([b[0][m] for m in a[0]])
    return bool(np.abs((ra - ra.mean()) - (rb - rb.mean())).max() <= tol and abs(a[1] - b[1]) <= tol)


def _fit_one(fn: Callable) -> Callable:

    def one(args):
        (battles,) = args
        models = _models(battles)
        want = bradley_terry_fit(battles)
        decided = [b for b in battles if b["winner"] != "tie"]
        note = "" if _models(decided) == models and _has_finite_fit(decided) else (
            " This log has a finite fit only thanks to its ties: a tie is half a win for each side, not dropped, "
            "not a win or a loss.")  # fmt: skip
        try:
            got = _read_fit(call(fn, (battles,), "bradley_terry_fit"), models)
        except GradingError as error:
            raise GradingError(f"{error}{note}") from None
        if not all(math.isfinite(r) for r in [*got[0].values(), got[1]]):
            raise GradingError("bradley_terry_fit returned NaN or inf: check the step size of your updates, or "
                               f"use Newton's method (a few steps from zero).{note}")  # fmt: skip
        if _close(got, want):
            mean = np.mean(list(got[0].values()))
            if abs(mean - 1000) > FIT_TOLERANCE:
                raise GradingError(f"bradley_terry_fit: the ratings are right up to a shift, but their mean is "
                                   f"{mean:.2f}; shift them to a mean of 1000.")  # fmt: skip
            return
        probe = FIT_EXAMPLES[0]
        mistakes = confirmed(fn, "bradley_terry_fit", FIT_HINTS, got, args, [(probe,)],
                             lambda got, wrong, _: _close(got, wrong), lambda out: _read_fit(out, _models(probe)))  # fmt: skip
        if mistakes:
            raise GradingError(f"bradley_terry_fit: {mistakes[0]}")
        if set(got[0].values()) == {got[0][models[0]]} and got[1] == 0:
            raise GradingError("bradley_terry_fit gave every model the same rating and first_move 0: fit them to "
                               "the log's outcomes.")  # fmt: skip
        gap = max(abs((got[0][m] - np.mean(list(got[0].values()))) - (want[0][m] - 1000)) for m in models)
        largest = 400 * float(np.abs(_newton(battles)[1]).max())
        raise GradingError(f"bradley_terry_fit: ratings differ from the maximum-likelihood fit by up to {gap:.2f} "
                           f"points, first_move {got[1]:+.2f} vs {want[1]:+.2f} ({len(battles)} battles, "
                           f"{len(models)} models; the fit's largest coefficient is {largest:.0f} points). Iterate "
                           "until a step moves no rating by more than 0.0001 point, however many steps that takes "
                           "(Newton's method: about 10 from zero, more when a model wins almost every battle; "
                           "gradient steps: many thousands), not a fixed number; if you do, check how each battle "
                           "enters the likelihood (each battle counted, a tie as half a win for each side).")  # fmt: skip

    return one


def _log(*rows: str) -> list[dict]:
    """Battles written as 'a b winner' with winner a, b or tie."""
    names = {"a": "heron", "b": "lynx-2", "c": "moose"}
    return [{"model_a": names[a], "model_b": names[b], "winner": {"a": "model_a", "b": "model_b"}.get(w, w)}
            for a, b, w in (row.split() for row in rows)]  # fmt: skip


FIT_EXAMPLES = [
    simulated_log(12, 60, 4, first=120, ties=0.2, favoured_first=True),  # position and strength entangled; it also
    # confirms a diagnosis made on a smaller log (every mistake in FIT_HINTS gives its own fit here)
    _log("a b a", "b a a", "a b b", "b a tie", "a b a"),  # two logs of the same models and size, other outcomes
    _log("a b b", "b a a", "a b b", "b a tie", "a b a"),
    _log("a b a", "b a a", "a c a", "c a b", "b c a", "c b tie", "a b b", "c a tie"),  # moose never wins
    _log("a b tie", "b a tie"),  # the smallest log: equal ratings, no first-move advantage
    # lopsided logs: 40 wins for each tie in both positions, a fit far from zero (4.4 and 8.8 log-odds), where 5
    # Newton steps or 2000 gradient steps stop short
    _log(*(["a b a"] * 40 + ["a b tie"] + ["b a b"] * 40 + ["b a tie"])),
    _log(*(["a b a"] * 40 + ["a b tie"] + ["b a b"] * 40 + ["b a tie"] + ["b c a"] * 40 + ["b c tie"]
           + ["c b b"] * 40 + ["c b tie"])),  # fmt: skip
]


@graded("bradley_terry_fit")
def check_bradley_terry_fit(fn: Callable) -> None:
    logs = st.one_of(_battle_logs(), _battle_logs(), _lopsided_logs())  # a third lopsided
    tried = holds("bradley_terry_fit", logs.map(lambda log: (log,)), _fit_one(fn), [(log,) for log in FIT_EXAMPLES],
                  40, bradley_terry_fit)  # fmt: skip
    print(f"✓ bradley_terry_fit: matched the maximum-likelihood fit within {FIT_TOLERANCE} points on {tried} logs "
          "(2 to 5 models, ties, unbalanced positions, a model that never wins, lopsided logs).")  # fmt: skip


# --- Exercise 3: Min-K%++ ----------------------------------------------------------------------------------------


def _token_scores(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(log p(x_t) - mu_t) / sigma_t in float64, mu_t and sigma_t the mean and spread of log p(z) under p."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).sqrt()
    return (logp[torch.arange(len(ids)), ids] - mu) / sigma


def min_k_plus_plus(logits: torch.Tensor, ids: torch.Tensor, k: float = 0.2) -> float:
    """Mean of the lowest max(1, int(k * T)) scores (log p(x_t) - mu_t) / sigma_t: the notebook's solution."""
    scores = _token_scores(logits, ids)
    return scores.sort().values[: max(1, int(k * len(scores)))].mean().item()


def _mink_variant(uniform=False, no_sigma=False, top=False, plain=False, ceil=False, rounded=False, count=False,
                  shift=False, no_minimum=False, at_cut=False, fixed_k=False, naive=False):  # fmt: skip
    """min_k_plus_plus with one plausible mistake."""

    def variant(logits, ids, k=0.2):
        x = logits.double()
        logp = x.softmax(-1).log() if naive else x.log_softmax(-1)
        if shift:
            logp, ids = logp[:-1], ids[1:]
        p = logp.exp()
        if uniform:
            mu, sigma = logp.mean(-1), logp.std(-1)
        else:
            mu = (p * logp).sum(-1)
            sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).sqrt()
        chosen = logp[torch.arange(len(ids)), ids]
        scores = chosen if plain else (chosen - mu) / (1.0 if no_sigma else sigma)
        k = 0.2 if fixed_k else k
        n = int(k) if count else math.ceil(k * len(scores)) if ceil else round(k * len(scores)) if rounded else int(
            k * len(scores))  # fmt: skip
        n = n if no_minimum else max(1, n)
        ordered = scores.sort(descending=top).values
        if at_cut:  # every score up to the n-th lowest, ties at the cut included
            return scores[scores <= ordered[n - 1]].mean().item()
        return ordered[:n].mean().item()

    return variant


ROUND_DOWN = "take max(1, int(k * T)) tokens: round k * T down, not up or to the nearest."
MINK_HINTS = [
    (_mink_variant(plain=True), "that is Min-K% (the raw log-probabilities); Min-K%++ standardises each token's "
     "log-probability by the mean and spread of log p over the vocabulary at its position."),
    (_mink_variant(uniform=True), "mu and sigma are the mean and standard deviation of log p(z) for z drawn from "
     "the model's distribution p (weights p(z)), not a plain average over the vocabulary."),
    (_mink_variant(no_sigma=True), "divide by sigma, the standard deviation of log p(z) under p, too."),
    (_mink_variant(top=True), "average the LOWEST k% of the token scores, not the highest."),
    (_mink_variant(ceil=True), ROUND_DOWN),
    (_mink_variant(rounded=True), ROUND_DOWN),
    (_mink_variant(no_minimum=True), "take at least one token: max(1, int(k * T)), even when k * T < 1."),
    (_mink_variant(at_cut=True), "average exactly max(1, int(k * T)) scores, even when several scores tie at the "
     "cut; not every score up to the cut's value."),
    (_mink_variant(count=True), "k is a fraction of the T tokens (0.2 = 20%), not a count."),
    (_mink_variant(fixed_k=True), "use the k you are given, not 0.2."),
    (_mink_variant(shift=True), "the logits are already aligned: logits[t] is the distribution that ids[t] was "
     "drawn from; don't shift them."),
]  # fmt: skip

_STABLE = ("log(softmax(x)) is log 0 = -inf where a probability underflows (a logit far below the row's "
           "maximum), and 0 * -inf is NaN: use torch.log_softmax, and p = log_p.exp().")  # fmt: skip


def _spread(row: list[float]) -> float:
    """sigma of a row of logits: 0 when its logits are equal, where the score is not defined."""
    logp = torch.log_softmax(torch.tensor(row, dtype=torch.float64), dim=-1)
    p = logp.exp()
    return float((p * (logp - (p * logp).sum()) ** 2).sum().sqrt())


@st.composite
def _mink_inputs(draw) -> tuple[torch.Tensor, torch.Tensor, float]:
    """T in 1..6 positions over a vocabulary of 2 to 8, float32 or float64, rows often repeated (tied scores),
    some logits far below the row's maximum (their probability underflows), the whole tensor at times shifted by
    1000; every row's sigma at least 0.25."""
    t, v = draw(st.integers(1, 6)), draw(st.integers(2, 8))
    values = st.one_of(st.sampled_from([0.0, 1.0, 2.0]), draws.floats(-5.0, 5.0), st.sampled_from([-200.0, -1000.0]))
    rows = draw(st.lists(st.lists(values, min_size=v, max_size=v).filter(lambda row: _spread(row) >= 0.25),
                         min_size=1, max_size=t))  # fmt: skip
    which = draw(st.lists(st.integers(0, len(rows) - 1), min_size=t, max_size=t))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    logits = torch.tensor([rows[i] for i in which], dtype=torch.float64) + draw(st.sampled_from([0.0, 1000.0, -1000.0]))
    ids = torch.tensor(draw(st.lists(st.integers(0, v - 1), min_size=t, max_size=t)))
    return logits.to(dtype), ids, draw(st.one_of(st.sampled_from([0.2, 1.0, 0.5, 0.25, 0.1]), draws.floats(0.01, 1.0)))


def _mink_example(rows: list[list[float]], ids: list[int], k: float, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype), torch.tensor(ids), k


MINK_EXAMPLES = [
    _mink_example([[2.0, 0.0, 1.0, -1.0], [0.0, 3.0, 1.0, 0.5], [1.0, 1.0, 4.0, 0.0], [2.0, 0.0, 1.0, -1.0],
                   [0.5, 0.0, 2.0, 1.0]], [1, 1, 3, 1, 0], 0.4),  # int(0.4 * 5) = 2; the 2nd and 3rd lowest tie
    _mink_example([[2.0, 0.0, 1.0, -1.0], [0.0, 3.0, 1.0, 0.5], [1.0, 1.0, 4.0, 0.0], [2.0, 0.0, 1.0, -1.0],
                   [0.5, 0.0, 2.0, 1.0]], [2, 0, 2, 2, 3], 0.4),  # the same shape, other tokens, a tie at the cut again
    _mink_example([[0.0, 1.0, 2.0, -1000.0], [1000.0, 1001.0, 0.0, 999.0]], [3, 1], 0.5),  # p underflows
    _mink_example([[3.0, 0.0, 1.0]], [2], 0.2, torch.float64),  # one token: int(0.2) = 0, so 1
    _mink_example([[0.0, 2.0], [2.0, 0.0], [1.0, -1.0]], [0, 0, 1], 1.0, torch.float64),  # k = 100%: every token
    _mink_example([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], [1, 1, 1, 0], 0.7),  # int(2.8) = 2
]  # fmt: skip


def _other_rounding(out: float, logits, ids, k) -> bool:
    """k * T a hair below an integer (0.29 * 100 = 28.999...): counting that integer passes too."""
    t = len(ids)
    if int(k * t) == round(k * t) or abs(k * t - round(k * t)) > 1e-9:
        return False
    return math.isclose(out, _token_scores(logits, ids).sort().values[: round(k * t)].mean().item(), rel_tol=1e-4)


def _mink_probe(seed: int, t: int, k: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Logits whose first three rows (and tokens) are equal, one logit at -1000 (its probability underflows)."""
    g = torch.Generator().manual_seed(seed)
    logits, ids = torch.randn(t, 6, generator=g) * 2, torch.randint(0, 6, (t,), generator=g)
    logits[1:3], ids[1:3] = logits[0], ids[0]
    logits[min(3, t - 1), 0] = -1000.0
    return logits, ids, k


# inputs on which the mistakes above all differ (k * T = 3.7 with three scores tied at the cut; k * T = 0.6), to
# confirm a diagnosis made on a smaller input
MINK_PROBES = [_mink_probe(13, 10, 0.37), _mink_probe(13, 3, 0.2)]


def _close_numbers(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4) or math.isnan(got) and math.isnan(want)


def _mink_one(fn: Callable) -> Callable:

    def one(args):
        logits, ids, k = args
        want = min_k_plus_plus(logits.clone(), ids.clone(), k)
        got = _number(call(fn, (logits, ids, k), "min_k_plus_plus"), "min_k_plus_plus")
        if _close_numbers(got, want) or _other_rounding(got, logits, ids, k):
            return
        mistakes = confirmed(fn, "min_k_plus_plus", MINK_HINTS, got, args, MINK_PROBES,
                             lambda got, wrong, _: _close_numbers(got, wrong), lambda out: _number(out, "min_k_plus_plus"))  # fmt: skip
        if mistakes:
            raise GradingError(f"min_k_plus_plus: {mistakes[0]}")
        if not math.isfinite(got):
            raise GradingError(f"min_k_plus_plus returned {got} where the score is finite: {_STABLE}")
        raise GradingError(f"min_k_plus_plus returned {got:.6g}, expected {want:.6g} (T = {len(ids)}, vocabulary "
                           f"{logits.shape[-1]}, k = {k:.6g}, scores {show(_token_scores(logits, ids))}).")  # fmt: skip

    return one


@graded("min_k_plus_plus")
def check_min_k_plus_plus(fn: Callable) -> None:
    tried = holds("min_k_plus_plus", _mink_inputs(), _mink_one(fn), MINK_EXAMPLES, 60, min_k_plus_plus)
    print(f"✓ min_k_plus_plus: passed on {tried} inputs (float32 and float64, one token, k from 1% to 100%, ties "
          "at the cut, probabilities that underflow).")  # fmt: skip


# --- Exercise 4: a GSM-Symbolic clause ---------------------------------------------------------------------------


class _Seeded(random.Random):
    """A random.Random that shows its seed in a message."""

    def __init__(self, seed: int | None = None):
        super().__init__(seed)
        self.shown = seed

    def __repr__(self) -> str:
        return f"random.Random({getattr(self, 'shown', '?')})"


def valid_moves(total: int) -> list[tuple[str, int]]:
    """The (operation, amount) pairs that keep a total in 0..99."""
    return [(op, x) for op in "+-" for x in range(2, 10) if 0 <= (total + x if op == "+" else total - x) <= 99]


def add_clause(problem: symbolic.WordProblem, rng: random.Random) -> symbolic.WordProblem:
    """The notebook's solution: one more move, uniform among the valid pairs."""
    return symbolic.WordProblem(problem.person, problem.item, problem.start,
                                (*problem.moves, rng.choice(valid_moves(problem.answer))), problem.asked_first,
                                problem.distractor)  # fmt: skip


def _running_totals(problem: symbolic.WordProblem) -> list[int]:
    totals, total = [problem.start], problem.start
    for op, x in problem.moves:
        total += x if op == "+" else -x
        totals.append(total)
    return totals


ANY_TOTAL = st.one_of(st.sampled_from([0, 1, 2, 5, 8, 9, 50, 90, 91, 94, 97, 98, 99]), st.integers(0, 99))
SKEWED_TOTAL = st.one_of(st.integers(2, 8), st.integers(91, 97), st.integers(0, 99))  # where some of one
# operation's pairs leave the range and some stay: a skewed draw shows


@st.composite
def _problems(draw, totals: st.SearchStrategy = ANY_TOTAL) -> symbolic.WordProblem:
    """A problem of 1 to 6 moves whose running totals stay in 0..99, its total often at an edge of the range."""
    moves = draw(st.lists(st.tuples(st.sampled_from("+-"), st.integers(2, 9)), min_size=1, max_size=6))
    total = draw(totals)
    start = total - sum(x if op == "+" else -x for op, x in moves)
    problem = symbolic.WordProblem(draw(st.sampled_from(["Ada", "Bo", "Cy", "Di"])), draw(st.sampled_from(ITEMS)),
                                   start, tuple(moves), draw(st.booleans()),
                                   draw(st.sampled_from(["", "Di also has 3 pens."])))  # fmt: skip
    assume(all(0 <= t <= 99 for t in _running_totals(problem)))
    return problem


CLAUSE_EXAMPLES = [
    symbolic.WordProblem("Ada", ITEMS[0], 90, (("+", 9),)),  # total 99: only giving away keeps it in range
    symbolic.WordProblem("Bo", ITEMS[1], 12, (("-", 9), ("-", 2))),  # total 1: only getting more
    symbolic.WordProblem("Eve", ITEMS[4], 95, (("+", 3),)),  # total 98
    symbolic.WordProblem("Fay", ITEMS[0], 10, (("-", 8), ("-", 2))),  # total 0
    symbolic.WordProblem("Gus", ITEMS[1], 93, (("+", 4), ("-", 2), ("+", 2))),  # total 97
    symbolic.WordProblem("Hal", ITEMS[2], 11, (("-", 9),)),  # total 2
    symbolic.WordProblem("Cy", ITEMS[2], 50, (("+", 2), ("-", 3)), asked_first=True),
    symbolic.WordProblem("Di", ITEMS[3], 40, (("+", 5), ("+", 4)), distractor="Di also has 3 pens."),
    symbolic.WordProblem("Di", ITEMS[3], 41, (("+", 4), ("+", 5)), distractor="Di also has 3 pens."),  # same size
]  # fmt: skip


def _clause_one(fn: Callable) -> Callable:
    """One call: a WordProblem with one valid move appended, the rest kept, the same move again for the same seed."""

    def one(args):
        problem, rng = args
        seed = rng.shown
        state = random.getstate()
        out = call(fn, (problem, _Seeded(seed)), "add_clause", mutable=(1,))
        if random.getstate() != state:
            random.setstate(state)
            raise GradingError("add_clause changed the global random state (random.seed, or a draw from the module "
                               "`random`): draw with `rng` only and leave the module `random` as it was; other code "
                               "draws from it too.")  # fmt: skip
        if not isinstance(out, symbolic.WordProblem):
            raise GradingError(f"add_clause should return a WordProblem (dataclasses.replace(problem, moves=...)), "
                               f"got {describe(out)}.")  # fmt: skip
        changed = [f for f in ("person", "item", "start", "asked_first", "distractor")
                   if getattr(out, f) != getattr(problem, f)]  # fmt: skip
        if changed:
            raise GradingError(f"add_clause changed the problem's {changed[0]} ({getattr(problem, changed[0])!r} to "
                               f"{getattr(out, changed[0])!r}): add a clause, keep everything else.")  # fmt: skip
        if len(out.moves) != len(problem.moves) + 1 or tuple(out.moves[:-1]) != tuple(problem.moves):
            raise GradingError(f"add_clause turned moves {problem.moves} into {out.moves}: keep every move and add "
                               "exactly one at the end.")  # fmt: skip
        if not isinstance(out.moves, tuple) or not isinstance(out.moves[-1], tuple):
            what = out.moves[-1] if isinstance(out.moves, tuple) else out.moves
            raise GradingError(f"add_clause returned {'moves' if what is out.moves else 'the move'} {what!r}, a "
                               f"{type(what).__name__}: moves is a tuple of tuples, each move a tuple ('+', x) like "
                               "those already in problem.moves (problem.moves + ((op, x),)).")  # fmt: skip
        op, x = out.moves[-1]
        if op not in ("+", "-") or type(x) is not int or not 2 <= x <= 9:
            raise GradingError(f"add_clause added the move {(op, x)!r}: a move is ('+', x) or ('-', x) with a "
                               "one-digit amount x in 2..9 (a Python int), as in the training problems.")  # fmt: skip
        if not 0 <= out.answer <= 99:
            raise GradingError(f"add_clause added {(op, x)} to a problem whose total is {problem.answer}, taking it "
                               f"to {out.answer}: keep every running total in 0..99 (choose the operation and the "
                               "amount from those that stay in range).")  # fmt: skip
        again = call(fn, (problem, _Seeded(seed)), "add_clause", mutable=(1,))
        if again != out:
            raise GradingError("add_clause gave two different clauses for the same rng seed: draw from `rng` only "
                               "(rng.choice, rng.randint), not the global `random`, so that a seed reproduces it.")  # fmt: skip

    return one


DRAWS = 1600  # clauses drawn per problem to test that the draw is uniform among the valid pairs
EDGE_DRAWS = 12_000  # clauses drawn at a total of 0 and at 99 (8 valid pairs, each drawn try invalid half the
# time): a fixed fallback after a few failed tries draws its pair a fifth more often than the others
PAIR_Z = 5.8  # |z| of one pair's count that a uniform draw exceeds, over its 8 pairs, with probability about 5e-8


def _chi_square_limit(df: int, z: float = 5.3) -> float:
    """The chi-square value a uniform draw exceeds with probability about 1e-7 (Wilson–Hilferty)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _op_first(total: int) -> dict:
    """The operation drawn first (among those with a valid amount), then the amount."""
    valid = valid_moves(total)
    ops = sorted({op for op, _ in valid})
    return {(op, x): 1 / len(ops) / sum(o == op for o, _ in valid) for op, x in valid}


def _flipped_at_edges(total: int) -> dict:
    """Any of the 16 pairs drawn, the operation flipped when the total leaves 0..99."""
    probs = Counter()
    for op in "+-":
        for x in range(2, 10):
            pair = (op, x) if (op, x) in valid_moves(total) else ("-" if op == "+" else "+", x)
            probs[pair] += 1 / 16
    return dict(probs)


DRAW_HINTS = [
    (_op_first, "you draw the operation first, then the amount: near the edges that favours the operation with "
     "fewer valid amounts. Draw uniformly among the valid (operation, amount) pairs (list them, then rng.choice)."),
    (_flipped_at_edges, "near the edges you draw the pairs whose amount has one valid operation twice as often as "
     "the others: drawing the amount first (then an operation valid for it), or flipping the operation of a pair "
     "that would leave 0..99, does that. Draw uniformly among the valid (operation, amount) pairs (list them, then "
     "rng.choice)."),
]  # fmt: skip


def _chi_square(counts: Counter, probs: dict, draws: int = DRAWS) -> float:
    if set(counts) - set(probs):
        return math.inf
    return sum((counts[pair] - draws * p) ** 2 / (draws * p) for pair, p in probs.items())


def _odd_pair(counts: Counter, valid: list, draws: int) -> tuple | None:
    """The pair whose count is farthest from a uniform draw's, if farther than PAIR_Z standard deviations."""
    p = 1 / len(valid)
    z = {pair: (counts[pair] - draws * p) / math.sqrt(draws * p * (1 - p)) for pair in valid}
    pair = max(z, key=lambda pair: abs(z[pair]))
    return pair if abs(z[pair]) > PAIR_Z else None


def _uniform_one(fn: Callable, draws: int = DRAWS) -> Callable:
    """Many seeds on one problem: the added pair is uniform among the valid ones (with many draws, each pair's
    count is tested on its own too: one pair drawn too often hides in a chi-square over all of them)."""

    def one(args):
        (problem,) = args
        first = call(fn, (problem, _Seeded(0)), "add_clause", mutable=(1,))
        drawn = [first]
        try:  # the problem is frozen and each rng fresh: the rest are called directly, for speed
            drawn += [fn(problem, random.Random(seed)) for seed in range(1, draws)]
        except Exception:  # noqa: BLE001 - let `call` explain the error
            for seed in range(1, draws):
                call(fn, (problem, _Seeded(seed)), "add_clause", mutable=(1,))
        counts = Counter(tuple(out.moves[-1]) for out in drawn)
        valid = valid_moves(problem.answer)
        uniform = dict.fromkeys(valid, 1 / len(valid))
        odd = _odd_pair(counts, valid, draws) if draws > DRAWS and not set(counts) - set(valid) else None
        if _chi_square(counts, uniform, draws) <= _chi_square_limit(len(valid) - 1) and odd is None:
            return
        if len(counts) == 1:
            raise GradingError(f"add_clause added {next(iter(counts))} for every seed of rng: draw the clause with "
                               "`rng` (rng.choice), so that other seeds give other clauses.")  # fmt: skip
        for shape, message in DRAW_HINTS:
            if shape(problem.answer) != uniform and _chi_square(counts, shape(problem.answer), draws) <= (
                    _chi_square_limit(len(valid) - 1)):  # fmt: skip
                raise GradingError(f"add_clause: {message}")
        often = ", ".join(f"{op}{x}: {counts[op, x]}" for op, x in valid)
        if odd is not None and counts[odd] > draws / len(valid):
            raise GradingError(f"add_clause: on a problem whose total is {problem.answer}, {draws} seeds drew "
                               f"{odd} {counts[odd]} times, about {draws // len(valid)} expected ({often}): one pair "
                               "comes too often, as with a fixed fallback after a few failed tries. Draw uniformly "
                               "among the valid pairs (list them, then rng.choice), or draw again until the move is "
                               "valid, however many tries that takes.")  # fmt: skip
        raise GradingError(f"add_clause: on a problem whose total is {problem.answer}, {draws} seeds gave {often}; "
                           f"draw uniformly among the {len(valid)} pairs that keep the total in 0..99, about "
                           f"{draws // len(valid)} each.")  # fmt: skip

    return one


@graded("add_clause")
def check_add_clause(fn: Callable) -> None:
    seeded = st.tuples(_problems(), st.integers(0, 2**32 - 1).map(_Seeded))
    tried = holds("add_clause", seeded, _clause_one(fn), [(p, _Seeded(i)) for i, p in enumerate(CLAUSE_EXAMPLES)],
                  60, add_clause)  # fmt: skip
    uniform_on = [CLAUSE_EXAMPLES[i] for i in (5, 4, 6)]  # totals 2 and 97 (where a skewed draw shows) and 45
    skewed = _problems(SKEWED_TOTAL).map(lambda p: (p,))
    spread = holds("add_clause", skewed, _uniform_one(fn), [(p,) for p in uniform_on], 5, add_clause)
    edges = [CLAUSE_EXAMPLES[i] for i in (3, 0)]  # totals 0 and 99: 8 valid pairs, half of all pairs invalid
    for problem in edges:
        _uniform_one(fn, EDGE_DRAWS)((problem,))
    print(f"✓ add_clause: {tried} problems (totals at the edges of 0..99 included), the rest kept, reproducible "
          f"from the seed, and uniform among the valid pairs over {DRAWS} seeds on {spread} problems and "
          f"{EDGE_DRAWS} seeds at totals 0 and 99.")  # fmt: skip
