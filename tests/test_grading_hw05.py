"""Homework 05 graders: correct solutions written differently pass, plausible wrong ones fail with their hint."""

import math
import random
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from grading_helpers import memo, passes, rejects

from utils import arena
from utils.grading import GradingError, hw05
from utils.tinyworld import symbolic

# --- style features -------------------------------------------------------------------------------------------


def style_by_lines(reply_a, reply_b):
    """Line by line, without regular expressions for lists and headers, each bold kind on its own; numpy."""

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


def _bold_spans(line: str) -> int:
    """A hand-written scan: the first marker of either kind opens a span, the next one of its kind closes it."""
    spans, i = 0, 0
    while i < len(line) - 1:
        marker = line[i : i + 2]
        end = line.find(marker, i + 3) if marker in ("**", "__") else -1
        if end >= 0:
            spans, i = spans + 1, end + 2
        else:
            i += 1
    return spans


def style_scanned_float32(reply_a, reply_b):
    """Bold by a hand-written scan, the rest by regular expressions; a float32 torch tensor."""

    def counts(reply):
        return [len(reply.split()), len(re.findall(r"(?m)^[ \t]*#{1,6} ", reply)),
                sum(_bold_spans(line) for line in reply.split("\n")),
                len(re.findall(r"(?m)^[ \t]*(?:[-*+]|[0-9]+[.)]) ", reply))]  # fmt: skip

    a, b = torch.tensor(counts(reply_a), dtype=torch.float32), torch.tensor(counts(reply_b), dtype=torch.float32)
    return torch.where(a + b > 0, (a - b) / (a + b).clamp_min(1), torch.zeros(4))


def style_series(reply_a, reply_b):
    return pd.Series(hw05.style_differences(reply_a, reply_b), index=hw05.FEATURES)


@pytest.mark.parametrize(
    "fn", [hw05.style_differences, style_by_lines, style_scanned_float32, style_series,
           lambda a, b: tuple(np.float32(x) for x in hw05.style_differences(a, b))],
)  # fmt: skip
def test_style_differences_accepts_other_correct_forms(fn, capsys):
    passes(hw05.check_style_differences, fn, capsys)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"raw": True}, "sum of the two counts"), ({"markers": True}, "SPANS"), ({"underscores": False}, "__text__"),
     ({"any_hash": True}, "hashtag"), ({"indented": False}, "indented"), ({"ordered": False}, "numbered"),
     ({"characters": True}, "not characters"), ({"nan": True}, "0 / 0"), ({"swapped": True}, "not b - a"),
     ({"reordered": True}, "statement's order"), ({"across_lines": True}, "one line"),
     ({"empty_bold": True}, "at least one character"), ({"one_digit": True}, "several digits"),
     ({"stripped": True}, "nothing after its space"), ({"split_space": True}, "split\\(' '\\)")],
)  # fmt: skip
def test_style_differences_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw05.check_style_differences, hw05._style_variant(**kwargs), hint)


def test_style_differences_rejects_caches_constants_and_odd_outputs():
    rejects(hw05.check_style_differences, memo(hw05.style_differences, lambda a, b: (len(a), len(b))),
            "differ")  # fmt: skip
    rejects(hw05.check_style_differences,
            memo(hw05.style_differences, lambda a, b: (len(a.split()), len(b.split()))), "differ")  # fmt: skip
    rejects(hw05.check_style_differences, lambda a, b: [0.0, 0.0, 0.0, 0.0], "differ")
    rejects(hw05.check_style_differences, lambda a, b: hw05.style_differences(a, b)[:3], "returned 3 items")
    rejects(hw05.check_style_differences, lambda a, b: dict(zip(hw05.FEATURES, hw05.style_differences(a, b), strict=True)),
            "list of 4 numbers")  # fmt: skip


def test_style_messages_show_the_smallest_pair_of_replies():
    with pytest.raises(GradingError) as info:
        hw05.check_style_differences(hw05._style_variant(ordered=False))
    message = str(info.value)
    assert "Smallest failing input found: style_differences(reply_a=" in message and "\n" not in message


# --- Bradley-Terry with ties and a first-move term ---------------------------------------------------------------


def _index(battles):
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    idx = {m: i for i, m in enumerate(models)}
    a = np.array([idx[b["model_a"]] for b in battles])
    c = np.array([idx[b["model_b"]] for b in battles])
    y = np.array([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[b["winner"]] for b in battles])
    return models, a, c, y


def bt_gradient_ascent(battles):
    """Gradient ascent on the mean log-likelihood (ties as a target of 1/2), in log-odds, until a step moves no
    rating by more than 0.0001 point (as the statement says); then scaled and shifted."""
    models, a, c, y = _index(battles)
    beta, first = np.zeros(len(models)), 0.0
    for _ in range(200_000):
        r = y - 1 / (1 + np.exp(-(beta[a] - beta[c] + first)))
        step = (np.bincount(a, r, len(models)) - np.bincount(c, r, len(models))) / len(battles)
        beta, first = beta + step, first + r.mean()
        if 400 * max(np.abs(step).max(), abs(r.mean())) < 1e-4:
            break
    beta = beta * 400
    return {m: beta[i] - beta.mean() + 1000 for i, m in enumerate(models)}, first * 400


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


def bt_scikit_learn(battles):
    """A tie as two rows of weight 1/2; no penalty (C = inf); ratings as a pandas Series."""
    from sklearn.linear_model import LogisticRegression

    models, a, c, y = _index(battles)
    X = np.zeros((len(battles), len(models) + 1))
    X[np.arange(len(battles)), a] += 1
    X[np.arange(len(battles)), c] -= 1
    X[:, -1] = 1
    rows = np.concatenate([X, X])[:, 1:]
    labels = np.r_[np.ones(len(y)), np.zeros(len(y))]
    weights = np.r_[y, 1 - y]
    keep = weights > 0
    fit = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    fit.fit(rows[keep], labels[keep], sample_weight=weights[keep])
    beta = np.r_[0.0, fit.coef_[0][:-1]] * 400
    return pd.Series(beta - beta.mean() + 1000, index=models), fit.coef_[0][-1] * 400


@pytest.mark.parametrize("fn", [hw05.bradley_terry_fit, bt_gradient_ascent, bt_torch_float32, bt_scikit_learn])
def test_bradley_terry_fit_accepts_other_correct_forms(fn, capsys):
    passes(hw05.check_bradley_terry_fit, fn, capsys)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"ties": "drop"}, "don't drop it"), ({"ties": "model_b"}, "not a loss"), ({"ties": "model_a"}, "not a win"),
     ({"position": "no"}, "jointly"), ({"position": "flipped"}, "FIRST"), ({"scale": 1 / math.log(10)}, "10\\^"),
     ({"scale": 1 / 400}, "multiply"), ({"l2": 1.0}, "penalty"), ({"reversed_outcome": True}, "upside down")],
)  # fmt: skip
def test_bradley_terry_fit_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw05.check_bradley_terry_fit, hw05._fit_variant(**kwargs), hint)


def test_bradley_terry_fit_rejects_a_shift_too_few_steps_caches_and_constants():
    def shifted(battles):
        ratings, first = hw05.bradley_terry_fit(battles)
        return {m: r + 50 for m, r in ratings.items()}, first

    def first_pinned(battles):  # the first model held at 1000, no shift to a mean of 1000
        ratings, first = hw05.bradley_terry_fit(battles)
        pinned = ratings[min(ratings)]
        return {m: r - pinned + 1000 for m, r in ratings.items()}, first

    def online_elo(battles):  # one pass of Elo is no maximum-likelihood fit
        return arena.online_elo(battles), 0.0

    def three_newton_steps(battles):
        models, a, c, y = _index(battles)
        X = np.zeros((len(battles), len(models) + 1))
        X[np.arange(len(battles)), a] += 1
        X[np.arange(len(battles)), c] -= 1
        X[:, -1] = 1
        Z, theta = X[:, 1:], np.zeros(len(models))
        for _ in range(3):
            p = 1 / (1 + np.exp(-Z @ theta))
            theta = theta + np.linalg.solve((Z * (p * (1 - p))[:, None]).T @ Z, Z.T @ (y - p))
        beta = np.r_[0.0, theta[:-1]] * 400
        return dict(zip(models, beta - beta.mean() + 1000, strict=True)), theta[-1] * 400

    def models_of(battles):
        return tuple(sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles}))

    rejects(hw05.check_bradley_terry_fit, shifted, "mean of 1000")
    rejects(hw05.check_bradley_terry_fit, first_pinned, "mean of 1000")
    rejects(hw05.check_bradley_terry_fit, online_elo, "Iterate")
    rejects(hw05.check_bradley_terry_fit, three_newton_steps, "Iterate")
    rejects(hw05.check_bradley_terry_fit, memo(hw05.bradley_terry_fit, lambda log: len(models_of(log))), "differ")
    rejects(hw05.check_bradley_terry_fit, memo(hw05.bradley_terry_fit, models_of), "differ")
    rejects(hw05.check_bradley_terry_fit, lambda log: (dict.fromkeys(models_of(log), 1000.0), 0.0), "same rating")
    rejects(hw05.check_bradley_terry_fit, lambda log: hw05.bradley_terry_fit(log)[0], "\\(ratings, first_move\\)")
    rejects(hw05.check_bradley_terry_fit, lambda log: ({}, 0.0), "no rating for")


def test_drawn_logs_have_a_finite_fit_and_cover_the_edge_cases():
    from hypothesis import HealthCheck, given, seed, settings

    seen = {"models": set(), "never wins": 0, "ties": 0}

    @seed(5)
    @settings(max_examples=80, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hw05._battle_logs())
    def drawn(battles):
        assert hw05._has_finite_fit(battles)
        models = {b["model_a"] for b in battles} | {b["model_b"] for b in battles}
        winners = {b[b["winner"]] for b in battles if b["winner"] != "tie"}
        seen["models"].add(len(models))
        seen["never wins"] += bool(models - winners)
        seen["ties"] += any(b["winner"] == "tie" for b in battles)

    drawn()
    assert seen["models"] == {2, 3, 4, 5} and seen["never wins"] >= 10 and seen["ties"] >= 40


def test_reference_fit_matches_scikit_learn_and_recovers_the_first_move():
    battles = hw05.simulated_log(21, 20_000, 4, first=100, ties=0.0)
    ratings, first = hw05.bradley_terry_fit(battles)
    assert first == pytest.approx(100, abs=15)
    small = battles[:600]
    theirs, want = bt_scikit_learn(small), hw05.bradley_terry_fit(small)
    assert theirs[1] == pytest.approx(want[1], abs=1e-3)
    assert max(abs(theirs[0][m] - r) for m, r in want[0].items()) < 1e-3


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


def mink_topk_tensor(logits, ids, k=0.2):
    """In the logits' own dtype, torch.topk of the negated scores; a 0-d tensor."""
    logp = logits.log_softmax(-1)
    p = logp.exp()
    mu = (p * logp).sum(-1, keepdim=True)
    sigma = (p * (logp - mu).square()).sum(-1).sqrt()
    scores = (logp.gather(-1, ids[:, None])[:, 0] - mu[:, 0]) / sigma
    return -torch.topk(-scores, max(1, int(k * len(ids)))).values.mean()


@pytest.mark.parametrize("fn", [hw05.min_k_plus_plus, mink_loop_float32, mink_numpy, mink_topk_tensor])
def test_min_k_plus_plus_accepts_other_correct_forms(fn, capsys):
    passes(hw05.check_min_k_plus_plus, fn, capsys)


@pytest.mark.parametrize(
    "kwargs, hint",
    [({"plain": True}, "that is Min-K%"), ({"uniform": True}, "weights p"), ({"no_sigma": True}, "divide by sigma"),
     ({"top": True}, "LOWEST"), ({"ceil": True}, "round k \\* T down"), ({"rounded": True}, "not up or to the nearest"),
     ({"count": True}, "fraction"), ({"shift": True}, "aligned"), ({"no_minimum": True}, "at least one token"),
     ({"at_cut": True}, "tie at the cut"), ({"fixed_k": True}, "the k you are given"),
     ({"naive": True}, "log_softmax")],
)  # fmt: skip
def test_min_k_plus_plus_rejects_plausible_mistakes(kwargs, hint):
    rejects(hw05.check_min_k_plus_plus, hw05._mink_variant(**kwargs), hint)


def test_min_k_plus_plus_rejects_float32_log_of_softmax_caches_and_constants():
    def log_of_softmax_float32(logits, ids, k=0.2):  # log(softmax) in float32: -inf where p underflows
        logp = logits.float().softmax(-1).log()
        p = logp.exp()
        mu = (p * logp).sum(-1)
        sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).sqrt()
        scores = (logp[torch.arange(len(ids)), ids] - mu) / sigma
        return scores.sort().values[: max(1, int(k * len(ids)))].mean().item()

    rejects(hw05.check_min_k_plus_plus, log_of_softmax_float32, "log_softmax")
    rejects(hw05.check_min_k_plus_plus, memo(hw05.min_k_plus_plus, lambda lg, ids, k: tuple(lg.shape)),
            "expected")  # fmt: skip
    rejects(hw05.check_min_k_plus_plus, lambda lg, ids, k=0.2: -1.0, "expected")
    rejects(hw05.check_min_k_plus_plus, lambda lg, ids, k=0.2: [hw05.min_k_plus_plus(lg, ids, k)], "numbers")


def test_min_k_draws_repeat_shapes_and_tie_scores():
    from hypothesis import HealthCheck, given, seed, settings

    shapes, ties = [], 0

    @seed(3)
    @settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hw05._mink_inputs())
    def drawn(args):
        nonlocal ties
        logits, ids, k = args
        scores = hw05._token_scores(logits, ids)
        assert torch.isfinite(scores).all()
        shapes.append(tuple(logits.shape))
        ties += len(set(scores.tolist())) < len(scores)

    drawn()
    assert len(set(shapes)) < len(shapes) and ties >= 5


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


def add_clause_by_index(problem, rng):
    """The valid pairs, amounts first; an index drawn with rng.randrange."""
    total = problem.answer
    options = [(op, x) for x in range(2, 10) for op in "-+" if 0 <= total + (x if op == "+" else -x) <= 99]
    return replace(problem, moves=problem.moves + (options[rng.randrange(len(options))],))


def add_clause_weighted(problem, rng):
    """rng.choices over all 16 pairs, weight 0 for those that leave the range."""
    pairs = [(op, x) for op in "+-" for x in range(2, 10)]
    weights = [float(0 <= problem.answer + (x if op == "+" else -x) <= 99) for op, x in pairs]
    return replace(problem, moves=(*problem.moves, rng.choices(pairs, weights)[0]))


@pytest.mark.parametrize("fn", [add_clause_reference, add_clause_rejection, add_clause_by_index, add_clause_weighted])
def test_add_clause_accepts_other_correct_forms(fn, capsys):
    passes(hw05.check_add_clause, fn, capsys)


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

    def operation_first(problem, rng):
        total = problem.answer
        ops = [op for op in "+-" if any(0 <= total + (x if op == "+" else -x) <= 99 for x in range(2, 10))]
        op = rng.choice(ops)
        amounts = [x for x in range(2, 10) if 0 <= total + (x if op == "+" else -x) <= 99]
        return replace(problem, moves=(*problem.moves, (op, rng.choice(amounts))))

    def flipped_at_edges(problem, rng):
        op, x = rng.choice("+-"), rng.randint(2, 9)
        if not 0 <= problem.answer + (x if op == "+" else -x) <= 99:
            op = "-" if op == "+" else "+"
        return replace(problem, moves=(*problem.moves, (op, x)))

    def own_seed(problem, rng):
        return add_clause_reference(problem, random.Random(0))

    def new_problem(problem, rng):  # the distractor and the question's position are lost
        move = add_clause_reference(problem, rng).moves[-1]
        return symbolic.WordProblem(problem.person, problem.item, problem.start, (*problem.moves, move))

    def numpy_amount(problem, rng):
        op, x = add_clause_reference(problem, rng).moves[-1]
        return replace(problem, moves=(*problem.moves, (op, np.int64(x))))

    cases = [(ignores_range, "0..99"), (global_random, "global"), (replaces_last, "keep every move"),
             (always_adds, "for every seed"), (big_amounts, "2..9"), (as_text, "WordProblem"),
             (mostly_adds, "uniformly"), (operation_first, "operation first"), (flipped_at_edges, "flip"),
             (own_seed, "for every seed"), (new_problem, "changed the problem's"), (numpy_amount, "Python int"),
             (memo(add_clause_reference, lambda p, rng: len(p.moves)), "changed the problem's|turned moves")]  # fmt: skip
    for fn, hint in cases:
        rejects(hw05.check_add_clause, fn, hint)


def test_drawn_problems_keep_their_totals_in_range_and_reach_the_edges():
    from hypothesis import HealthCheck, given, seed, settings

    totals = []

    @seed(7)
    @settings(max_examples=80, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hw05._problems())
    def drawn(problem):
        assert all(0 <= t <= 99 for t in hw05._running_totals(problem))
        totals.append(problem.answer)

    drawn()
    assert {0, 99} & set(totals) and min(totals) <= 2 and max(totals) >= 97


def test_the_uniformity_test_is_calibrated():
    """A uniform draw passes at every total; the two wrong shapes are told apart where they differ."""
    limit = hw05._chi_square_limit
    for total in (0, 1, 5, 45, 94, 97, 99):
        valid = hw05.valid_moves(total)
        rng = random.Random(total)
        counts = __import__("collections").Counter(rng.choice(valid) for _ in range(hw05.DRAWS))
        assert hw05._chi_square(counts, dict.fromkeys(valid, 1 / len(valid))) <= limit(len(valid) - 1)
    assert limit(15) == pytest.approx(63, abs=3)  # chi-square's 1 - 1e-7 quantile with 15 degrees of freedom


def test_probes_tell_every_mistake_apart():
    """On the probes that confirm a diagnosis, each mistake gives its own answer (hints sharing a message aside)."""
    outputs = [(message, variant(*hw05.STYLE_PROBE)) for variant, message in hw05.STYLE_HINTS]
    outputs.append(("right", hw05.style_differences(*hw05.STYLE_PROBE)))
    for i, (m1, a) in enumerate(outputs):
        assert not any(hw05._close_lists(a, b) for m2, b in outputs[i + 1 :]), m1

    probe = hw05.FIT_EXAMPLES[0]
    fits = [(message, variant(probe)) for variant, message in hw05.FIT_HINTS] + [("right", hw05.bradley_terry_fit(probe))]
    for i, (m1, a) in enumerate(fits):
        assert not any(hw05._close(a, b, tol=1.0) for m2, b in fits[i + 1 :]), m1

    def scores(args):
        return [variant(*args) for variant, _ in hw05.MINK_HINTS] + [hw05.min_k_plus_plus(*args)]

    messages = [message for _, message in hw05.MINK_HINTS] + ["right"]
    together = list(zip(messages, zip(*(scores(args) for args in hw05.MINK_PROBES), strict=True), strict=True))
    for i, (m1, a) in enumerate(together):
        for m2, b in together[i + 1 :]:
            if m1 != m2:
                assert not all(hw05._close_numbers(x, y) for x, y in zip(a, b, strict=True)), (m1, m2)
