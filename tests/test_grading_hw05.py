"""Homework 05 graders: correct solutions written differently pass, plausible wrong ones fail with their hint."""

import math
import random
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from utils import arena
from utils.grading import GradingError, hw05
from utils.tinyworld import symbolic


def rejects(check, fn, hint: str) -> None:
    with pytest.raises(GradingError, match=hint):
        check(fn)


# --- style features -------------------------------------------------------------------------------------------


def style_by_lines(reply_a, reply_b):
    """Line by line, without regular expressions for lists and headers; returns a numpy array."""

    def counts(reply):
        headers = items = 0
        for line in reply.split("\n"):
            stripped = line.lstrip(" \t")
            hashes = len(stripped) - len(stripped.lstrip("#"))
            headers += 1 <= hashes <= 6 and stripped[hashes : hashes + 1] == " "
            marker = stripped.split(" ", 1)[0] if " " in stripped else ""
            items += marker in ("-", "*", "+") or (marker[:-1].isdigit() and marker[-1:] in (".", ")"))
        bold = len(re.findall(r"\*\*.+?\*\*", reply)) + len(re.findall(r"__.+?__", reply))
        return np.array([len(reply.split()), headers, bold, items], dtype=float)

    a, b = counts(reply_a), counts(reply_b)
    total = a + b
    return np.divide(a - b, total, out=np.zeros(4), where=total > 0)


def test_style_differences_accepts_other_correct_forms():
    for fn in (hw05.style_differences, style_by_lines, lambda a, b: tuple(hw05.style_differences(a, b))):
        hw05.check_style_differences(fn)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"raw": True}, "sum of the two counts"), ({"markers": True}, "SPANS"), ({"underscores": False}, "__text__"),
     ({"any_hash": True}, "hashtag"), ({"indented": False}, "indented"), ({"ordered": False}, "numbered"),
     ({"characters": True}, "words"), ({"nan": True}, "0 / 0")],
)  # fmt: skip
def test_style_differences_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw05.check_style_differences, hw05._style_variant(**kwargs), hint)


# --- Bradley-Terry with ties and a first-move term ---------------------------------------------------------------


def bt_gradient_ascent(battles):
    """Plain gradient ascent on the mean log-likelihood (ties as a target of 1/2), in log-odds, then scaled."""
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    idx = {m: i for i, m in enumerate(models)}
    a = np.array([idx[b["model_a"]] for b in battles])
    c = np.array([idx[b["model_b"]] for b in battles])
    y = np.array([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[b["winner"]] for b in battles])
    beta, first = np.zeros(len(models)), 0.0
    for _ in range(20_000):
        p = 1 / (1 + np.exp(-(beta[a] - beta[c] + first)))
        r = y - p
        grad = np.bincount(a, r, len(models)) - np.bincount(c, r, len(models))
        beta += 2.0 * grad / len(battles)
        first += 2.0 * r.mean()
    beta = beta * 400
    return {m: beta[i] - beta.mean() + 1000 for m, i in idx.items()}, first * 400


def bt_torch_float32(battles):
    """Newton's method in torch float32 with the first model pinned; ratings as 0-d tensors."""
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    X = torch.zeros(len(battles), len(models) + 1)
    for i, b in enumerate(battles):
        X[i, models.index(b["model_a"])] += 1
        X[i, models.index(b["model_b"])] -= 1
        X[i, -1] = 1
    y = torch.tensor([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[b["winner"]] for b in battles])
    Z, theta = X[:, 1:], torch.zeros(len(models))
    for _ in range(30):
        p = torch.sigmoid(Z @ theta)
        theta = theta + torch.linalg.solve((Z * (p * (1 - p))[:, None]).T @ Z, Z.T @ (y - p))
    beta = torch.cat([torch.zeros(1), theta[:-1]]) * 400
    beta = beta - beta.mean() + 1000
    return {m: beta[i] for i, m in enumerate(models)}, theta[-1] * 400


def test_bradley_terry_fit_accepts_other_correct_forms():
    for fn in (hw05.bradley_terry_fit, bt_gradient_ascent, bt_torch_float32):
        hw05.check_bradley_terry_fit(fn)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"ties": "drop"}, "don't drop it"), ({"ties": "model_b"}, "not a loss"), ({"ties": "model_a"}, "not a win"),
     ({"position": "no"}, "jointly"), ({"position": "flipped"}, "FIRST"), ({"scale": 1 / math.log(10)}, "10\\^"),
     ({"scale": 1 / 400}, "multiply")],
)  # fmt: skip
def test_bradley_terry_fit_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw05.check_bradley_terry_fit, hw05._fit_variant(**kwargs), hint)


def test_bradley_terry_fit_rejects_a_shift_and_too_few_steps():
    def shifted(battles):
        ratings, first = hw05.bradley_terry_fit(battles)
        return {m: r + 50 for m, r in ratings.items()}, first

    def online_elo(battles):  # one pass of Elo is no maximum-likelihood fit
        return arena.online_elo(battles), 0.0

    rejects(hw05.check_bradley_terry_fit, shifted, "mean of 1000")
    rejects(hw05.check_bradley_terry_fit, online_elo, "Iterate")


def test_reference_fit_matches_scikit_learn_and_recovers_the_first_move():
    from sklearn.linear_model import LogisticRegression

    battles = hw05.simulated_log(21, 20_000, 4, first=100, ties=0.0)
    ratings, first = hw05.bradley_terry_fit(battles)
    assert first == pytest.approx(100, abs=15)
    small = battles[:600]
    X, y, w, models = arena.design(small)
    X = np.column_stack([X, np.ones(len(X))])
    reference = LogisticRegression(C=1 / arena.RIDGE, fit_intercept=False, tol=1e-12, max_iter=10_000)
    reference.fit(X[:, 1:], y, sample_weight=w)
    assert hw05.bradley_terry_fit(small)[1] == pytest.approx(reference.coef_[0][-1] * arena.SCALE, abs=1e-3)


def test_simulated_logs_show_the_first_move_bias_they_are_built_for():
    """In the log where the strongest model is always shown first, leaving the term out inflates its rating."""
    battles = hw05.simulated_log(12, 2500, 4, first=120, ties=0.1, favoured_first=True)
    with_term, first = hw05.bradley_terry_fit(battles)
    without, _ = arena.bradley_terry(battles)
    strongest = max(with_term, key=with_term.get)
    assert first == pytest.approx(120, abs=40)
    assert without[strongest] - with_term[strongest] > 30


# --- Min-K%++ -------------------------------------------------------------------------------------------------------


def mink_loop_float32(logits, ids, k=0.2):
    """Token by token in float32, E[log p] and Var via E[x^2] - E[x]^2, the raw logits (shift-invariant)."""
    scores = []
    for row, token in zip(logits.float(), ids, strict=True):
        logp = torch.log_softmax(row, -1)
        p = logp.exp()
        mu = (p * logp).sum()
        var = (p * logp**2).sum() - mu**2
        scores.append(((logp[token] - mu) / var.clamp_min(0).sqrt()).item())
    n = max(1, int(k * len(scores)))
    return float(np.mean(sorted(scores)[:n]))


def mink_numpy(logits, ids, k=0.2):
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    p = np.exp(logp)
    mu = (p * logp).sum(-1)
    sigma = np.sqrt((p * (logp - mu[:, None]) ** 2).sum(-1))
    z = (logp[np.arange(len(ids)), np.asarray(ids)] - mu) / sigma
    return np.sort(z)[: max(1, int(k * len(z)))].mean()  # a numpy float


def test_min_k_plus_plus_accepts_other_correct_forms():
    for fn in (hw05.min_k_plus_plus, mink_loop_float32, mink_numpy):
        hw05.check_min_k_plus_plus(fn)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"plain": True}, "that is Min-K%"), ({"uniform": True}, "weights p"), ({"no_sigma": True}, "divide by sigma"),
     ({"top": True}, "LOWEST"), ({"ceil": True}, "rounding down"), ({"count": True}, "fraction"),
     ({"shift": True}, "aligned")],
)  # fmt: skip
def test_min_k_plus_plus_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw05.check_min_k_plus_plus, hw05._mink_variant(**kwargs), hint)


# --- add_clause -----------------------------------------------------------------------------------------------------


def add_clause_reference(problem, rng):
    total = problem.answer
    options = [(op, x) for op in "+-" for x in range(2, 10) if 0 <= (total + x if op == "+" else total - x) <= 99]
    return replace(problem, moves=(*problem.moves, rng.choice(options)))


def add_clause_rejection(problem, rng):
    """Another correct way: draw, and draw again until the total stays in range."""
    while True:
        op, x = rng.choice("+-"), rng.randint(2, 9)
        if 0 <= problem.answer + (x if op == "+" else -x) <= 99:
            return symbolic.WordProblem(problem.person, problem.item, problem.start, problem.moves + ((op, x),),
                                        problem.asked_first, problem.distractor)  # fmt: skip


def test_add_clause_accepts_other_correct_forms():
    for fn in (add_clause_reference, add_clause_rejection):
        hw05.check_add_clause(fn)


def test_add_clause_rejects_plausible_mistakes():
    def ignores_range(problem, rng):
        return replace(problem, moves=(*problem.moves, (rng.choice("+-"), rng.randint(2, 9))))

    def global_random(problem, rng):
        return add_clause_reference(problem, random)

    def replaces_last(problem, rng):
        return replace(problem, moves=(*problem.moves[:-1], ("+", 2)))

    def always_adds(problem, rng):
        total = problem.answer
        return replace(problem, moves=(*problem.moves, ("+", 2) if total <= 97 else ("-", rng.randint(2, 9))))

    def big_amounts(problem, rng):
        x = rng.randint(2, 15)
        return replace(problem, moves=(*problem.moves, ("-" if problem.answer >= x else "+", x)))

    def mostly_adds(problem, rng):  # both operations and every amount occur, but "-" only near the top
        op = "+" if problem.answer <= 90 else "-"
        return replace(problem, moves=(*problem.moves, (op, rng.randint(2, 9))))

    def as_text(problem, rng):
        return add_clause_reference(problem, rng).text

    rejects(hw05.check_add_clause, ignores_range, "0..99")
    rejects(hw05.check_add_clause, global_random, "global")
    rejects(hw05.check_add_clause, replaces_last, "keep every move")
    rejects(hw05.check_add_clause, always_adds, "at random")
    rejects(hw05.check_add_clause, big_amounts, "2..9")
    rejects(hw05.check_add_clause, as_text, "WordProblem")
    rejects(hw05.check_add_clause, mostly_adds, "uniformly")


def test_edge_problems_leave_one_way_open():
    totals = [p.answer for p in hw05._edge_problems()]
    assert 99 in totals and 1 in totals
    a = add_clause_reference(hw05._edge_problems()[0], random.Random(3))
    assert a.moves[-1][0] == "-" and a.answer <= 97
