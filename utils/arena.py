"""Ratings from pairwise battles (an arena): online Elo, Bradley–Terry by maximum likelihood with optional style
features (Chatbot Arena's style control), and bootstrap intervals.

A battle log is a table with one row per battle: `model_a`, `model_b`, `winner` ("model_a", "model_b" or "tie"),
and optionally one numeric column per style feature for each side (`length_a`, `length_b`, ...). The lecture's
win probability, with ratings β on a scale of 400:

    P(a beats b) = 1 / (1 + exp(-(β_a - β_b + β_0) / 400)),   β_0 = Σ_k γ_k (feature_k of a - feature_k of b)

    log = read_battles("data/arena/sample_battles.csv")
    ratings, gammas = bradley_terry(log, style=["length"])
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCALE = 400.0  # rating points per unit of log-odds, as in the lecture's formula
MEAN_RATING = 1000.0  # ratings are only defined up to a shift: report them around this mean
WINNERS = ("model_a", "model_b", "tie")
RIDGE = 1e-4  # a tiny L2 penalty (log-odds units): keeps ratings finite when a model wins or loses every battle


def read_battles(path: str | Path) -> list[dict]:
    """A battle log from a CSV file with columns model_a, model_b, winner (+ style columns like length_a,
    length_b). Numeric columns are read as floats. Raises ValueError naming the first bad row."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no battles")
    missing = {"model_a", "model_b", "winner"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)} (need model_a, model_b, winner)")
    battles = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        if row["winner"] not in WINNERS:
            raise ValueError(f"{path}, line {i}: winner must be one of {WINNERS}, not {row['winner']!r}")
        battle = {}
        for key, value in row.items():
            try:
                battle[key] = value if key in ("model_a", "model_b", "winner") else float(value)
            except ValueError as error:
                raise ValueError(f"{path}, line {i}: column {key!r} is not a number: {value!r}") from error
        battles.append(battle)
    return battles


def models_in(battles: Sequence[dict]) -> list[str]:
    return sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})


def win_probability(rating_a: float, rating_b: float, style_term: float = 0.0, scale: float = SCALE) -> float:
    """The lecture's formula: the chance that a beats b."""
    return 1.0 / (1.0 + np.exp(-(rating_a - rating_b + style_term) / scale))


def online_elo(battles: Sequence[dict], k: float = 4.0, scale: float = SCALE) -> dict[str, float]:
    """Elo as games are played: after each battle both ratings move by k × (result - expected result), in the
    order of the log (a tie scores one half). The result depends on that order."""
    ratings = dict.fromkeys(models_in(battles), MEAN_RATING)
    for b in battles:
        a, c = b["model_a"], b["model_b"]
        expected = win_probability(ratings[a], ratings[c], scale=scale)
        score = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[b["winner"]]
        ratings[a] += k * (score - expected)
        ratings[c] -= k * (score - expected)
    return ratings


def design(battles: Sequence[dict], style: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Logistic-regression form of the log: (X, y, weights, models). Row i has +1 in model_a's column, -1 in
    model_b's, then the style differences (a - b) of each feature, standardised over the log. A tie becomes a win
    and a loss of weight one half each."""
    models = models_in(battles)
    column = {m: j for j, m in enumerate(models)}
    rows, y, w = [], [], []
    for b in battles:
        x = np.zeros(len(models) + len(style))
        x[column[b["model_a"]]] += 1.0
        x[column[b["model_b"]]] -= 1.0
        for j, feature in enumerate(style):
            x[len(models) + j] = b[f"{feature}_a"] - b[f"{feature}_b"]
        outcomes = {"model_a": [(1.0, 1.0)], "model_b": [(0.0, 1.0)], "tie": [(1.0, 0.5), (0.0, 0.5)]}[b["winner"]]
        for label, weight in outcomes:
            rows.append(x)
            y.append(label)
            w.append(weight)
    X = np.array(rows).reshape(len(rows), len(models) + len(style))
    if style:
        spread = X[:, len(models) :].std(axis=0)
        X[:, len(models) :] /= np.where(spread > 0, spread, 1.0)
    return X, np.array(y), np.array(w), models


def fit_logistic(X: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 0.0, steps: int = 100) -> np.ndarray:
    """Weighted logistic regression without intercept (every column gets a coefficient), by Newton's method."""
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("the ratings are not identifiable: some models never meet the others, or a style feature "
                         "is fixed by the model (each must vary within a model's answers)")  # fmt: skip
    theta = np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        gradient = X.T @ (weights * (y - p)) - l2 * theta
        hessian = (X * (weights * p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta += step
        if np.abs(step).max() < 1e-10:
            break
    return theta


def bradley_terry(battles: Sequence[dict], style: Sequence[str] = (), scale: float = SCALE,
                  l2: float = RIDGE) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """Ratings by maximum likelihood under the lecture's formula (order-free, unlike online Elo), and with style
    features the γ of each (rating points per standard deviation of the feature difference). Ratings are
    shifted to a mean of 1000."""
    X, y, w, models = design(battles, style)
    # ratings are defined only up to a shift: the first model's is held at 0 (its column dropped)
    theta = np.concatenate([[0.0], fit_logistic(X[:, 1:], y, w, l2=l2)]) * scale
    ratings = theta[: len(models)] - theta[: len(models)].mean() + MEAN_RATING
    return dict(zip(models, ratings, strict=True)), dict(zip(style, theta[len(models) :], strict=True))


def bootstrap_ratings(battles: Sequence[dict], style: Sequence[str] = (), n: int = 200, seed: int = 0,
                      confidence: float = 0.95) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    """Each model's rating with a percentile-bootstrap interval over battles: {model: (rating, low, high)}."""
    rng = np.random.default_rng(seed)
    point, _ = bradley_terry(battles, style)
    draws = {m: [] for m in point}
    for _ in range(n):
        sample = [battles[i] for i in rng.integers(0, len(battles), len(battles))]
        ratings, _ = bradley_terry(sample, style)
        for m in point:
            draws[m].append(ratings.get(m, np.nan))
    tail = (1 - confidence) / 2 * 100
    return {m: (point[m], *np.nanpercentile(draws[m], [tail, 100 - tail])) for m in point}
