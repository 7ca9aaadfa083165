"""The arena's ratings: Bradley–Terry against an independent solver, recovery of known ratings and style effects,
online Elo's dependence on battle order, and the battle-log reader's errors."""

import numpy as np
import pytest

from utils import arena


def simulate(true: dict[str, float], n: int, seed: int, gamma: float = 0.0, ties: float = 0.0) -> list[dict]:
    """Battles between random pairs; each side has a random length, and the winner follows the lecture's formula
    with a style term gamma × (length difference)."""
    rng = np.random.default_rng(seed)
    names = sorted(true)
    battles = []
    for _ in range(n):
        a, b = rng.choice(names, size=2, replace=False)
        length_a, length_b = rng.normal(100, 30, size=2)
        p = arena.win_probability(true[a], true[b], gamma * (length_a - length_b))
        winner = "tie" if rng.random() < ties else ("model_a" if rng.random() < p else "model_b")
        battles.append({"model_a": a, "model_b": b, "winner": winner, "length_a": length_a, "length_b": length_b})
    return battles


TRUE = {"alpha": 1100.0, "beta": 1000.0, "gamma": 950.0, "delta": 900.0}


@pytest.mark.parametrize("style", [(), ("length",)])
def test_bradley_terry_matches_scikit_learn(style):
    from sklearn.linear_model import LogisticRegression

    battles = simulate(TRUE, 600, seed=1, gamma=2.0, ties=0.1)
    ratings, gammas = arena.bradley_terry(battles, style=style)
    X, y, w, models = arena.design(battles, style)
    reference = LogisticRegression(C=1 / arena.RIDGE, fit_intercept=False, tol=1e-12, max_iter=10_000)
    reference.fit(X[:, 1:], y, sample_weight=w)
    coef = np.concatenate([[0.0], reference.coef_[0]]) * arena.SCALE
    expected = coef[: len(models)] - coef[: len(models)].mean() + arena.MEAN_RATING
    assert np.allclose([ratings[m] for m in models], expected, atol=1e-3)
    assert np.allclose([gammas[f] for f in style], coef[len(models) :], atol=1e-3)


def test_bradley_terry_recovers_known_ratings_and_style_effect():
    battles = simulate(TRUE, 20_000, seed=2, gamma=1.5)
    ratings, gammas = arena.bradley_terry(battles, style=["length"])
    shift = np.mean(list(TRUE.values())) - arena.MEAN_RATING
    for m, r in TRUE.items():
        assert ratings[m] == pytest.approx(r - shift, abs=25)
    # gamma is per standard deviation of the length difference (30 * sqrt(2) here)
    assert gammas["length"] == pytest.approx(1.5 * 30 * np.sqrt(2), rel=0.25)
    blind, _ = arena.bradley_terry(simulate(TRUE, 4000, seed=2), style=[])
    assert sorted(blind, key=blind.get) == sorted(TRUE, key=TRUE.get)


def test_intervals_cover_the_point_estimate_and_shrink_with_more_battles():
    small = arena.bootstrap_ratings(simulate(TRUE, 200, seed=3), n=50)
    large = arena.bootstrap_ratings(simulate(TRUE, 2000, seed=3), n=50)
    for m in TRUE:
        assert small[m][1] <= small[m][0] <= small[m][2]
        assert large[m][2] - large[m][1] < small[m][2] - small[m][1]


def test_online_elo_depends_on_battle_order_and_conserves_points():
    battles = simulate(TRUE, 400, seed=4)
    forward = arena.online_elo(battles)
    backward = arena.online_elo(battles[::-1])
    assert sum(forward.values()) == pytest.approx(arena.MEAN_RATING * len(TRUE))
    assert any(abs(forward[m] - backward[m]) > 1 for m in TRUE)
    one = arena.online_elo([{"model_a": "x", "model_b": "y", "winner": "model_a"}], k=4)
    assert one["x"] == pytest.approx(1002) and one["y"] == pytest.approx(998)  # equal ratings: expected 1/2


def test_read_battles_reads_the_format_and_names_bad_rows(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("model_a,model_b,winner,length_a,length_b\nx,y,model_a,10,20\ny,x,tie,5,5\n")
    battles = arena.read_battles(good)
    assert battles[0] == {"model_a": "x", "model_b": "y", "winner": "model_a", "length_a": 10.0, "length_b": 20.0}
    bad_winner = tmp_path / "bad.csv"
    bad_winner.write_text("model_a,model_b,winner\nx,y,model_a\nx,y,a\n")
    with pytest.raises(ValueError, match="line 3"):
        arena.read_battles(bad_winner)
    no_winner = tmp_path / "cols.csv"
    no_winner.write_text("model_a,model_b\nx,y\n")
    with pytest.raises(ValueError, match="winner"):
        arena.read_battles(no_winner)


def test_a_style_feature_constant_within_each_model_is_refused():
    battles = simulate(TRUE, 300, seed=6)
    for b in battles:  # decoration fixed per model: indistinguishable from the model itself
        b["emoji_a"], b["emoji_b"] = float(b["model_a"] == "alpha"), float(b["model_b"] == "alpha")
    with pytest.raises(ValueError, match="vary within"):
        arena.bradley_terry(battles, style=["emoji"])


def test_a_model_that_wins_every_battle_gets_a_finite_rating():
    battles = [{"model_a": "always", "model_b": m, "winner": "model_a"} for m in ("x", "y") for _ in range(20)]
    battles += [{"model_a": "x", "model_b": "y", "winner": w} for w in ("model_a", "model_b", "model_a")]
    ratings, _ = arena.bradley_terry(battles)
    assert all(np.isfinite(list(ratings.values()))) and ratings["always"] > ratings["x"] > ratings["y"]


def test_the_shipped_sample_log_reads_and_fits():
    from utils.paths import DATA

    battles = arena.read_battles(DATA / "arena" / "sample_battles.csv")
    ratings, gammas = arena.bradley_terry(battles, style=["log_length", "decorations"])
    assert set(ratings) == {"model-x", "model-y", "model-z"} and set(gammas) == {"log_length", "decorations"}
