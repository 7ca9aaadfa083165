"""Homework 04 graders: correct solutions written differently pass, plausible wrong ones fail with their hint."""

import math
import re
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch

from utils.grading import GradingError, hw04


def rejects(check, fn, hint: str) -> None:
    with pytest.raises(GradingError, match=hint):
        check(fn)


# --- pass@k -----------------------------------------------------------------------------------------------------


def pass_at_k_product(n, c, k):
    """Codex's numerically stable form, in numpy."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_fractions(n, c, k):
    """Exact: the share of k-subsets holding a right sample, by counting."""
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def pass_at_k_torch32(n, c, k):
    """The product form in torch's default float32."""
    if n - c < k:
        return 1.0
    return (1 - torch.prod(1 - k / torch.arange(n - c + 1, n + 1, dtype=torch.float32))).item()


def pass_at_k_lgamma(n, c, k):
    """Through log-gamma: no big integers at all."""
    if n - c < k:
        return 1.0
    log_ratio = math.lgamma(n - c + 1) - math.lgamma(n - c - k + 1) - math.lgamma(n + 1) + math.lgamma(n - k + 1)
    return 1 - math.exp(log_ratio)


def test_pass_at_k_accepts_other_correct_forms():
    for fn in (hw04.pass_at_k, pass_at_k_product, pass_at_k_fractions, pass_at_k_torch32, pass_at_k_lgamma):
        hw04.check_pass_at_k(fn)


def pass_at_k_float_factorials(n, c, k):
    """Right for small n; n! in floating point is inf beyond 170."""
    fact = lambda m: np.prod(np.arange(1, m + 1, dtype=np.float64))  # noqa: E731
    comb = lambda a, b: fact(a) / (fact(b) * fact(a - b)) if a >= b else 0.0  # noqa: E731
    with np.errstate(all="ignore"):
        return 1 - comb(n - c, k) / comb(n, k)


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda n, c, k: 1 - (1 - c / n) ** k, "WITH replacement"),
    (lambda n, c, k: c / n, "pass@1"),
    (pass_at_k_float_factorials, "overflows"),
    (lambda n, c, k: 1 - math.comb(n - c, k) / math.comb(n, k - 1), "expected"),
])  # fmt: skip
def test_pass_at_k_rejects(fn, hint):
    rejects(hw04.check_pass_at_k, fn, hint)


# --- majority vote ----------------------------------------------------------------------------------------------


def vote_with_regex(replies):
    """Another correct version: a regex for the last answer, ties broken by first appearance."""
    answers = []
    for reply in replies:
        found = re.findall(r"The answer is (-?\d+)", reply)
        if found:
            answers.append(int(found[-1]))
    if not answers:
        return None
    counts = Counter(answers)
    return max(answers, key=lambda a: (counts[a], -answers.index(a)))


def test_majority_vote_accepts_the_reference_and_a_regex():
    hw04.check_majority_vote(hw04.majority_vote)
    hw04.check_majority_vote(vote_with_regex)


def vote_smallest_on_tie(replies):
    answers = [a for a in map(hw04.extract_answer, replies) if a is not None]
    counts = Counter(answers)
    return min(a for a in counts if counts[a] == max(counts.values())) if counts else None


@pytest.mark.parametrize(("fn", "hint"), [
    (hw04._vote_variant(none_votes=True), "do not vote"),
    (hw04._vote_variant(first_number=True), "FINAL answer"),
    (hw04._vote_variant(first_answer=True), "LAST one"),
    (vote_smallest_on_tie, "tie"),
    (lambda replies: str(hw04.majority_vote(replies)), "as an int"),
])  # fmt: skip
def test_majority_vote_rejects(fn, hint):
    rejects(hw04.check_majority_vote, fn, hint)


# --- Math-Shepherd labels ------------------------------------------------------------------------------------


def shepherd_one_at_a_time(prompt, steps, answer, rollout, n):
    """Another correct version: one rollout call per sample, prefixes built incrementally, numpy mean."""
    labels, prefix = [], f"{prompt}<think> "
    for k, step in enumerate(steps):
        prefix = prefix + (" ; " if k else "") + step
        hits = [hw04.extract_answer(rollout([prefix])[0]) == answer for _ in range(n)]
        labels.append(np.mean(hits))
    return np.array(labels)


def test_shepherd_labels_accepts_the_reference_and_a_loop():
    hw04.check_shepherd_labels(hw04.shepherd_labels)
    hw04.check_shepherd_labels(shepherd_one_at_a_time)


def shepherd_too_few(prompt, steps, answer, rollout, n):
    return hw04.shepherd_labels(prompt, steps, answer, rollout, max(1, n - 1))


@pytest.mark.parametrize(("fn", "hint"), [
    (hw04._shepherd_variant(before=True), "ENDS with step k"),
    (hw04._shepherd_variant(trailing=True), "no separator after the last step"),
    (hw04._shepherd_variant(hard=True), "SHARE"),
    (hw04._shepherd_variant(first_number=True), "final answer"),
    (shepherd_too_few, "exactly n"),
    (lambda prompt, steps, answer, rollout, n: [0.5] * len(steps), "expected"),
])  # fmt: skip
def test_shepherd_labels_rejects(fn, hint):
    rejects(hw04.check_shepherd_labels, fn, hint)


# --- GRPO -----------------------------------------------------------------------------------------------------


def advantages_numpy(rewards):
    r = np.asarray(rewards, dtype=np.float32)
    return torch.tensor((r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-4))


def test_group_advantages_accepts_the_reference_and_numpy():
    hw04.check_group_advantages(hw04.group_advantages)
    hw04.check_group_advantages(advantages_numpy)


@pytest.mark.parametrize(("kwargs", "hint"), [
    ({"global_mean": True}, "GROUP's mean"),
    ({"no_std": True}, "standard deviation"),
    ({"population": True}, "unbiased"),
])  # fmt: skip
def test_group_advantages_rejects(kwargs, hint):
    rejects(hw04.check_group_advantages, hw04._advantage_variant(**kwargs), hint)


def test_group_advantages_explains_nan():
    rejects(hw04.check_group_advantages, lambda r: (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True), "std 0")


def clipped_loss_by_loop(logp_new, logp_old, advantages, mask, clip=0.2):
    """Another correct version: one reply at a time, with torch.where instead of clamp."""
    losses = []
    for i in range(len(logp_new)):
        keep = mask[i].bool()
        ratio = torch.exp(logp_new[i][keep] - logp_old[i][keep])
        a = advantages[i]
        clipped = torch.where(ratio > 1 + clip, 1 + clip, torch.where(ratio < 1 - clip, 1 - clip, ratio))
        losses.append(-torch.min(ratio * a, clipped * a).mean())
    return torch.stack(losses).mean()


def test_clipped_loss_accepts_the_reference_and_a_loop():
    hw04.check_clipped_loss(hw04.clipped_loss)
    hw04.check_clipped_loss(clipped_loss_by_loop)


@pytest.mark.parametrize(("kwargs", "hint"), [
    ({"sign": True}, "negative"),
    ({"no_exp": True}, "exp"),
    ({"max_": True}, "minimum"),
    ({"no_min": True}, "unclipped term"),
    ({"no_mask": True}, "padding"),
    ({"token_mean": True}, "each reply's own tokens"),
])  # fmt: skip
def test_clipped_loss_rejects(kwargs, hint):
    rejects(hw04.check_clipped_loss, hw04._loss_variant(**kwargs), hint)


def test_clipped_loss_rejects_a_detached_loss():
    rejects(hw04.check_clipped_loss, lambda *args: hw04.clipped_loss(args[0].detach(), *args[1:]), "no gradient")
    rejects(hw04.check_clipped_loss,
            lambda new, old, a, m, clip=0.2: hw04.clipped_loss(new, old, a, m, clip) + 0 * new.sum() ** 2
            + (new - new.detach()).sum() * 1e-3, "gradient")  # fmt: skip


# --- length reward -------------------------------------------------------------------------------------------


def length_reward_lists(lengths, correct):
    lengths, correct = list(map(float, lengths)), [bool(c) for c in correct]
    lo, hi = min(lengths), max(lengths)
    out = []
    for n, ok in zip(lengths, correct, strict=True):
        lam = 0.0 if hi == lo else 0.5 - (n - lo) / (hi - lo)
        out.append(lam if ok else min(0.0, lam))
    return torch.tensor(out, dtype=torch.float32)


def test_length_reward_accepts_the_reference_and_lists():
    hw04.check_length_reward(hw04.length_reward)
    hw04.check_length_reward(length_reward_lists)


@pytest.mark.parametrize(("kwargs", "hint"), [
    ({"wrong_too": True}, "never rewarded"),
    ({"correct_only": True}, "ALL the group's replies"),
    ({"by_max": True}, "range"),
])  # fmt: skip
def test_length_reward_rejects(kwargs, hint):
    rejects(hw04.check_length_reward, hw04._length_variant(**kwargs), hint)


def test_length_reward_explains_equal_lengths():
    def divides_by_zero(lengths, correct):
        lengths = torch.as_tensor(lengths, dtype=torch.float64)
        lam = 0.5 - (lengths - lengths.min()) / (lengths.max() - lengths.min())
        return torch.where(torch.as_tensor(correct, dtype=torch.bool), lam, lam.clamp(max=0))

    rejects(hw04.check_length_reward, divides_by_zero, "lambda is 0")
