"""Homework 04 graders: correct solutions written differently pass, plausible wrong ones (mistakes at the rules'
edges, caches keyed on sizes, inputs ignored, float overflow and underflow) fail with their targeted hint."""

import math
import re
import statistics
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch
from grading_helpers import memo, passes, rejects

from utils.grading import hw04
from utils.tinyworld.tasks import parse_answer

STALE = "Smallest failing input found|state between calls"  # a stale answer fails somewhere, or changes


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
    """The product form in torch's default float32, returned as a 0-d tensor."""
    if n - c < k:
        return torch.tensor(1.0)
    return 1 - torch.prod(1 - k / torch.arange(n - c + 1, n + 1, dtype=torch.float32))


def pass_at_k_lgamma(n, c, k):
    """Through log-gamma: no big integers at all."""
    if n - c < k:
        return 1.0
    log_ratio = math.lgamma(n - c + 1) - math.lgamma(n - c - k + 1) - math.lgamma(n + 1) + math.lgamma(n - k + 1)
    return 1 - math.exp(log_ratio)


@pytest.mark.parametrize("fn", [hw04.pass_at_k, pass_at_k_product, pass_at_k_fractions, pass_at_k_torch32,
                                pass_at_k_lgamma])  # fmt: skip
def test_pass_at_k_accepts_other_correct_forms(fn, capsys):
    passes(hw04.check_pass_at_k, fn, capsys)


def pass_at_k_float_factorials(n, c, k):
    """Right for small n; n! in floating point is inf beyond 170."""
    fact = lambda m: np.prod(np.arange(1, m + 1, dtype=np.float64))  # noqa: E731
    comb = lambda a, b: fact(a) / (fact(b) * fact(a - b)) if a >= b else 0.0  # noqa: E731
    with np.errstate(all="ignore"):
        return 1 - comb(n - c, k) / comb(n, k)


def pass_at_k_int64_products(n, c, k):
    """C(n - c, k) / C(n, k) as a ratio of int64 products: they wrap around for large n."""
    if n - c < k:
        return 1.0
    with np.errstate(all="ignore"):
        return 1 - float(np.prod(np.arange(n - c - k + 1, n - c + 1)) / np.prod(np.arange(n - k + 1, n + 1)))


def pass_at_k_lgamma_unguarded(n, c, k):
    log_ratio = math.lgamma(n - c + 1) - math.lgamma(n - c - k + 1) - math.lgamma(n + 1) + math.lgamma(n - k + 1)
    return 1 - math.exp(log_ratio)


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda n, c, k: 1 - (1 - c / n) ** k, "WITH replacement"),
    (lambda n, c, k: c / n, "pass@1"),
    (pass_at_k_float_factorials, "overflows"),
    (lambda n, c, k: 1 - math.comb(n - c, k) / math.comb(n, k - 1), "expected"),  # off by one
    (lambda n, c, k: 1.0 if n - c <= k else hw04.pass_at_k(n, c, k), "n - c = k"),  # the edge on the wrong side
    (pass_at_k_lgamma_unguarded, "raised ValueError.*n - c < k"),
    (lambda n, c, k: math.comb(n - c, k) / math.comb(n, k), "NO sample"),  # the complement
    (lambda n, c, k: float(1 - np.prod(1.0 - k / np.arange(n - c, n + 1))), "expected"),  # one factor too many
    (lambda n, c, k: float(c > 0), "expected"),  # "any right sample"
    (memo(hw04.pass_at_k, lambda n, c, k: n), STALE),  # a cache keyed on the number of samples
    (pass_at_k_int64_products, "expected|overflows"),
])  # fmt: skip
def test_pass_at_k_rejects(fn, hint):
    rejects(hw04.check_pass_at_k, fn, hint)


# --- majority vote ----------------------------------------------------------------------------------------------

ANSWER_RULE = re.compile(r"The answer is(?!.*The answer is)\s*(-?\d+)(?=$|\s|[.,;:!?](?!\d))", re.S)


def vote_with_regex(replies):
    """The parser's rule as one regex, ties broken by first appearance through sort stability."""
    answers = [int(m.group(1)) for m in map(ANSWER_RULE.search, replies) if m]
    counts = Counter(answers)
    return sorted(counts, key=lambda a: -counts[a])[0] if answers else None


def vote_most_common(replies):
    """Counter keeps first-insertion order, and most_common is stable: the first-reached tied answer wins."""
    votes = Counter(a for a in map(parse_answer, replies) if a is not None)
    return votes.most_common(1)[0][0] if votes else None


def vote_loop(replies):
    best, counts = None, {}
    for reply in replies:
        answer = parse_answer(reply)
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
    for answer, count in counts.items():
        if best is None or count > counts[best]:
            best = answer
    return np.int64(best) if best is not None else None  # a numpy integer is an int too


def vote_master(replies):
    answers = [parse_answer(r) for r in replies]
    votes = [a for a in answers if a is not None]
    if not votes:
        return None
    return max(votes, key=lambda a: (votes.count(a), -votes.index(a)))


@pytest.mark.parametrize("fn", [hw04.majority_vote, vote_with_regex, vote_most_common, vote_loop, vote_master])
def test_majority_vote_accepts_other_correct_versions(fn, capsys):
    passes(hw04.check_majority_vote, fn, capsys)


def votes(replies):
    return [a for a in map(parse_answer, replies) if a is not None]


def vote_smallest_on_tie(replies):
    counts = Counter(votes(replies))
    return min(a for a in counts if counts[a] == max(counts.values())) if counts else None


def vote_last_on_tie(replies):
    return vote_most_common(replies[::-1])


def vote_first_to_reach(replies):
    """The answer whose count reaches the final maximum first, scanning the replies in order."""
    final, running = Counter(votes(replies)), Counter()
    for answer in votes(replies):
        running[answer] += 1
        if running[answer] == max(final.values()):
            return answer
    return None


def vote_with_parser(parse):
    return lambda replies: hw04._vote_with(parse, False)(replies)


@pytest.mark.parametrize(("fn", "hint"), [
    (hw04._vote_with(parse_answer, True), "do not vote"),
    (vote_with_parser(hw04._first_number), "FINAL answer"),
    (vote_with_parser(hw04._first_answer), "LAST one"),
    (vote_smallest_on_tie, "tie"),
    (vote_last_on_tie, "tie"),
    (vote_first_to_reach, "tie"),  # tied in the order [a, b, b, a]
    (lambda replies: str(hw04.majority_vote(replies)), "as an int"),
    (vote_with_parser(lambda t: int(m[-1]) if (m := re.findall(r"The answer is (\d+)", t)) else None), "minus sign"),
    (vote_with_parser(lambda t: int(m[-1]) if (m := re.findall(r"The answer is\s*(-?\d+)", t)) else None), "52.5"),
    (vote_with_parser(hw04._split_parser), "punctuation"),
    (vote_with_parser(hw04._last_anywhere), "RIGHT AFTER"),
    (vote_with_parser(lambda t: parse_answer(t.replace("the answer is", "The answer is"))), "case included"),
    (memo(hw04.majority_vote, len), STALE),  # a cache keyed on the number of replies
    (lambda replies: None, "expected"),
])  # fmt: skip
def test_majority_vote_rejects(fn, hint):
    rejects(hw04.check_majority_vote, fn, hint)


# --- Math-Shepherd labels ------------------------------------------------------------------------------------


def shepherd_one_at_a_time(prompt, steps, answer, rollout, n):
    """One rollout call per sample, prefixes built incrementally, a numpy array of labels."""
    labels, prefix = [], f"{prompt}<think> "
    for k, step in enumerate(steps):
        prefix = prefix + (" ; " if k else "") + step
        hits = [parse_answer(rollout([prefix])[0]) == answer for _ in range(n)]
        labels.append(np.mean(hits))
    return np.array(labels)


def shepherd_rounds(prompt, steps, answer, rollout, n):
    """n rounds over all prefixes at once; the labels as a float32 tensor."""
    prefixes = [prompt + "<think> " + " ; ".join(steps[: k + 1]) for k in range(len(steps))]
    hits = torch.zeros(len(steps))
    for _ in range(n):
        hits += torch.tensor([parse_answer(r) == answer for r in rollout(prefixes)], dtype=torch.float32)
    return hits / n


def shepherd_master(prompt, steps, answer, rollout, n):
    prefixes = [f"{prompt}<think> {' ; '.join(steps[: k + 1])}" for k in range(len(steps))]
    continued = rollout([p for p in prefixes for _ in range(n)])
    return [float(np.mean([parse_answer(c) == answer for c in continued[k * n : (k + 1) * n]]))
            for k in range(len(steps))]  # fmt: skip


@pytest.mark.parametrize("fn", [hw04.shepherd_labels, shepherd_one_at_a_time, shepherd_rounds, shepherd_master])
def test_shepherd_labels_accepts_other_correct_versions(fn, capsys):
    passes(hw04.check_shepherd_labels, fn, capsys)


def shepherd_too_few(prompt, steps, answer, rollout, n):
    return hw04.shepherd_labels(prompt, steps, answer, rollout, max(1, n - 1))


def shepherd_extra(prompt, steps, answer, rollout, n):
    """Right labels, but each prefix is rolled out once more than asked."""
    labels = hw04.shepherd_labels(prompt, steps, answer, rollout, n)
    rollout([prompt + "<think> " + " ; ".join(steps[: k + 1]) for k in range(len(steps))])
    return labels


def shepherd_home_made(prompt, steps, answer, rollout, n):
    """Ignores the rollouts: a step is good if its arithmetic is right."""
    return [float(eval(s.removeprefix("wait, ").split("=")[0]) == int(s.split("=")[1])) for s in steps]  # noqa: S307


def shepherd_stripped_prompt(prompt, steps, answer, rollout, n):
    return hw04.shepherd_labels(prompt.strip() + " ", steps, answer, rollout, n)


def shepherd_substring(prompt, steps, answer, rollout, n):
    prefixes = [f"{prompt}<think> {' ; '.join(steps[: k + 1])}" for k in range(len(steps))]
    return [sum(str(answer) in r for r in rollout([p] * n)) / n for p in prefixes]


@pytest.mark.parametrize(("fn", "hint"), [
    (hw04._shepherd_variant(before=True), "ENDS with step k"),
    (hw04._shepherd_variant(trailing=True), "no separator after the last step"),
    (hw04._shepherd_variant(hard=True), "SHARE"),
    (hw04._shepherd_variant(first_number=True), "final answer"),
    (hw04._shepherd_variant(interleaved=True), "order of the prefixes"),
    (shepherd_too_few, "exactly n"),
    (shepherd_extra, "exactly n"),
    (shepherd_home_made, "never called `rollout`"),
    (shepherd_stripped_prompt, "rolled out the prefix"),
    (shepherd_substring, "tasks.parse_answer"),
    (memo(hw04.shepherd_labels, lambda prompt, steps, answer, rollout, n: (len(steps), n)), STALE),
    (lambda prompt, steps, answer, rollout, n: [0.5] * len(steps), "never called `rollout`"),
    (lambda prompt, steps, answer, rollout, n: [float(np.mean([parse_answer(r) == answer for r in rollout(
        [prompt + "<think> " + " ; ".join(steps)] * n)]))] * len(steps), "exactly n"),  # the last prefix only
])  # fmt: skip
def test_shepherd_labels_rejects(fn, hint):
    rejects(hw04.check_shepherd_labels, fn, hint)


# --- GRPO: group advantages --------------------------------------------------------------------------------------


def advantages_numpy(rewards):
    r = np.asarray(rewards, dtype=np.float32)
    return torch.tensor((r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-4))


def advantages_loops(rewards):
    rows = []
    for group in rewards.tolist():
        mean, std = statistics.fmean(group), statistics.stdev(group)
        rows.append([(r - mean) / (std + 1e-4) for r in group])
    return torch.tensor(rows, dtype=torch.float64)


def advantages_master(rewards):
    return (rewards - rewards.mean(-1, keepdim=True)) / (rewards.std(-1, keepdim=True) + 1e-4)


def advantages_by_hand_float32(rewards):
    r = rewards.float()
    centred = r - r.sum(1, keepdim=True) / r.shape[1]
    return centred / ((centred**2).sum(1, keepdim=True) / (r.shape[1] - 1)).sqrt().add(1e-4)


@pytest.mark.parametrize("fn", [hw04.group_advantages, advantages_numpy, advantages_loops, advantages_master,
                                advantages_by_hand_float32])  # fmt: skip
def test_group_advantages_accepts_other_correct_versions(fn, capsys):
    passes(hw04.check_group_advantages, fn, capsys)


def advantages_in_place(rewards):
    rewards -= rewards.mean(-1, keepdim=True)
    return rewards / (rewards.std(-1, keepdim=True) + 1e-4)


@pytest.mark.parametrize(("fn", "hint"), [
    (hw04._advantage_variant(global_mean=True), "GROUP's mean"),
    (hw04._advantage_variant(no_std=True), "standard deviation"),
    (hw04._advantage_variant(population=True), "unbiased"),
    (hw04._advantage_variant(over_groups=True), "each ROW"),
    (hw04._advantage_variant(eps_in_sqrt=True), "not to the variance"),
    (hw04._advantage_variant(no_eps=True), r"\(std \+ 1e-4\), as stated"),
    (lambda r: (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True), "std 0"),  # NaN for a group all equal
    (advantages_in_place, "in place"),
    (lambda r: advantages_master(r.half()), "float16 rounds"),
    (lambda r: torch.zeros_like(r), "values differ|standard deviation"),
    (memo(hw04.group_advantages, lambda r: tuple(r.shape)), STALE),
])  # fmt: skip
def test_group_advantages_rejects(fn, hint):
    rejects(hw04.check_group_advantages, fn, hint)


# --- GRPO: clipped loss --------------------------------------------------------------------------------------


def clipped_loss_by_loop(logp_new, logp_old, advantages, mask, clip=0.2):
    """One reply at a time, with torch.where instead of clamp (another gradient at the kinks)."""
    losses = []
    for i in range(len(logp_new)):
        keep = mask[i].bool()
        ratio = torch.exp(logp_new[i][keep] - logp_old[i][keep])
        a = advantages[i]
        clipped = torch.where(ratio > 1 + clip, 1 + clip, torch.where(ratio < 1 - clip, 1 - clip, ratio))
        losses.append(-torch.min(ratio * a, clipped * a).mean())
    return torch.stack(losses).mean()


def clipped_loss_by_cases(logp_new, logp_old, advantages, mask, clip=0.2):
    """PPO's case form in float64: min(ratio, 1 + clip) * A for A >= 0, max(ratio, 1 - clip) * A otherwise."""
    ratio = (logp_new.double() - logp_old.double()).exp()
    a = advantages.double()[:, None]
    objective = torch.where(a >= 0, torch.clamp(ratio, max=1 + clip) * a, torch.clamp(ratio, min=1 - clip) * a)
    m = mask.double()
    return -((objective * m).sum(1) / m.sum(1)).mean()


def clipped_loss_master(logp_new, logp_old, advantages, mask, clip=0.2):
    ratio = torch.exp(logp_new - logp_old)
    a = advantages[:, None]
    objective = torch.minimum(ratio * a, torch.clamp(ratio, 1 - clip, 1 + clip) * a)
    mask = mask.to(objective.dtype)
    return -((objective * mask).sum(1) / mask.sum(1)).mean()


def clipped_loss_float32(logp_new, logp_old, advantages, mask, clip=0.2):
    """Everything in float32, whatever the inputs' dtype; the mean over replies as a sum / count."""
    ratio = (logp_new.float() - logp_old.float()).exp()
    a = advantages.float()[:, None]
    objective = torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    m = mask.float()
    return -((objective * m).sum(1) / m.sum(1)).sum() / len(m)


@pytest.mark.parametrize("fn", [hw04.clipped_loss, clipped_loss_by_loop, clipped_loss_by_cases, clipped_loss_master,
                                clipped_loss_float32])  # fmt: skip
def test_clipped_loss_accepts_other_correct_versions(fn, capsys):
    passes(hw04.check_clipped_loss, fn, capsys)


@pytest.mark.parametrize(("kwargs", "hint"), [
    ({"sign": True}, "negative"),
    ({"no_exp": True}, "exp"),
    ({"exp_ratio": True}, "underflows"),
    ({"max_": True}, "minimum"),
    ({"no_min": True}, "unclipped term"),
    ({"min_of_ratios": True}, "PRODUCTS"),
    ({"upper_only": True}, "both sides"),
    ({"fixed_clip": True}, "`clip` argument"),
    ({"no_mask": True}, "padding positions"),
    ({"mask_from_logp": True}, "the `mask` you are given"),
    ({"token_mean": True}, "each reply's own tokens"),
])  # fmt: skip
def test_clipped_loss_rejects(kwargs, hint):
    rejects(hw04.check_clipped_loss, hw04._loss_variant(**kwargs), hint)


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda *args: hw04.clipped_loss(args[0].detach(), *args[1:]), "no gradient"),
    (lambda *args: torch.tensor(hw04.clipped_loss(*args).item(), requires_grad=True), "no gradient"),
    (lambda new, old, a, m, clip=0.2: hw04.clipped_loss(new, old, a, m, clip) + (new - new.detach()).sum() * 1e-3,
     "gradient w.r.t. logp_new"),
    (lambda new, old, a, m, clip=0.2: hw04.clipped_loss(new, old.detach().clone(), a, m, clip) * 0 + hw04.clipped_loss(
        new.detach(), old, a, m, clip) + 0 * new.sum(), "gradient w.r.t. logp_new"),  # the value without its gradient
    (memo(hw04.clipped_loss, lambda *args: tuple(args[0].shape)), STALE + "|backpropagating"),
    (lambda *args: torch.tensor(0.0, requires_grad=True), "values differ"),
])  # fmt: skip
def test_clipped_loss_rejects_other_mistakes(fn, hint):
    rejects(hw04.check_clipped_loss, fn, hint)


# --- length reward -------------------------------------------------------------------------------------------


def length_reward_lists(lengths, correct):
    lengths, correct = list(map(float, lengths)), [bool(c) for c in correct]
    lo, hi = min(lengths), max(lengths)
    out = []
    for n, ok in zip(lengths, correct, strict=True):
        lam = 0.0 if hi == lo else 0.5 - (n - lo) / (hi - lo)
        out.append(lam if ok else min(0.0, lam))
    return torch.tensor(out, dtype=torch.float32)


def length_reward_numpy(lengths, correct):
    lengths, correct = np.asarray(lengths, dtype=np.float64), np.asarray(correct).astype(bool)
    spread = np.ptp(lengths)
    lam = 0.5 - (lengths - lengths.min()) / spread if spread else np.zeros_like(lengths)
    return torch.from_numpy(np.where(correct, lam, np.minimum(lam, 0)))


def length_reward_master(lengths, correct):
    lengths = torch.as_tensor(lengths, dtype=torch.float64)
    correct = torch.as_tensor(correct).bool()
    low, high = lengths.min(), lengths.max()
    if high == low:
        return torch.zeros_like(lengths)
    lam = 0.5 - (lengths - low) / (high - low)
    return torch.where(correct, lam, torch.clamp(lam, max=0.0))


@pytest.mark.parametrize("fn", [hw04.length_reward, length_reward_lists, length_reward_numpy, length_reward_master])
def test_length_reward_accepts_other_correct_versions(fn, capsys):
    passes(hw04.check_length_reward, fn, capsys)


def length_reward_divides_by_zero(lengths, correct):
    lengths = torch.as_tensor(lengths, dtype=torch.float64)
    lam = 0.5 - (lengths - lengths.min()) / (lengths.max() - lengths.min())
    return torch.where(torch.as_tensor(correct).bool(), lam, lam.clamp(max=0))


def length_reward_correct_as_index(lengths, correct):
    """Indexes by `correct` as it comes: 0/1 ints pick positions 0 and 1 instead of the right replies."""
    lengths = torch.as_tensor(lengths, dtype=torch.float64)
    lam = length_reward_master(lengths, [True] * len(lengths))
    out = lam.clamp(max=0)
    chosen = torch.as_tensor(correct)
    out[chosen] = lam[chosen]
    return out


@pytest.mark.parametrize(("fn", "hint"), [
    (hw04._length_variant(wrong_too=True), "never rewarded"),
    (hw04._length_variant(correct_only=True), "ALL the group's replies"),
    (hw04._length_variant(by_max=True), "range"),
    (hw04._length_variant(wrong_zero=True), "not left at 0"),
    (hw04._length_variant(longer_better=True), "SHORTEST reply"),
    (hw04._length_variant(equal_half=True), "every reward is 0"),
    (length_reward_divides_by_zero, "lambda is 0"),
    (length_reward_correct_as_index, "raised IndexError|values differ"),
    (lambda lengths, correct: length_reward_master(lengths, correct).round(decimals=2), "values differ"),
    (memo(hw04.length_reward, lambda lengths, correct: len(lengths)), STALE),
    (lambda lengths, correct: torch.zeros(len(lengths)), "values differ|every reward is 0"),
])  # fmt: skip
def test_length_reward_rejects(fn, hint):
    rejects(hw04.check_length_reward, fn, hint)
