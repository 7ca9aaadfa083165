"""Homework 03 graders: correct solutions written differently pass, plausible wrong ones fail with their hint."""

import random

import numpy as np
import pytest
import torch

from utils.grading import GradingError, hw03


def rejects(check, fn, hint: str) -> None:
    with pytest.raises(GradingError, match=hint):
        check(fn)


# --- reply_logprobs ---------------------------------------------------------------------------------------------


def logprobs_by_loop(model, input_ids, attention_mask, labels):
    """Another correct version: one sequence at a time, no padding, float64 softmax."""
    out = torch.zeros(input_ids.shape, dtype=torch.float64)
    for b in range(len(input_ids)):
        n = int(attention_mask[b].sum())
        with torch.no_grad():
            logits = model(input_ids=input_ids[b : b + 1, :n]).logits[0].double()
        logp = logits - logits.logsumexp(-1, keepdim=True)
        for t in range(1, n):
            if labels[b, t] != -100:
                out[b, t] = logp[t - 1, input_ids[b, t]]
    return out


def test_reply_logprobs_accepts_the_reference_and_a_loop():
    hw03.check_reply_logprobs(hw03.reply_logprobs)
    hw03.check_reply_logprobs(logprobs_by_loop)


@pytest.mark.parametrize(("variant", "hint"), [
    ({"shift": False}, "predict the token at t \\+ 1"),
    ({"read_labels": True}, "you stored it at t - 1"),
    ({"probabilities": True}, "not probabilities"),
    ({"mask": False}, "return 0 there"),
])  # fmt: skip
def test_reply_logprobs_rejects_plausible_mistakes(variant, hint):
    rejects(hw03.check_reply_logprobs, hw03._logprobs_variant(**variant), hint)


# --- drop_hardest -----------------------------------------------------------------------------------------------


def drop_with_numpy(labels, logprobs, share):
    """Another correct version: numpy, a Python loop over the sorted trained positions."""
    lab = labels.numpy().copy()
    positions = [(float(logprobs[i, j]), i, j) for i in range(lab.shape[0]) for j in range(lab.shape[1])
                 if lab[i, j] != -100]  # fmt: skip
    for _, i, j in sorted(positions)[: int(share * len(positions))]:
        lab[i, j] = -100
    return torch.tensor(lab)


def test_drop_hardest_accepts_the_reference_and_numpy():
    hw03.check_drop_hardest(hw03.drop_hardest)
    hw03.check_drop_hardest(drop_with_numpy)


@pytest.mark.parametrize(("variant", "hint"), [
    ({"easiest": True}, "LOWEST"),
    ({"per_row": True}, "not row by row"),
    ({"count_all": True}, "trained tokens only"),
    ({"unmasked": True}, "only trained positions"),
])  # fmt: skip
def test_drop_hardest_rejects_plausible_mistakes(variant, hint):
    rejects(hw03.check_drop_hardest, hw03._drop_variant(**variant), hint)


def test_drop_hardest_rejects_editing_the_labels_in_place():
    def in_place(labels, logprobs, share):
        out = hw03.drop_hardest(labels, logprobs, share)
        labels.copy_(out)
        return labels

    rejects(hw03.check_drop_hardest, in_place, "in place")


# --- mix_replay -------------------------------------------------------------------------------------------------


def mix(new, old, share, seed, *, of_new=False, replace=False, shuffle=True, global_rng=False, check=True,
        truncate=False, old_first=False, hashed=False):
    k = round(share * len(new)) if of_new else round(share * len(new) / (1 - share))
    k = int(share * len(new) / (1 - share)) if truncate else k
    if check and k > len(old):
        raise ValueError(f"{k} old examples needed, {len(old)} given")
    rng = random if global_rng else random.Random(seed)
    old_part = [rng.choice(old) for _ in range(k)] if replace else rng.sample(old, min(k, len(old)))
    if hashed:
        assert len(set(old_part)) == len(old_part)  # examples as set members: fails on lists
    out = old_part + list(new) if old_first else list(new) + old_part
    if shuffle:
        rng.shuffle(out)
    return out


def mix_by_indices(new, old, share, seed):
    """Another correct version: numpy's generator, indices instead of items."""
    k = int(np.round(share * len(new) / (1 - share)))
    if k > len(old):
        raise ValueError("not enough old examples")
    g = np.random.default_rng(seed)
    pool = list(new) + [old[i] for i in g.choice(len(old), size=k, replace=False)]
    return [pool[i] for i in g.permutation(len(pool))]


def test_mix_replay_accepts_two_correct_versions():
    hw03.check_mix_replay(mix)
    hw03.check_mix_replay(mix_by_indices)


@pytest.mark.parametrize(("options", "hint"), [
    ({"of_new": True}, "share is of the\\s+whole mix"),
    ({"replace": True}, "without replacement"),
    ({"shuffle": False}, "one block at the start or the end"),
    ({"global_rng": True}, "same seed gave two different mixes"),
    ({"check": False}, "raise ValueError"),
    ({"truncate": True}, "should hold"),
    ({"shuffle": False, "old_first": True}, "one block at the start"),
    ({"hashed": True}, "unhashable"),
])  # fmt: skip
def test_mix_replay_rejects_plausible_mistakes(options, hint):
    rejects(hw03.check_mix_replay, lambda *args: mix(*args, **options), hint)


# --- self_output_targets ----------------------------------------------------------------------------------------


def targets_by_loop(candidates, answers, gold, is_right):
    out = []
    for i, options in enumerate(candidates):
        chosen = gold[i]
        for reply in reversed(options):  # the last assignment wins: the first right one
            if is_right(reply, answers[i]):
                chosen = reply
        out.append(chosen)
    return out


def test_self_output_targets_accepts_the_reference_and_a_loop():
    hw03.check_self_output_targets(hw03.self_output_targets)
    hw03.check_self_output_targets(targets_by_loop)


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda c, a, g, ok: [cs[0] for cs in c], "kept the greedy reply"),
    (lambda c, a, g, ok: [cs[0] if ok(cs[0], x) else y for cs, x, y in zip(c, a, g, strict=True)],
     "gold answer is only the"),
    (lambda c, a, g, ok: [next((r for r in reversed(cs) if ok(r, x)), y) for cs, x, y in zip(c, a, g, strict=True)],
     "first one"),
    (lambda c, a, g, ok: [next((r for r in cs[1:] + cs[:1] if ok(r, x)), y) for cs, x, y in zip(c, a, g, strict=True)],
     "first one"),  # samples first, the greedy reply as a fallback
    (lambda c, a, g, ok: [max([r for r in cs if ok(r, x)] or [y], key=len) for cs, x, y in zip(c, a, g, strict=True)],
     "first one"),  # the longest right reply
    (lambda c, a, g, ok: [next((r for r in cs if r.strip().rstrip(".").endswith(x)), y)
                          for cs, x, y in zip(c, a, g, strict=True)], "is_right"),  # its own test, not is_right
    (lambda c, a, g, ok: [next((r for r in cs if x in r), y) for cs, x, y in zip(c, a, g, strict=True)],
     "is_right"),  # a substring test
])  # fmt: skip
def test_self_output_targets_rejects_plausible_mistakes(wrong, hint):
    rejects(hw03.check_self_output_targets, wrong, hint)
