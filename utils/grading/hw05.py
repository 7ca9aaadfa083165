"""Graders for homework 05 (evaluation): Chatbot Arena's style features, a Bradley–Terry fit with ties and a
first-move term, the Min-K%++ score, and a GSM-Symbolic perturbation that adds a clause. The study reuses
homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check builds its inputs itself (replies, battle logs, logits and word problems the student has never seen)
and runs the student's function through `core.call`: expected values first, deep copies handed over.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import numpy as np
import torch

from utils import arena
from utils.grading.core import GradingError, call, describe, expect_list, graded
from utils.grading.hw02 import check_study
from utils.tinyworld import symbolic
from utils.tinyworld.tasks import ITEMS

__all__ = ["check_add_clause", "check_bradley_terry_fit", "check_min_k_plus_plus", "check_style_differences",
           "check_study"]  # fmt: skip


# --- Exercise 1: style features ----------------------------------------------------------------------------------

HEADER = re.compile(r"^[ \t]*#{1,6} ", re.MULTILINE)
BOLD = re.compile(r"\*\*[^\n]+?\*\*|__[^\n]+?__")
LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)]) ", re.MULTILINE)


def style_counts(reply: str) -> list[int]:
    """[words, markdown headers, bold spans, list items] of a reply."""
    return [len(reply.split()), len(HEADER.findall(reply)), len(BOLD.findall(reply)), len(LIST_ITEM.findall(reply))]


def normalised_differences(a: list[float], b: list[float]) -> list[float]:
    return [(x - y) / (x + y) if x + y else 0.0 for x, y in zip(a, b, strict=True)]


def style_differences(reply_a: str, reply_b: str) -> list[float]:
    """Chatbot Arena's style features: (a - b) / (a + b) per count, 0 where both counts are 0."""
    return normalised_differences(style_counts(reply_a), style_counts(reply_b))


def _style_variant(raw=False, markers=False, underscores=True, any_hash=False, indented=True, ordered=True,
                   characters=False, nan=False):  # fmt: skip
    def counts(reply: str) -> list[int]:
        words = len(reply) if characters else len(reply.split())
        lines = reply.split("\n")
        headers = (sum(line.lstrip().startswith("#") for line in lines) if any_hash
                   else len(HEADER.findall(reply)))  # fmt: skip
        if markers:
            bold = reply.count("**") + reply.count("__")
        else:
            bold = len(re.findall(r"\*\*[^\n]+?\*\*" + (r"|__[^\n]+?__" if underscores else ""), reply))
        pattern = r"^" + (r"[ \t]*" if indented else "") + (r"(?:[-*+]|\d+[.)]) " if ordered else r"[-*+] ")
        return [words, headers, bold, len(re.findall(pattern, reply, re.MULTILINE))]

    def variant(reply_a, reply_b):
        a, b = counts(reply_a), counts(reply_b)
        if raw:
            return [float(x - y) for x, y in zip(a, b, strict=True)]
        return [(x - y) / (x + y) if x + y else (math.nan if nan else 0.0) for x, y in zip(a, b, strict=True)]

    return variant


STYLE_CASES = [
    ("Paris.", "The capital of France is **Paris**. 😊 I hope this helps!"),
    ("## Answer\n\n**Lima** is the capital.\n\n- It is in Peru\n- It is large",
     "# Summary\n### Details\n1. **Lima**\n2) __Peru__\n3. Andes\n   - coast"),
    ("#hashtag and ####### seven is no header\n* one\n+ two", "Plain words only, with a stray * in the middle."),
    ("**a** and **b** and __c__ make three bold spans", "No style at all here"),
    ("  ## indented header\n    3. indented item\n10. tenth item", "word " * 40),
    ("**Note:** in Python, 2**10 is 1024", "**Answer:** 1024"),  # a stray ** is no bold span
    ("Same length", "Same length"),
]
STYLE_HINTS = [
    (_style_variant(raw=True), "divide each difference by the sum of the two counts, (a - b) / (a + b): a 20-word "
     "gap matters between short replies, not between long ones."),
    (_style_variant(markers=True), "count bold SPANS (**text** or __text__), not the ** markers: each span has two."),
    (_style_variant(underscores=False), "__text__ is bold too."),
    (_style_variant(any_hash=True), "a header is 1 to 6 '#' and then a space, at the start of a line (after any "
     "spaces): '#hashtag' and '#######' are not headers."),
    (_style_variant(indented=False), "list items may be indented: allow spaces before the marker."),
    (_style_variant(ordered=False), "numbered items ('1. ' or '2) ') are list items too."),
    (_style_variant(characters=True), "length is the number of words (reply.split()), not characters."),
]  # fmt: skip


@graded("style_differences")
def check_style_differences(fn: Callable) -> None:
    for reply_a, reply_b in STYLE_CASES:
        want = style_differences(reply_a, reply_b)
        out = expect_list(call(fn, (reply_a, reply_b), "style_differences"), "style_differences", 4,
                          "a list of 4 numbers (length, headers, bold, list items)")  # fmt: skip
        got = [float(x) for x in out]
        if any(math.isnan(x) for x in got):
            raise GradingError("style_differences returned NaN: when both replies have none of something, "
                               "(a - b) / (a + b) is 0 / 0; that difference is 0.")  # fmt: skip
        if np.allclose(got, want, atol=1e-9):
            continue
        for variant, message in STYLE_HINTS:
            if np.allclose(got, variant(reply_a, reply_b), atol=1e-9, equal_nan=True):
                raise GradingError(f"style_differences: {message}")
        names = ["length", "headers", "bold", "list items"]
        wrong = [n for n, x, y in zip(names, got, want, strict=True) if not math.isclose(x, y, abs_tol=1e-9)]
        raise GradingError(f"style_differences: {', '.join(wrong)} differ on replies {reply_a[:40]!r} vs "
                           f"{reply_b[:40]!r}: got {[round(x, 3) for x in got]}, expected "
                           f"{[round(x, 3) for x in want]}.")  # fmt: skip
    print(f"✓ style_differences: passed {len(STYLE_CASES)} pairs of replies (headers, bold, lists, edge cases).")


# --- Exercise 2: Bradley–Terry with ties and a first-move term ----------------------------------------------------


def bradley_terry_fit(battles: list[dict]) -> tuple[dict[str, float], float]:
    """Ratings (mean 1000, scale 400, natural exp) and the first-shown side's advantage, ties as half a win each:
    the arena's design matrix with a column of ones for the side shown first (model_a)."""
    X, y, w, models = arena.design(battles)
    X = np.column_stack([X, np.ones(len(X))])
    theta = np.concatenate([[0.0], arena.fit_logistic(X[:, 1:], y, w, l2=arena.RIDGE)]) * arena.SCALE
    ratings = theta[:-1] - theta[:-1].mean() + arena.MEAN_RATING
    return dict(zip(models, ratings, strict=True)), float(theta[-1])


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
            winner = "model_a" if rng.random() < arena.win_probability(true[a], true[b], first) else "model_b"
        battles.append({"model_a": str(a), "model_b": str(b), "winner": winner})
    return battles


def _fit_variant(ties: str = "half", position: str = "yes", scale: float = 1.0):
    def variant(battles):
        if ties == "drop":
            battles = [b for b in battles if b["winner"] != "tie"]
        elif ties in ("model_a", "model_b"):
            battles = [{**b, "winner": ties if b["winner"] == "tie" else b["winner"]} for b in battles]
        if position == "no":
            ratings, first = arena.bradley_terry(battles)[0], 0.0
        else:
            ratings, first = bradley_terry_fit(battles)
        first *= -1 if position == "flipped" else 1
        return {m: (r - arena.MEAN_RATING) * scale + arena.MEAN_RATING for m, r in ratings.items()}, first * scale

    return variant


FIT_HINTS = [
    (_fit_variant(ties="drop"), "a tie is data: count it as half a win for each side (two rows of weight 1/2, or "
     "a target of 1/2), don't drop it."),
    (_fit_variant(ties="model_b"), "a tie is half a win for each side, not a loss for model_a."),
    (_fit_variant(ties="model_a"), "a tie is half a win for each side, not a win for model_a."),
    (_fit_variant(position="no"), "fit the first-move term jointly with the ratings: a column of ones (model_a is "
     "the side shown first) in the same regression."),
    (_fit_variant(position="flipped"), "first_move is the advantage of the side shown FIRST (model_a): positive when "
     "model_a wins more often than the ratings alone say."),
    (_fit_variant(scale=1 / math.log(10)), "the lecture's formula uses exp and 400, not 10^(d/400): P = 1 / (1 + "
     "exp(-(beta_a - beta_b + first_move) / 400))."),
    (_fit_variant(scale=1 / 400), "ratings and first_move are in rating points: multiply the log-odds "
     "coefficients by 400."),
]  # fmt: skip


def _read_fit(out, models: list[str]) -> tuple[dict[str, float], float]:
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise GradingError(f"bradley_terry_fit should return (ratings, first_move), got {describe(out)}.")
    ratings, first = out
    if not hasattr(ratings, "keys"):
        raise GradingError(f"bradley_terry_fit: ratings should be a dict {{model: rating}}, got {describe(ratings)}.")
    missing = [m for m in models if m not in ratings]
    if missing:
        raise GradingError(f"bradley_terry_fit: no rating for {missing[0]!r}; give every model in the log a rating.")
    try:
        return {m: float(ratings[m]) for m in models}, float(first)
    except (TypeError, ValueError):
        raise GradingError("bradley_terry_fit: ratings and first_move should be numbers.") from None


def _close(a: tuple[dict, float], b: tuple[dict, float], tol: float) -> bool:
    """Same rating differences (any shift) and the same first-move term, within tol rating points."""
    ra, rb = np.array(list(a[0].values())), np.array([b[0][m] for m in a[0]])
    return bool(np.abs((ra - ra.mean()) - (rb - rb.mean())).max() < tol and abs(a[1] - b[1]) < tol)


@graded("bradley_terry_fit")
def check_bradley_terry_fit(fn: Callable) -> None:
    cases = [simulated_log(11, 3000, 5, first=80, ties=0.15),
             simulated_log(12, 2500, 4, first=120, ties=0.1, favoured_first=True),  # position and strength entangled
             simulated_log(13, 150, 3, first=-60, ties=0.25)]  # fmt: skip
    for battles in cases:
        models = arena.models_in(battles)
        want = bradley_terry_fit(battles)
        got = _read_fit(call(fn, (battles,), "bradley_terry_fit"), models)
        if not all(math.isfinite(r) for r in [*got[0].values(), got[1]]):
            raise GradingError("bradley_terry_fit returned NaN or inf: check the step size of your updates, or "
                               "use Newton's method (a few steps from zero).")  # fmt: skip
        if _close(got, want, tol=1.0):
            mean = np.mean(list(got[0].values()))
            if abs(mean - arena.MEAN_RATING) > 1.0:
                raise GradingError(f"bradley_terry_fit: the ratings are right up to a shift, but their mean is "
                                   f"{mean:.1f}; shift them to a mean of 1000.")  # fmt: skip
            continue
        for variant, message in FIT_HINTS:
            if _close(got, variant(battles), tol=2.0):
                raise GradingError(f"bradley_terry_fit: {message}")
        gap = max(abs((got[0][m] - np.mean(list(got[0].values()))) - (want[0][m] - arena.MEAN_RATING)) for m in models)
        raise GradingError(f"bradley_terry_fit: ratings differ from the maximum-likelihood fit by up to {gap:.1f} "
                           f"points, first_move {got[1]:+.1f} vs {want[1]:+.1f} ({len(battles)} battles, "
                           f"{len(models)} models). Iterate until the change is tiny (Newton's method needs "
                           f"about 10 steps; gradient steps need many more).")  # fmt: skip
    print(f"✓ bradley_terry_fit: matched the maximum-likelihood fit on {len(cases)} logs you have not seen "
          "(ties, a first-move advantage, one log where the strongest model is always shown first).")  # fmt: skip


# --- Exercise 3: Min-K%++ ----------------------------------------------------------------------------------------


def min_k_plus_plus(logits: torch.Tensor, ids: torch.Tensor, k: float = 0.2) -> float:
    """Mean of the lowest max(1, int(k * T)) scores (log p(x_t) - mu_t) / sigma_t, where mu_t and sigma_t are the
    mean and standard deviation of log p(z) for z drawn from the model's distribution at position t."""
    logp = torch.as_tensor(logits).double().log_softmax(-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).sqrt()
    scores = (logp.gather(-1, torch.as_tensor(ids).long()[:, None])[:, 0] - mu) / sigma
    n = max(1, int(k * len(scores)))
    return scores.sort().values[:n].mean().item()


def _mink_variant(uniform=False, no_sigma=False, top=False, plain=False, ceil=False, count=False, shift=False):
    def variant(logits, ids, k=0.2):
        logp = torch.as_tensor(logits).double().log_softmax(-1)
        if shift:
            logp, ids = logp[:-1], ids[1:]
        p = logp.exp()
        if uniform:
            mu, sigma = logp.mean(-1), logp.std(-1)
        else:
            mu = (p * logp).sum(-1)
            sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).sqrt()
        chosen = logp.gather(-1, ids.long()[:, None])[:, 0]
        scores = chosen if plain else (chosen - mu) / (1.0 if no_sigma else sigma)
        n = int(k) if count else (math.ceil(k * len(scores)) if ceil else int(k * len(scores)))
        ordered = scores.sort(descending=top).values
        return ordered[: max(1, n)].mean().item()

    return variant


def _mink_case(seed: int, length: int, vocab: int, k: float, dtype=torch.float32, spread: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(length, vocab, generator=g) * spread * torch.rand(length, 1, generator=g) + 0.3).to(dtype)
    logits[:, : vocab // 10] += 4.0  # a few likely tokens, as in a language model
    ids = torch.randint(0, vocab, (length,), generator=g)
    ids[: length // 3] = torch.randint(0, vocab // 10, (length // 3,), generator=g)  # some likely, some not
    return logits, ids, k


@graded("min_k_plus_plus")
def check_min_k_plus_plus(fn: Callable) -> None:
    cases = [_mink_case(0, 30, 120, 0.2), _mink_case(1, 12, 60, 0.5), _mink_case(2, 7, 200, 0.2),
             _mink_case(3, 25, 80, 1.0, dtype=torch.float64), _mink_case(4, 40, 150, 0.1, spread=6.0),
             _mink_case(5, 1, 50, 0.2)]  # fmt: skip
    hints = [
        (_mink_variant(plain=True), "that is Min-K% (the raw log-probabilities); Min-K%++ standardises each token's "
         "log-probability by the mean and spread of log p over the vocabulary at its position."),
        (_mink_variant(uniform=True), "mu and sigma are the mean and standard deviation of log p(z) for z drawn from "
         "the model's distribution p (weights p(z)), not a plain average over the vocabulary."),
        (_mink_variant(no_sigma=True), "divide by sigma, the standard deviation of log p(z) under p, too."),
        (_mink_variant(top=True), "average the LOWEST k% of the token scores, not the highest."),
        (_mink_variant(ceil=True), "take max(1, int(k * T)) tokens (rounding down), as the statement says."),
        (_mink_variant(count=True), "k is a fraction of the T tokens (0.2 = 20%), not a count."),
        (_mink_variant(shift=True), "the logits are already aligned: logits[t] is the distribution that ids[t] was "
         "drawn from; don't shift them."),
    ]  # fmt: skip
    for logits, ids, k in cases:
        want = min_k_plus_plus(logits, ids, k)
        out = call(fn, (logits, ids, k), "min_k_plus_plus")
        if isinstance(out, torch.Tensor | np.ndarray) and np.size(out) == 1:
            out = out.item()
        if not isinstance(out, int | float | np.floating):
            raise GradingError(f"min_k_plus_plus should return a number, got {describe(out)}.")
        got = float(out)
        if math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-4):
            continue
        if not math.isfinite(got):
            raise GradingError(f"min_k_plus_plus returned {got}: sigma is 0 only for a one-token vocabulary; look "
                               "for log(0) * 0 (use log_softmax, not log(softmax)).")  # fmt: skip
        for variant, message in hints:
            try:
                wrong = variant(logits, ids, k)
            except Exception:  # noqa: BLE001 - a variant that cannot run on this case spots nothing
                continue
            if math.isclose(got, wrong, rel_tol=1e-3, abs_tol=1e-4):
                raise GradingError(f"min_k_plus_plus: {message}")
        raise GradingError(f"min_k_plus_plus returned {got:.4f}, expected {want:.4f} (T = {len(ids)}, "
                           f"vocabulary {logits.shape[-1]}, k = {k}).")  # fmt: skip
    print(f"✓ min_k_plus_plus: passed {len(cases)} checks (float32 and float64 logits, one-token texts, k = 100%).")


# --- Exercise 4: a GSM-Symbolic clause ---------------------------------------------------------------------------


def _edge_problems() -> list[symbolic.WordProblem]:
    """Problems whose total leaves one way open: near 99 only giving away keeps it in range, near 0 only getting."""
    return [symbolic.WordProblem("Ada", ITEMS[0], 90, (("+", 9),)),  # total 99
            symbolic.WordProblem("Bo", ITEMS[1], 12, (("-", 9), ("-", 2))),  # total 1
            symbolic.WordProblem("Eve", ITEMS[4], 95, (("+", 3),)),  # total 98
            symbolic.WordProblem("Fay", ITEMS[0], 10, (("-", 8), ("-", 2))),  # total 0
            symbolic.WordProblem("Gus", ITEMS[1], 93, (("+", 4), ("-", 2), ("+", 2))),  # total 97
            symbolic.WordProblem("Hal", ITEMS[2], 11, (("-", 9),)),  # total 2
            symbolic.WordProblem("Cy", ITEMS[2], 50, (("+", 2), ("-", 3)), asked_first=True),
            symbolic.WordProblem("Di", ITEMS[3], 40, (("+", 5), ("+", 4)), distractor="Di also has 3 pens.")]  # fmt: skip


def _running_totals(problem: symbolic.WordProblem) -> list[int]:
    totals, total = [], problem.start
    for op, x in problem.moves:
        total += x if op == "+" else -x
        totals.append(total)
    return totals


@graded("add_clause")
def check_add_clause(fn: Callable) -> None:
    rng = random.Random(4242)
    names = ["Ada", "Bo", "Cy", "Di", "Eve", "Fay"]
    problems = _edge_problems() + [symbolic.draw(rng, names) for _ in range(60)]
    ops, amounts = set(), set()
    for i, problem in enumerate(problems):
        out = call(fn, (problem, random.Random(i)), "add_clause")
        if not isinstance(out, symbolic.WordProblem):
            raise GradingError(f"add_clause should return a WordProblem (dataclasses.replace(problem, moves=...)), "
                               f"got {describe(out)}.")  # fmt: skip
        kept = ("person", "item", "start", "asked_first", "distractor")
        changed = [f for f in kept if getattr(out, f) != getattr(problem, f)]
        if changed:
            raise GradingError(f"add_clause changed the problem's {changed[0]}: add a clause, keep everything else.")
        if len(out.moves) != len(problem.moves) + 1 or tuple(out.moves[:-1]) != tuple(problem.moves):
            raise GradingError(f"add_clause turned moves {problem.moves} into {out.moves}: keep every move and add "
                               "exactly one at the end.")  # fmt: skip
        op, x = out.moves[-1]
        if op not in ("+", "-") or not isinstance(x, int) or isinstance(x, bool) or not 2 <= x <= 9:
            raise GradingError(f"add_clause added the move {(op, x)!r}: a move is ('+', x) or ('-', x) with a "
                               "one-digit amount x in 2..9 (an int), as in the training problems.")  # fmt: skip
        if not all(0 <= t <= 99 for t in _running_totals(out)):
            raise GradingError(f"add_clause added {(op, x)} to a problem whose total is {problem.answer}, taking it "
                               f"to {out.answer}: keep every running total in 0..99 (choose the operation and the "
                               "amount from those that stay in range).")  # fmt: skip
        again = call(fn, (problem, random.Random(i)), "add_clause")
        if again != out:
            raise GradingError("add_clause gave two different clauses for the same rng seed: draw from `rng` only "
                               "(rng.choice, rng.randint), not the global `random`, so that a seed reproduces it.")  # fmt: skip
        ops.add(op)
        amounts.add(x)
    if ops != {"+", "-"} or len(amounts) < 5:
        raise GradingError(f"add_clause: over {len(problems)} problems it only ever added {sorted(ops)} with amounts "
                           f"{sorted(amounts)}; draw the operation and the amount at random.")  # fmt: skip
    middle = symbolic.WordProblem("Ivo", ITEMS[3], 40, (("+", 6), ("-", 3), ("+", 7)))  # total 50: all 16 pairs valid
    drawn = [call(fn, (middle, random.Random(10_000 + i)), "add_clause").moves[-1] for i in range(800)]
    counts = [drawn.count((op, x)) for op in "+-" for x in range(2, 10)]
    if min(counts) < 18 or max(counts) > 85:  # 50 expected each (sd 7): a uniform draw stays inside with near certainty
        raise GradingError(f"add_clause: on a problem whose total is 50, 800 draws gave each (operation, amount) "
                           f"between {min(counts)} and {max(counts)} times; draw uniformly among the pairs that keep "
                           "the total in range (here all 16 do), so each should come up about 50 times.")  # fmt: skip
    print(f"✓ add_clause: {len(problems)} problems, every total in range, both operations and {len(amounts)} "
          "amounts drawn, reproducible from the seed.")  # fmt: skip
