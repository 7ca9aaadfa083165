"""Homework 03 graders: correct solutions written differently pass, plausible wrong ones fail with their hint."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from grading_helpers import memo, passes, rejects

from utils.grading import hw03

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


@torch.no_grad()
def logprobs_by_cross_entropy(model, input_ids, attention_mask, labels):
    """Another correct version: minus the per-token cross-entropy against the shifted labels (0 where ignored)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none")
    return F.pad(-loss, (1, 0))


@torch.no_grad()
def logprobs_from_hidden_states(model, input_ids, attention_mask, labels):
    """Another correct version: the last hidden state through the unembedding (transformers adds hooks of its own)."""
    hidden = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
    logp = model.get_output_embeddings()(hidden).double().log_softmax(-1)
    out = torch.zeros(input_ids.shape, dtype=torch.float64)
    out[:, 1:] = logp[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
    return out * (labels != -100)


@torch.no_grad()
def logprobs_gathered_at_labels(model, input_ids, attention_mask, labels):
    """Another correct version: gathers the labels (clamped at 0), equal to input_ids wherever they count."""
    logp = model(input_ids=input_ids, attention_mask=attention_mask).logits.float().log_softmax(-1)
    out = torch.zeros(input_ids.shape)
    out[:, 1:] = logp[:, :-1].gather(-1, labels[:, 1:].clamp_min(0)[..., None])[..., 0]
    return torch.where(labels != -100, out, 0.0)


@torch.no_grad()
def logprobs_with_positions_in_float64(model, input_ids, attention_mask, labels):
    """Another correct version: position ids from the mask (what the model uses on right padding anyway), float64."""
    positions = (attention_mask.cumsum(-1) - 1).clamp_min(0)
    logp = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).logits.double().log_softmax(-1)
    out = torch.zeros(input_ids.shape, dtype=torch.float64)
    out[:, 1:] = logp[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
    return out.masked_fill(labels == -100, 0.0)


@torch.no_grad()
def logprobs_position_by_position(model, input_ids, attention_mask, labels):
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    out = torch.zeros(input_ids.shape)
    for b in range(input_ids.shape[0]):
        for t in range(1, input_ids.shape[1]):
            if labels[b, t] != -100:
                out[b, t] = logits[b, t - 1, input_ids[b, t]] - torch.logsumexp(logits[b, t - 1], 0)
    return out


@torch.no_grad()
def logprobs_by_flat_cross_entropy(model, input_ids, attention_mask, labels):
    """Another correct version: a boolean mask, one flat cross-entropy on input_ids, torch.cat for the shift."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask.bool()).logits
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), input_ids[:, 1:].reshape(-1),
                          reduction="none")  # fmt: skip
    return torch.cat([torch.zeros(len(input_ids), 1), -nll.view(len(input_ids), -1)], 1) * (labels != -100)


@pytest.mark.parametrize("right", [hw03.reply_logprobs, logprobs_by_loop, logprobs_by_cross_entropy,
                                   logprobs_from_hidden_states, logprobs_gathered_at_labels,
                                   logprobs_with_positions_in_float64, logprobs_position_by_position,
                                   logprobs_by_flat_cross_entropy])  # fmt: skip
def test_reply_logprobs_accepts_correct_versions(right, capsys):
    passes(hw03.check_reply_logprobs, right, capsys)


def test_a_cache_that_ignores_the_model_fails():
    """The same batch under another model: a cache keyed on ids, mask and labels returns the first model's."""
    batch = lambda model, ids, mask, labels: (tuple(ids.flatten().tolist()), tuple(ids.shape),  # noqa: E731
                                              tuple(mask.flatten().tolist()), tuple(labels.flatten().tolist()))  # fmt: skip
    rejects(hw03.check_reply_logprobs, memo(hw03.reply_logprobs, key=batch), "values differ")


@torch.no_grad()
def logprobs_rolled(model, input_ids, attention_mask, labels):
    """Shifts with torch.roll: position 0 reads the last position's logits."""
    logp = model(input_ids=input_ids, attention_mask=attention_mask).logits.log_softmax(-1).roll(1, dims=1)
    return torch.where(labels != -100, logp.gather(-1, input_ids[..., None])[..., 0], 0.0)


def zero_where_padded(model, input_ids, attention_mask, labels):
    """Zeroes where attention_mask is 0, not where the label is -100 (the prompt keeps its values)."""
    return hw03.reply_logprobs(model, input_ids, attention_mask, torch.where(attention_mask.bool(), input_ids, -100))


def in_training_mode(model, *args):
    model.train()
    return hw03.reply_logprobs(model, *args)


def with_a_patched_forward(model, *args):
    out = hw03.reply_logprobs(model, *args)
    model.forward = lambda *a, **k: None
    return out


@pytest.mark.parametrize(("wrong", "hint"), [
    (hw03._logprobs_variant(shift=False), "predict the token at t + 1"),
    (hw03._logprobs_variant(stored_at=-1), "you stored it at t - 1"),
    (hw03._logprobs_variant(probabilities=True), "not probabilities"),
    (hw03._logprobs_variant(zero_untrained=False), "return 0 there"),
    (hw03._logprobs_variant(attend="pad id"), "input_ids != pad_token_id is not the mask"),
    (hw03._logprobs_variant(attend="labels"), "the untrained prompt included"),
    (hw03._logprobs_variant(naive=True), "use log_softmax"),
    (memo(hw03.reply_logprobs), "values differ"),
    (logprobs_rolled, "position 0 has no prediction"),
    (zero_where_padded, "not only where attention_mask is 0"),
    (in_training_mode, "eval and training mode"),
    (with_a_patched_forward, "replaced `forward` on `GPT2LMHeadModel`"),
    (lambda model, ids, mask, labels: torch.zeros(ids.shape), "values differ"),
])  # fmt: skip
def test_reply_logprobs_rejects_plausible_mistakes(wrong, hint):
    rejects(hw03.check_reply_logprobs, wrong, hint)


# --- drop_hardest -----------------------------------------------------------------------------------------------


def drop_with_numpy(labels, logprobs, share):
    """Another correct version: numpy, a Python loop over the sorted trained positions."""
    lab = labels.numpy().copy()
    positions = [(float(logprobs[i, j]), i, j) for i in range(lab.shape[0]) for j in range(lab.shape[1])
                 if lab[i, j] != -100]  # fmt: skip
    for _, i, j in sorted(positions)[: int(share * len(positions))]:
        lab[i, j] = -100
    return torch.tensor(lab)


def drop_with_topk(labels, logprobs, share):
    """Another correct version: topk of minus the scores; k from a float32 product (torch's default dtype)."""
    trained = labels != -100
    k = int(share * trained.sum())  # an int64 tensor times a float: float32
    picked = torch.where(trained, -logprobs.double(), -torch.inf).flatten().topk(k).indices
    return labels.flatten().index_fill(0, picked, -100).view_as(labels)


def drop_by_stable_sort(labels, logprobs, share):
    """Another correct version: math.floor, a stable sort from the end (the other way of breaking ties)."""
    trained = labels != -100
    k = math.floor(share * int(trained.sum()))
    scores = torch.where(trained, logprobs.double(), torch.inf).flatten()
    order = scores.sort(descending=True, stable=True).indices.flip(0)  # the other tie-break
    out = labels.flatten().clone()
    out[order[:k]] = -100
    return out.view_as(labels)


def drop_by_sorting_nan_last(labels, logprobs, share):
    """Another correct version: NaN at untrained positions (torch sorts NaN last)."""
    trained = labels != -100
    k = int(share * int(trained.sum()))
    picked = torch.sort(torch.where(trained, logprobs.double(), float("nan")).flatten()).indices[:k]
    return labels.flatten().index_fill(0, picked, -100).view_as(labels)


def drop_scoring_untrained_plus_one(labels, logprobs, share):
    """Another correct version: untrained positions scored +1 (every trained log p is <= 0), numpy stable argsort."""
    lab = labels.numpy().copy()
    trained = lab != -100
    k = int(share * int(trained.sum()))
    flat = lab.ravel()
    flat[np.argsort(np.where(trained, logprobs.double().numpy(), 1.0).ravel(), kind="stable")[:k]] = -100
    return torch.from_numpy(flat.reshape(lab.shape))


def drop_from_sorted_tuples(labels, logprobs, share):
    positions = [(float(logprobs[i, j]), i, j) for i, j in (labels != -100).nonzero().tolist()]
    out = labels.clone()
    for _, i, j in sorted(positions)[: math.floor(share * len(positions))]:
        out[i, j] = -100
    return out


def drop_below_kth_then_ties(labels, logprobs, share):
    """Another correct version: everything below the k-th value, then as many tokens tied with it as k needs."""
    trained = labels != -100
    k = int(share * int(trained.sum()))
    out = labels.clone()
    if k == 0:
        return out
    lp = logprobs.double()
    cut = lp[trained].kthvalue(k).values
    below = trained & (lp < cut)
    out[below] = -100
    tied = (trained & (lp == cut)).nonzero()[: k - int(below.sum())]
    out[tied[:, 0], tied[:, 1]] = -100
    return out


@pytest.mark.parametrize("right", [hw03.drop_hardest, drop_with_numpy, drop_with_topk, drop_by_stable_sort,
                                   drop_by_sorting_nan_last, drop_scoring_untrained_plus_one, drop_from_sorted_tuples,
                                   drop_below_kth_then_ties])  # fmt: skip
def test_drop_hardest_accepts_correct_versions(right, capsys):
    passes(hw03.check_drop_hardest, right, capsys)


def drop_variant(rank=lambda lp: lp.double(), k_of=lambda share, n: int(share * n), fill=torch.inf, value=-100):
    def variant(labels, logprobs, share):
        trained = labels != -100
        k = k_of(share, int(trained.sum()))
        order = torch.where(trained, rank(logprobs), fill).flatten().sort(stable=True).indices[:k]
        out = labels.clone().flatten()
        out[order] = value
        return out.view_as(labels)

    return variant


def drop_per_row(labels, logprobs, share):
    return torch.stack([hw03.drop_hardest(labels[i : i + 1], logprobs[i : i + 1], share)[0] for i in range(len(labels))])


def drop_below_the_cut(strict: bool):
    """Drops by a threshold at the k-th lowest score: every tied token (<=) or none of them (<)."""

    def variant(labels, logprobs, share):
        trained = labels != -100
        k = int(share * int(trained.sum()))
        if k == 0:
            return labels.clone()
        cut = logprobs[trained].sort().values[k - 1]
        drop = trained & ((logprobs < cut) if strict else (logprobs <= cut))
        return torch.where(drop, -100, labels)

    return variant


def drop_ranking_every_position(labels, logprobs, share):
    k = int(share * int((labels != -100).sum()))
    out = labels.clone().flatten()
    out[logprobs.double().flatten().argsort(stable=True)[:k]] = -100
    return out.view_as(labels)


def drop_filling_the_largest(labels, logprobs, share):
    """Untrained positions scored with the largest trained log p (not +inf): at share 1 they tie with it."""
    trained = labels != -100
    k = int(share * int(trained.sum()))
    top = float(logprobs[trained].max()) if trained.any() else 0.0
    order = torch.where(trained, logprobs.double(), top).flatten().argsort(descending=True).flip(0)[:k]
    out = labels.clone().flatten()
    out[order] = -100
    return out.view_as(labels)


def drop_in_place(labels, logprobs, share):
    labels.copy_(hw03.drop_hardest(labels, logprobs, share))
    return labels


@pytest.mark.parametrize(("wrong", "hint"), [
    (drop_variant(rank=lambda lp: -lp.double()), "LOWEST"),
    (drop_per_row, "not row by row"),
    (lambda lab, lp, s: drop_variant(k_of=lambda s_, n: int(s_ * lab.numel()))(lab, lp, s), "trained tokens only"),
    (drop_ranking_every_position, "untrained positions took places"),
    (drop_variant(fill=0.0), "untrained positions took places"),  # 0 at untrained positions ties with log p = 0
    (drop_variant(k_of=lambda share, n: round(share * n)), "not to the nearest"),
    (drop_variant(k_of=lambda share, n: math.ceil(share * n)), "not up"),
    (drop_variant(rank=lambda lp: lp.float()), "makes distinct values equal"),
    (drop_variant(value=0), "set a dropped label to -100"),
    (drop_below_the_cut(strict=True), "drop exactly k"),
    (drop_below_the_cut(strict=False), "drop exactly k"),
    (lambda lab, lp, s: lab.clone(), "no label was dropped"),
    (lambda lab, lp, s: torch.where(lab == -100, 0, hw03.drop_hardest(lab, lp, s)), "must stay -100"),
    (drop_in_place, "in place"),
    (memo(hw03.drop_hardest), "Smallest failing input"),
    (drop_variant(rank=lambda lp: lp.double().exp()), "not probabilities"),  # exp() is 0 at -900 and -1200
    (lambda lab, lp, s: hw03.drop_hardest(lab, lp, s).int(), "int64"),
    (drop_filling_the_largest, "untrained positions took places"),
    (lambda lab, lp, s: lab.clone() if int((lab != -100).sum()) < 3 else hw03.drop_hardest(lab, lp, s),
     "no label was dropped"),  # "too few to filter"
])  # fmt: skip
def test_drop_hardest_rejects_plausible_mistakes(wrong, hint):
    rejects(hw03.check_drop_hardest, wrong, hint)


# --- mix_replay -------------------------------------------------------------------------------------------------


def mix(new, old, share, seed, *, of_new=False, replace=False, shuffle=True, global_rng=False, check=True,
        truncate=False, old_first=False, hashed=False, at_least=False, first_old=False):  # fmt: skip
    k = round(share * len(new)) if of_new else round(share * len(new) / (1 - share))
    k = int(share * len(new) / (1 - share)) if truncate else k
    if check and (k >= len(old) if at_least else k > len(old)):
        raise ValueError(f"{k} old examples needed, {len(old)} given")
    rng = random if global_rng else random.Random(seed)
    old_part = [rng.choice(old) for _ in range(k)] if replace else rng.sample(old, min(k, len(old)))
    old_part = old[:k] if first_old else old_part
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


class TooFewOldExamples(ValueError):
    pass


def mix_by_sorting(new, old, share, seed):
    """Another correct version: halves rounded up, a ValueError subclass, a shuffle by random sort keys."""
    k = math.floor(share * len(new) / (1 - share) + 0.5)
    if len(old) < k:
        raise TooFewOldExamples(f"need {k}")
    rng = random.Random(seed)
    return sorted(list(new) + rng.sample(old, k), key=lambda _: rng.random())


def mix_by_insertion(new, old, share, seed):
    """Another correct version: the new examples shuffled, then each old one inserted at a uniform place."""
    k = round(share * len(new) / (1 - share))
    if k > len(old):
        raise ValueError("too few old examples")
    rng = random.Random(seed)
    out = rng.sample(new, len(new))
    for x in rng.sample(old, k):
        out.insert(rng.randrange(len(out) + 1), x)
    return out


def mix_by_sample_alone(new, old, share, seed):
    """Another correct version: rng.sample raises ValueError itself when k > len(old); rng.sample shuffles."""
    rng = random.Random(seed)
    pool = list(new) + rng.sample(list(old), round(share * len(new) / (1 - share)))
    return rng.sample(pool, len(pool))


def mix_by_forward_fisher_yates(new, old, share, seed):
    k = int(np.round(share * len(new) / (1 - share)))  # a half may round either way
    if len(old) < k:
        raise ValueError("too few old examples")
    rng = random.Random(seed)
    out = list(new) + [old[i] for i in rng.sample(range(len(old)), k)]
    for i in range(len(out) - 1):
        j = rng.randint(i, len(out) - 1)
        out[i], out[j] = out[j], out[i]
    return out


def mix_by_positions(new, old, share, seed):
    """Another correct version: random places for the old examples; new and old shuffled apart."""
    k = round(share * len(new) / (1 - share))
    if k > len(old):
        raise ValueError("too few old examples")
    rng = random.Random(seed)
    fresh, replayed = iter(rng.sample(list(new), len(new))), iter(rng.sample(list(old), k))
    places = set(rng.sample(range(len(new) + k), k))
    return [next(replayed) if i in places else next(fresh) for i in range(len(new) + k)]


@pytest.mark.parametrize("right", [mix, mix_by_indices, mix_by_sorting, mix_by_insertion, mix_by_sample_alone,
                                   mix_by_forward_fisher_yates, mix_by_positions])  # fmt: skip
def test_mix_replay_accepts_correct_versions(right, capsys):
    passes(hw03.check_mix_replay, right, capsys)


def mix_keeping_new_order(new, old, share, seed):
    """Inserts the old examples at random places; the new ones keep their order."""
    rng = random.Random(seed)
    out = list(new)
    for x in mix(new, old, share, seed, shuffle=False)[len(new) :]:
        out.insert(rng.randrange(len(out) + 1), x)
    return out


def mix_sattolo(new, old, share, seed):
    """A hand-written shuffle with j drawn from range(i): every item moves."""
    out = mix(new, old, share, seed, shuffle=False)
    rng = random.Random(seed)
    for i in range(len(out) - 1, 0, -1):
        j = rng.randrange(i)
        out[i], out[j] = out[j], out[i]
    return out


def mix_in_blocks(new, old, share, seed):
    """Shuffles the new and the old examples apart, then puts them one after the other."""
    rng = random.Random(seed)
    out = mix(new, old, share, seed, shuffle=False)
    head, tail = out[: len(new)], out[len(new) :]
    rng.shuffle(head)
    rng.shuffle(tail)
    return head + tail


def mix_rotated(new, old, share, seed):
    out = mix(new, old, share, seed, shuffle=False)
    r = random.Random(seed).randrange(len(out) or 1)
    return out[r:] + out[:r]


def mix_by_naive_swaps(new, old, share, seed):
    """A hand-written shuffle that swaps each place with one drawn from the whole range: 4:5:5:5:4:4 over 3 items."""
    out = mix(new, old, share, seed, shuffle=False)
    rng = random.Random(seed)
    for i in range(len(out)):
        j = rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    return out


def mix_inserting_never_last(new, old, share, seed):
    """Each old example inserted at rng.randrange(len(out)): never after the last one."""
    rng = random.Random(seed)
    out = rng.sample(list(new), len(new))
    for x in mix(new, old, share, seed, shuffle=False)[len(new) :]:
        out.insert(rng.randrange(len(out)) if out else 0, x)
    return out


def mix_ordered_by_hash(new, old, share, seed):
    """Sorted by hash(repr(x) + seed): random-looking, and the same in one process, but Python draws str hashes
    anew in every session (PYTHONHASHSEED)."""
    return sorted(mix(new, old, share, seed, shuffle=False), key=lambda x: hash(repr(x) + str(seed)))


def mix_with_a_share_in_percent(new, old, share, seed):
    """The share rounded to 2 decimals first: 0.875 becomes 0.88, and k 15, not 14."""
    return mix(new, old, round(share, 2), seed)


def mix_global_seed(new, old, share, seed):
    random.seed(seed)
    out = mix(new, old, share, seed, shuffle=False)
    random.shuffle(out)
    return out


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda *a: mix(*a, of_new=True), "the share is of the whole mix"),
    (lambda *a: mix(*a, replace=True), "without replacement"),
    (lambda *a: mix(*a, shuffle=False), "one block at the start or the end"),
    (lambda *a: mix(*a, global_rng=True), "same seed gave two different mixes"),
    (lambda *a: mix(*a, check=False), "raise ValueError instead of replaying fewer"),
    (lambda *a: mix(*a, truncate=True), "the mix needs"),
    (lambda *a: mix(*a, shuffle=False, old_first=True), "one block at the start"),
    (lambda *a: mix(*a, hashed=True), "unhashable"),
    (lambda *a: mix(*a, at_least=True), "exactly k old examples are enough"),
    (lambda *a: mix(*a, first_old=True), "not old[:k]"),
    (lambda new, old, share, seed: list(new) if share == 0 else mix(new, old, share, seed), "keep their order"),
    (memo(mix), "neither new nor old"),
    (mix_keeping_new_order, "keep their order"),
    (mix_sattolo, "Sattolo"),
    (mix_in_blocks, "one block"),
    (mix_rotated, "stay next to their neighbours"),
    (mix_global_seed, "changed the global random state"),
    (mix_by_naive_swaps, "swaps each place with one drawn from the whole range"),
    (mix_inserting_never_last, "is never last"),
    (mix_ordered_by_hash, "PYTHONHASHSEED"),
    (mix_with_a_share_in_percent, "the mix needs k = round(0.875 * 2 / (1 - 0.875)) = 14"),
])  # fmt: skip
def test_mix_replay_rejects_plausible_mistakes(wrong, hint):
    rejects(hw03.check_mix_replay, wrong, hint)


def test_a_uniform_shuffle_passes_the_statistical_tests():
    """Fresh mixes of a correct mixer, on many inputs, never fail a shuffle test (each has a false rejection rate
    below 1e-7)."""
    rng = random.Random(0)
    for trial in range(300):
        n, k = rng.randint(1, 30), rng.randint(0, 30)
        new, old = [f"n{i}" for i in range(n)], [f"o{i}" for i in range(k + rng.randint(0, 3))]
        share = k / (n + k) if n + k else 0.0
        mixes = [[repr(x) for x in mix(new, old, share, 1000 * trial + s)] for s in range(hw03.SEEDS)]
        assert hw03._shuffle_problem(mixes, [repr(x) for x in new], [repr(x) for x in old]) is None


def test_the_order_test_passes_a_uniform_shuffle(monkeypatch):
    """The chi-square test over the 6 orders of a 3-example mix (false rejection rate 1e-7) passes rng.shuffle and a
    hand-written Fisher-Yates, seeded and on fresh seeds; and a mix that does not depend on hash() passes that test."""
    for right in (mix, mix_by_forward_fisher_yates):
        assert hw03._order_problem(right) is None
        assert hw03._hash_problem(right) is None
    monkeypatch.setenv("WORKBOOK_FRESH_DRAWS", "1")
    assert all(hw03._order_problem(mix) is None for _ in range(3))


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


def targets_by_filter(candidates, answers, gold, is_right):
    return [next(filter(lambda c, a=a: bool(is_right(c, a)) == True, cs), g)  # noqa: E712 - bool() first: right
            for cs, a, g in zip(candidates, answers, gold, strict=True)]  # fmt: skip


def targets_by_index(candidates, answers, gold, is_right):
    out = list(gold)
    for i in range(len(answers)):
        verdicts = np.array([bool(is_right(c, answers[i])) for c in candidates[i]], dtype=bool)
        if verdicts.any():
            out[i] = candidates[i][int(verdicts.argmax())]
    return out


def targets_by_compress(candidates, answers, gold, is_right):
    import itertools

    return [next(itertools.compress(cs, (bool(is_right(c, a)) for c in cs)), g)
            for cs, a, g in zip(candidates, answers, gold, strict=True)]  # fmt: skip


def targets_as_a_tuple(candidates, answers, gold, is_right):
    """Another correct version: `not not is_right(...)`, a tuple of targets."""
    return tuple(next(filter(lambda c, a=a: not not is_right(c, a), cs), g)
                 for cs, a, g in zip(candidates, answers, gold, strict=True))  # fmt: skip


def targets_from_truths(candidates, answers, gold, is_right):
    import operator

    out = []
    for cs, a, g in zip(candidates, answers, gold, strict=True):
        verdicts = [operator.truth(is_right(c, a)) for c in cs]
        out.append(cs[verdicts.index(True)] if True in verdicts else g)
    return out


@pytest.mark.parametrize("right", [hw03.self_output_targets, targets_by_loop, targets_by_filter, targets_by_index,
                                   targets_by_compress, targets_as_a_tuple, targets_from_truths])  # fmt: skip
def test_self_output_targets_accepts_correct_versions(right, capsys):
    passes(hw03.check_self_output_targets, right, capsys)


Z = zip  # the wrong versions below, one line each


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda c, a, g, ok: [cs[0] if cs else y for cs, y in Z(c, g, strict=True)], "kept the greedy reply"),
    (lambda c, a, g, ok: [cs[0] if cs and ok(cs[0], x) else y for cs, x, y in Z(c, a, g, strict=True)],
     "the gold answer is only the fallback"),
    (lambda c, a, g, ok: [next((r for r in reversed(cs) if ok(r, x)), y) for cs, x, y in Z(c, a, g, strict=True)],
     "first one"),
    (lambda c, a, g, ok: [next((r for r in cs[1:] + cs[:1] if ok(r, x)), y) for cs, x, y in Z(c, a, g, strict=True)],
     "first one"),  # samples first, the greedy reply as a fallback
    (lambda c, a, g, ok: [max([r for r in cs if ok(r, x)] or [y], key=len) for cs, x, y in Z(c, a, g, strict=True)],
     "first one"),  # the longest right reply
    (lambda c, a, g, ok: [next((r for r in cs if r.strip().rstrip(".").endswith(x)), y)
                          for cs, x, y in Z(c, a, g, strict=True)], "not with a test of your own"),  # its own test
    (lambda c, a, g, ok: [next((r for r in cs if x in r), y) for cs, x, y in Z(c, a, g, strict=True)],
     "not with a test of your own"),  # a substring test
    (lambda c, a, g, ok: [next((r for r in cs if ok(x, r)), y) for cs, x, y in Z(c, a, g, strict=True)],
     "the reply first, then the answer"),
    (lambda c, a, g, ok: [next((r for r in cs if ok(r, x) is True), y) for cs, x, y in Z(c, a, g, strict=True)],
     "any truthy value"),
    (lambda c, a, g, ok: [next((r for r in cs if ok(r, x) == True), y) for cs, x, y in Z(c, a, g, strict=True)],  # noqa: E712
     "any truthy value"),
    (lambda c, a, g, ok: [next((r.strip() for r in cs if ok(r, x)), y) for cs, x, y in Z(c, a, g, strict=True)],
     "exactly as it is"),
    (lambda c, a, g, ok: [next((x for r in cs if ok(r, x)), y) for cs, x, y in Z(c, a, g, strict=True)],
     "not the bare answer"),
    (lambda c, a, g, ok: [cs[0] if ok(cs[0], x) else y for cs, x, y in Z(c, a, g, strict=True)], "raised IndexError"),
    (memo(hw03.self_output_targets), "not with a test of your own"),
    (lambda c, a, g, ok: list(g), "not with a test of your own"),
    # a cache keyed on the inputs and the judge's repr: two judges that print alike share one answer
    (memo(hw03.self_output_targets, key=lambda c, a, g, ok: repr((c, a, g, type(ok).__name__, repr(ok)))),
     "not with a test of your own"),
    # the stripped reply judged: not named as keeping the greedy reply
    (lambda c, a, g, ok: [next((r for r in cs if ok(r.strip(), x)), y) for cs, x, y in Z(c, a, g, strict=True)],
     "judge each candidate exactly as it is"),
])  # fmt: skip
def test_self_output_targets_rejects_plausible_mistakes(wrong, hint):
    rejects(hw03.check_self_output_targets, wrong, hint)
