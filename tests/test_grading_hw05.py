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


# an outside red team's implementations: wrong ones (each breaks a sentence of the statement) and correct ones


def _style_with(words=None, header=r"^[ \t]*#{1,6} ", bold=r"\*\*[^\n]+?\*\*|__[^\n]+?__",
                items=r"^[ \t]*(?:[-*+]|\d+[.)]) ", norm=None):  # fmt: skip
    """style_differences with the given regular expressions (re.M) and normalisation."""

    def counts(r):
        return [words(r) if words else len(r.split()), len(re.findall(header, r, re.M)), len(re.findall(bold, r)),
                len(re.findall(items, r, re.M))]  # fmt: skip

    def fn(a, b):
        x, y = counts(a), counts(b)
        if norm:
            return norm(x, y)
        return [(p - q) / (p + q) if p + q else 0.0 for p, q in zip(x, y, strict=True)]

    return fn


def _marker_pairs_per_line(a, b):
    """line.count('**') // 2 + line.count('__') // 2: counts '****' and '2**10 3**4' as spans."""

    def counts(r):
        return [len(r.split()), len(re.findall(r"^[ \t]*#{1,6} ", r, re.M)),
                sum(line.count("**") // 2 + line.count("__") // 2 for line in r.split("\n")),
                len(re.findall(r"^[ \t]*(?:[-*+]|\d+[.)]) ", r, re.M))]  # fmt: skip

    return [(p - q) / (p + q) if p + q else 0.0 for p, q in zip(counts(a), counts(b), strict=True)]


def _by_max(a, b):
    return [(p - q) / max(p, q) if max(p, q) else 0.0 for p, q in zip(a, b, strict=True)]


def _floor_div(a, b):
    return [float((p - q) // (p + q)) if p + q else 0.0 for p, q in zip(a, b, strict=True)]


def _rounded3(a, b):
    return [round((p - q) / (p + q), 3) if p + q else 0.0 for p, q in zip(a, b, strict=True)]


def _words_without_markup(r):
    return len([w for w in r.split() if not re.fullmatch(r"#{1,6}|[-*+]|\d+[.)]|[*_]+", w)])


@pytest.mark.parametrize(
    "wrong, hint",
    [(_style_with(header=r"^[ \t]*#{1,6}\s"), "headers differ"),  # \s takes a tab or a newline
     (_style_with(items=r"^[ \t]*(?:[-*+]|\d+[.)])\s"), "list items differ"),
     (_style_with(bold=r"\*\*[^\n*]+?\*\*|__[^\n_]+?__"), "bold differ"),  # no '*' inside a span
     (_style_with(bold=r"\*\*[^\n]+\*\*|__[^\n]+__"), "bold differ"),  # greedy
     (_style_with(words=lambda r: len(re.split(r"\s+", r))), "length differ"),
     (_style_with(header=r"^[ \t]*#+ "), "headers differ"),  # no upper limit on '#'
     (_style_with(header=r"#{1,6} "), "headers differ"),  # not anchored at the line start
     (_style_with(bold=r"\*\*(?! )[^\n]+?(?<! )\*\*|__(?! )[^\n]+?(?<! )__"), "bold differ"),  # CommonMark
     (_style_with(header=r"^ *#{1,6} ", items=r"^ *(?:[-*+]|\d+[.)]) "), "differ"),  # spaces only
     (_style_with(norm=_by_max), "differ"), (_style_with(norm=_floor_div), "differ"),
     (_style_with(norm=_rounded3), "differ"),
     (_style_with(items=r"^[ \t]*(?:[-*+]|\d+\.) "), "list items differ"),  # '.' only
     (_marker_pairs_per_line, "at least one character"),
     (_style_with(words=_words_without_markup), "length differ"),
     (_style_with(header=r"^[ \t]*#{1,6} +\S"), "headers differ"),  # '## ' alone is a header too
     (_style_with(bold=r"\*\*[^\n]*?\w[^\n]*?\*\*|__[^\n]*?\w[^\n]*?__"), "bold differ"),
     (_style_with(bold=r"\*\*[^\n]+?\*\*|(?<!\w)__[^\n]+?__(?!\w)"), "inside a word too"),  # CommonMark's _ rule
     (_style_with(header=r"^ {0,3}#{1,6} ", items=r"^ {0,3}(?:[-*+]|\d+[.)]) "), "differ"),  # CommonMark's indent
     (_style_with(words=lambda r: len([w for w in r.split(" ") if w])), "length differ"),
     (lambda a, b: [0.0] * 4 if a == b else _style_with(header="$^", bold="$^", items="$^")(a, b), "differ")],
)  # fmt: skip
def test_style_differences_rejects_the_red_teams_mistakes(wrong, hint):
    rejects(hw05.check_style_differences, wrong, hint)


def test_style_differences_rejects_a_cache_keyed_on_lines_and_words():
    rejects(hw05.check_style_differences, memo(hw05.style_differences, lambda a, b: (
        a.count("\n"), b.count("\n"), len(a.split()), len(b.split()))), "differ")  # fmt: skip


def style_lines_partition(a, b):
    """Line by line with str methods; bold by one alternation per line; numpy divide with where."""

    def counts(r):
        h = it = bo = 0
        for line in r.split("\n"):
            s = line.lstrip(" \t")
            k = len(s) - len(s.lstrip("#"))
            h += 1 <= k <= 6 and s[k : k + 1] == " "
            head, sep, _ = s.partition(" ")
            it += bool(sep) and (head in ("-", "*", "+") or (len(head) > 1 and head[:-1].isdigit()
                                                            and head[:-1].isascii() and head[-1] in ".)"))  # fmt: skip
            bo += len(re.findall(r"\*\*.+?\*\*|__.+?__", line))
        return np.array([len(r.split()), h, bo, it], dtype=np.float64)

    x, y = counts(a), counts(b)
    return np.divide(x - y, x + y, out=np.zeros(4), where=(x + y) > 0)


def style_each_kind_by_find(a, b):
    """Each bold kind on its own, with a str.find scan; max(a + b, 1) as the denominator; a tuple."""

    def spans(line, m):
        n, i = 0, 0
        while (i := line.find(m, i)) >= 0 and (j := line.find(m, i + 3)) >= 0:
            n, i = n + 1, j + 2
        return n

    def counts(r):
        lines = r.split("\n")
        return [len(r.split()), sum(bool(re.match(r"[ \t]*#{1,6}(?= )", ln)) for ln in lines),
                sum(spans(ln, "**") + spans(ln, "__") for ln in lines),
                sum(bool(re.match(r"[ \t]*(?:[-*+]|[0-9]+[.)])(?= )", ln)) for ln in lines)]  # fmt: skip

    return tuple((x - y) / max(x + y, 1) for x, y in zip(counts(a), counts(b), strict=True))


def style_torch64_nan_to_num(a, b):
    pats = [r"(?m)^[ \t]*#{1,6} ", r"\*\*[^\n]+?\*\*|__[^\n]+?__", r"(?m)^[ \t]*(?:[-*+]|\d+[.)]) "]
    c = torch.tensor([[len(r.split())] + [len(re.findall(p, r)) for p in pats] for r in (a, b)], dtype=torch.float64)
    return torch.nan_to_num((c[0] - c[1]) / (c[0] + c[1]), nan=0.0)


def style_backreference_series(a, b):
    """Words as runs of non-whitespace, bold by a backreference, a pandas Series with 0/0 filled."""

    def counts(r):
        return pd.Series({"length": len(re.findall(r"\S+", r)),
                          "headers": len(re.findall(r"^[ \t]*#{1,6}[ ]", r, re.M)),
                          "bold": len(list(re.finditer(r"(\*\*|__)(?:(?!\n).)+?\1", r))),
                          "list items": len(re.findall(r"^[ \t]*(?:[-+*]|[0-9]+[).])[ ]", r, re.M))})  # fmt: skip

    x, y = counts(a), counts(b)
    return ((x - y) / (x + y)).fillna(0.0)


@pytest.mark.parametrize("fn", [style_lines_partition, style_each_kind_by_find, style_torch64_nan_to_num,
                                style_backreference_series])  # fmt: skip
def test_style_differences_accepts_the_red_teams_correct_forms(fn, capsys):
    passes(hw05.check_style_differences, fn, capsys)


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


# an outside red team's implementations


def _design(battles, models=None):
    """models, X (+1 for model_a, -1 for model_b, a last column of ones: model_a shown first), y (ties 1/2)."""
    models = models or sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    X = np.zeros((len(battles), len(models) + 1))
    for i, b in enumerate(battles):
        X[i, models.index(b["model_a"])] += 1
        X[i, models.index(b["model_b"])] -= 1
        X[i, -1] = 1
    return models, X, np.array([{"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[b["winner"]] for b in battles])


def _finish(models, theta, pinned=0):
    beta = np.insert(theta[:-1], pinned, 0.0) * 400
    return dict(zip(models, beta - beta.mean() + 1000, strict=True)), float(theta[-1] * 400)


def _newton_fit(X, y, w=None, steps=50, tol=1e-10):
    Z, theta = X[:, 1:], np.zeros(X.shape[1] - 1)
    w = np.ones(len(y)) if w is None else w
    for _ in range(steps):
        p = 1 / (1 + np.exp(-Z @ theta))
        step = np.linalg.solve((Z * (w * p * (1 - p))[:, None]).T @ Z, Z.T @ (w * (y - p)))
        theta = theta + step
        if np.abs(step).max() < tol:
            break
    return theta


def bt_ties_double(battles):
    """A tie as a full win and a full loss: every tie counted twice."""
    rows = [r for b in battles for r in ([dict(b, winner="model_a"), dict(b, winner="model_b")]
                                         if b["winner"] == "tie" else [b])]  # fmt: skip
    models, X, y = _design(rows)
    return _finish(models, _newton_fit(X, y))


def bt_newton_steps(steps):
    def fit(battles):
        models, X, y = _design(battles)
        return _finish(models, _newton_fit(X, y, steps=steps, tol=0))

    return fit


def bt_gradient(steps=None, stop_on_loss=False, stop_in_log_odds=False):
    """Gradient ascent on the mean log-likelihood: a fixed number of steps, or stopped on a plateau of the
    likelihood, or when a step moves no coefficient by 1e-4 in log-odds (400 times the statement's 1e-4 point)."""

    def fit(battles):
        models, X, y = _design(battles)
        Z, theta, last = X[:, 1:], np.zeros(X.shape[1] - 1), -np.inf
        for _ in range(steps or 1_000_000):
            p = 1 / (1 + np.exp(-Z @ theta))
            if stop_on_loss:
                ll = float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))
                if ll - last < 1e-7:
                    break
                last = ll
            step = (0.5 if stop_on_loss else 1.0) * Z.T @ (y - p) / len(y)
            theta = theta + step
            if stop_in_log_odds and np.abs(step).max() < 1e-4:
                break
        return _finish(models, theta)

    return fit


def bt_sklearn_c1000(battles):
    """scikit-learn with C = 1000 ("large enough"): still a penalty."""
    from sklearn.linear_model import LogisticRegression

    models, X, y = _design(battles)
    rows, labels, weights = np.concatenate([X, X])[:, 1:], np.r_[np.ones(len(y)), np.zeros(len(y))], np.r_[y, 1 - y]
    keep = weights > 0
    fit = LogisticRegression(C=1000.0, fit_intercept=False, tol=1e-12, max_iter=10_000)
    fit.fit(rows[keep], labels[keep], sample_weight=weights[keep])
    return _finish(models, fit.coef_[0])


def bt_dedup(battles):
    """Repeated battles counted once."""
    unique = [dict(zip(("model_a", "model_b", "winner"), t, strict=True))
              for t in dict.fromkeys((b["model_a"], b["model_b"], b["winner"]) for b in battles)]  # fmt: skip
    models, X, y = _design(unique)
    return _finish(models, _newton_fit(X, y))


def bt_tie_rows_keep_position(battles):
    """Winner-loser rows with a position feature; a tie as two half rows, both marked 'winner shown first'."""
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    rows, weights = [], []
    for b in battles:
        a, c = models.index(b["model_a"]), models.index(b["model_b"])
        pairs = [(a, c, 1), (c, a, 1)] if b["winner"] == "tie" else (
            [(a, c, 1)] if b["winner"] == "model_a" else [(c, a, -1)])  # fmt: skip
        for win, lose, first in pairs:
            row = np.zeros(len(models) + 1)
            row[win], row[lose], row[-1] = 1, -1, first
            rows.append(row)
            weights.append(0.5 if b["winner"] == "tie" else 1.0)
    return _finish(models, _newton_fit(np.array(rows), np.ones(len(rows)), np.array(weights)))


def bt_two_stage_first(battles):
    """The first move estimated apart (400 logit of model_a's share), then the ratings with it fixed."""
    models, X, y = _design(battles)
    share = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    first = math.log(share / (1 - share))
    Z, theta = X[:, 1:-1], np.zeros(X.shape[1] - 2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(Z @ theta + first)))
        theta = theta + np.linalg.solve((Z * (p * (1 - p))[:, None]).T @ Z, Z.T @ (y - p))
    return _finish(models, np.r_[theta, first])


def bt_tie_weight_half(battles):
    models, X, y = _design(battles)
    return _finish(models, _newton_fit(X, y, np.where(y == 0.5, 0.5, 1.0)))


def bt_median_centred(battles):
    ratings, first = hw05.bradley_terry_fit(battles)
    median = float(np.median(list(ratings.values())))
    return {m: r - median + 1000 for m, r in ratings.items()}, first


def bt_davidson(battles):
    """Davidson's tie model (a tie parameter), fitted with scipy's BFGS."""
    minimize = pytest.importorskip("scipy.optimize").minimize
    models, X, y = _design(battles)
    Z, tie, win = X[:, 1:], y == 0.5, y == 1.0

    def nll(params):
        d, nu = Z @ params[:-1], params[-1]
        pa, pb, pt = np.exp(d / 2), np.exp(-d / 2), np.exp(nu)
        return -np.sum(np.log(np.where(tie, pt, np.where(win, pa, pb)) / (pa + pb + pt)))

    return _finish(models, minimize(nll, np.zeros(Z.shape[1] + 1), method="BFGS", options={"gtol": 1e-10}).x[:-1])


@pytest.mark.parametrize(
    "wrong, hint",
    [(bt_ties_double, "ONE battle"), (bt_newton_steps(5), "Iterate"), (bt_gradient(steps=2000), "Iterate"),
     (bt_gradient(stop_on_loss=True), "Iterate"), (bt_gradient(stop_in_log_odds=True), "Iterate"),
     (bt_sklearn_c1000, "differ"), (bt_dedup, "duplicate"), (bt_tie_rows_keep_position, "differ"),
     (lambda log: (hw05.bradley_terry_fit(log)[0], hw05.bradley_terry_fit(log)[1] / 400), "rating points too"),
     (bt_two_stage_first, "differ"), (bt_tie_weight_half, "weighs as much"), (bt_median_centred, "mean of 1000"),
     (bt_davidson, "Davidson"),
     (memo(hw05.bradley_terry_fit, lambda log: (len(log), len(hw05._models(log)))), "differ")],
)  # fmt: skip
def test_bradley_terry_fit_rejects_the_red_teams_mistakes(wrong, hint):
    rejects(hw05.check_bradley_terry_fit, wrong, hint)


def test_lopsided_logs_stop_fits_stopped_after_a_fixed_number_of_steps():
    """Without the fixed examples, the drawn lopsided logs alone catch 5 Newton steps and 2000 gradient steps."""
    from hypothesis import HealthCheck, given, seed, settings

    far = {"newton 5": 0, "gradient 2000": 0}

    @seed(11)
    @settings(max_examples=40, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hw05._lopsided_logs())
    def drawn(battles):
        assert hw05._has_finite_fit(battles)
        want = hw05.bradley_terry_fit(battles)
        for name, fit in (("newton 5", bt_newton_steps(5)), ("gradient 2000", bt_gradient(steps=2000))):
            far[name] += not hw05._close(fit(battles), want)

    drawn()
    assert far["newton 5"] >= 5 and far["gradient 2000"] >= 10


def bt_torch_lbfgs(battles):
    """torch float64 autograd, L-BFGS with a strong Wolfe line search, every model free (none pinned)."""
    models, X, y = _design(battles)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    theta = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=2000, tolerance_grad=1e-13, tolerance_change=1e-15,
                            history_size=50, line_search_fn="strong_wolfe")  # fmt: skip

    def closure():
        opt.zero_grad()
        z = Xt @ theta
        loss = -(yt * torch.nn.functional.logsigmoid(z) + (1 - yt) * torch.nn.functional.logsigmoid(-z)).sum()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    t = theta.detach().numpy()
    beta = t[:-1] * 400
    return dict(zip(models, beta - beta.mean() + 1000, strict=True)), float(t[-1] * 400)


def bt_scipy_bfgs_last_pinned(battles):
    """scipy BFGS with the analytic gradient, the last model pinned, models in order of first appearance."""
    optimize, special = pytest.importorskip("scipy.optimize"), pytest.importorskip("scipy.special")
    models = list(dict.fromkeys(m for b in battles for m in (b["model_a"], b["model_b"])))
    _, X, y = _design(battles, models)
    Z = np.delete(X, len(models) - 1, axis=1)

    def f(theta):
        z = Z @ theta
        return (-np.sum(y * special.log_expit(z) + (1 - y) * special.log_expit(-z)),
                -Z.T @ (y - special.expit(z)))  # fmt: skip

    fit = optimize.minimize(f, np.zeros(Z.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000})
    return _finish(models, fit.x, pinned=len(models) - 1)


def bt_newton_pinv(battles):
    """Newton in the full (rank-deficient) parameterisation with a pseudo-inverse step; numpy floats."""
    models, X, y = _design(battles)
    theta = np.zeros(X.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-X @ theta))
        step = np.linalg.pinv((X * (p * (1 - p))[:, None]).T @ X) @ (X.T @ (y - p))
        theta = theta + step
        if np.abs(step).max() < 1e-12:
            break
    beta = theta[:-1] * 400
    return ({m: np.float64(v) for m, v in zip(models, beta - beta.mean() + 1000, strict=True)},
            np.float64(theta[-1] * 400))  # fmt: skip


def bt_irls_two_rows(battles):
    """A tie as two rows of weight 1/2 (one won, one lost); IRLS until a step is below 1e-4 point."""
    models, X, y = _design(battles)
    rows, labels, weights = np.concatenate([X, X])[:, 1:], np.r_[np.ones(len(y)), np.zeros(len(y))], np.r_[y, 1 - y]
    theta = np.zeros(rows.shape[1])
    while True:
        p = 1 / (1 + np.exp(-rows @ theta))
        step = np.linalg.solve((rows * (weights * p * (1 - p))[:, None]).T @ rows, rows.T @ (weights * (labels - p)))
        theta = theta + step
        if 400 * np.abs(step).max() < 1e-4:
            return _finish(models, theta)


def bt_statsmodels(battles):
    """statsmodels' binomial GLM with variance weights, ties as two half rows; ratings as a pandas Series."""
    sm = pytest.importorskip("statsmodels.api")
    models, X, y = _design(battles)
    rows, labels, weights = np.concatenate([X, X])[:, 1:], np.r_[np.ones(len(y)), np.zeros(len(y))], np.r_[y, 1 - y]
    keep = weights > 0
    fit = sm.GLM(labels[keep], rows[keep], family=sm.families.Binomial(), var_weights=weights[keep]).fit(
        tol=1e-12, maxiter=200)  # fmt: skip
    theta = np.asarray(fit.params)
    beta = np.r_[0.0, theta[:-1]] * 400
    return pd.Series(beta - beta.mean() + 1000, index=models), float(theta[-1] * 400)


@pytest.mark.parametrize("fn", [bt_torch_lbfgs, bt_scipy_bfgs_last_pinned, bt_newton_pinv, bt_irls_two_rows,
                                bt_statsmodels])  # fmt: skip
def test_bradley_terry_fit_accepts_the_red_teams_correct_forms(fn, capsys):
    passes(hw05.check_bradley_terry_fit, fn, capsys)


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


# an outside red team's implementations


def _valid(total, amounts=range(2, 10)):
    return [(op, x) for op in "+-" for x in amounts if 0 <= (total + x if op == "+" else total - x) <= 99]


def _with_move(problem, pair):
    return replace(problem, moves=(*problem.moves, pair))


def clause_upper_exclusive(problem, rng):  # total + x < 99: a move reaching 99 is left out
    t = problem.answer
    return _with_move(problem, rng.choice([(op, x) for op in "+-" for x in range(2, 10)
                                           if (t + x < 99 if op == "+" else t - x >= 0)]))  # fmt: skip


def clause_lower_exclusive(problem, rng):  # total - x > 0: a move reaching 0 is left out
    t = problem.answer
    return _with_move(problem, rng.choice([(op, x) for op in "+-" for x in range(2, 10)
                                           if (t + x <= 99 if op == "+" else t - x > 0)]))  # fmt: skip


def clause_fallback_after(tries):
    """Rejection sampling with at most `tries` tries, then a fixed valid pair: drawn too often near the edges."""

    def add(problem, rng):
        t = problem.answer
        for _ in range(tries):
            op, x = rng.choice("+-"), rng.randint(2, 9)
            if 0 <= (t + x if op == "+" else t - x) <= 99:
                return _with_move(problem, (op, x))
        return _with_move(problem, ("+", 2) if t <= 97 else ("-", 2))

    return add


def clause_amount_first(problem, rng):  # the amount uniform over 2..9, then an operation valid for it
    t, x = problem.answer, rng.randint(2, 9)
    return _with_move(problem, (rng.choice([op for op in "+-" if 0 <= (t + x if op == "+" else t - x) <= 99]), x))


def clause_redraw_other_op(problem, rng):  # an invalid pair: the other operation, a new amount valid for it
    t = problem.answer
    op, x = rng.choice("+-"), rng.randint(2, 9)
    if not 0 <= (t + x if op == "+" else t - x) <= 99:
        op = "-" if op == "+" else "+"
        x = rng.choice([a for o, a in _valid(t) if o == op])
    return _with_move(problem, (op, x))


def clause_global_random_reseeded(problem, rng):  # reproducible and uniform, but reseeds the global `random`
    random.seed(rng.random())
    return _with_move(problem, random.choice(_valid(problem.answer)))


@pytest.mark.parametrize(
    "wrong, hint",
    [(clause_upper_exclusive, "uniformly"), (clause_lower_exclusive, "uniformly"),
     (lambda p, rng: _with_move(p, rng.choice(_valid(p.answer, range(2, 9)))), "uniformly"),  # amounts 2..8
     (clause_fallback_after(5), "fixed fallback"), (clause_fallback_after(4), "fixed fallback"),
     (clause_amount_first, "amount first"), (clause_redraw_other_op, "uniformly"),
     (lambda p, rng: _with_move(p, rng.choice(_valid(p.start))), "0..99"),  # pairs valid for the start
     (lambda p, rng: replace(p, moves=(rng.choice(_valid(p.answer)), *p.moves)), "keep every move"),  # put first
     (lambda p, rng: _with_move(p, list(rng.choice(_valid(p.answer)))), "a tuple"),  # ['+', 3]
     (lambda p, rng: replace(p, moves=[*p.moves, rng.choice(_valid(p.answer))]), "a tuple"),  # moves a list
     (lambda p, rng: _with_move(p, rng.choices(_valid(p.answer), weights=[x for _, x in _valid(p.answer)])[0]),
      "uniformly"),  # weighted by the amount
     (clause_global_random_reseeded, "global random state"),
     (lambda p, rng: symbolic.WordProblem(p.person, p.item, p.start, (*p.moves, rng.choice(_valid(p.answer)))),
      "changed the problem's"),
     (lambda p, rng: _with_move(p, _valid(p.answer)[len(p.moves) % len(_valid(p.answer))]), "for every seed")],
)  # fmt: skip
def test_add_clause_rejects_the_red_teams_mistakes(wrong, hint):
    state = random.getstate()
    rejects(hw05.check_add_clause, wrong, hint)
    random.setstate(state)


def clause_op_weighted(problem, rng):
    """The operation with probability proportional to its number of valid amounts, then an amount: uniform."""
    t = problem.answer
    plus, minus = [x for x in range(2, 10) if t + x <= 99], [x for x in range(2, 10) if t - x >= 0]
    if rng.random() < len(plus) / (len(plus) + len(minus)):
        return _with_move(problem, ("+", rng.choice(plus)))
    return _with_move(problem, ("-", rng.choice(minus)))


def clause_shuffled(problem, rng):
    options = _valid(problem.answer)
    rng.shuffle(options)
    return replace(problem, moves=problem.moves + (options[0],))


@pytest.mark.parametrize(
    "fn",
    [lambda p, rng: _with_move(p, random.Random(rng.random()).choice(_valid(p.answer))),  # a private Random from rng
     clause_shuffled, clause_op_weighted,
     lambda p, rng: _with_move(p, _valid(p.answer)[int(np.random.default_rng(rng.getrandbits(64)).integers(
         len(_valid(p.answer))))]),  # numpy seeded from rng, the index cast to int
     lambda p, rng: symbolic.WordProblem(p.person, p.item, p.start, (*p.moves, rng.sample(_valid(p.answer), 1)[0]),
                                         p.asked_first, p.distractor)],
)  # fmt: skip
def test_add_clause_accepts_the_red_teams_correct_forms(fn, capsys):
    passes(hw05.check_add_clause, fn, capsys)


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
    for total in (0, 99):  # with many draws, each pair's count is tested too
        valid = hw05.valid_moves(total)
        rng = random.Random(total)
        counts = __import__("collections").Counter(rng.choice(valid) for _ in range(hw05.EDGE_DRAWS))
        assert hw05._odd_pair(counts, valid, hw05.EDGE_DRAWS) is None
        assert hw05._chi_square(counts, dict.fromkeys(valid, 1 / len(valid)), hw05.EDGE_DRAWS) <= limit(len(valid) - 1)
    assert 2 * 8 * 0.5 * math.erfc(hw05.PAIR_Z / math.sqrt(2)) < 1e-7  # the pair test's false-rejection rate


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
