"""Graders for homework 04 (reasoning): the unbiased pass@k estimator, majority vote with answer extraction,
Math-Shepherd step labels from rollouts, GRPO's group advantages and clipped loss, and Kimi's length reward.
The study reuses homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check builds its inputs itself (counts, replies, rollouts and tensors the student has never seen) and runs
the student's function through `core.call`: expected values first, deep copies handed over.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import Counter
from collections.abc import Callable

import torch

from utils.grading.core import GradingError, call, check_function, describe, graded, matches, same_as
from utils.grading.hw02 import check_study
from utils.tinyworld.reasoning import SEP, THINK_CLOSE, THINK_OPEN

__all__ = ["check_clipped_loss", "check_group_advantages", "check_length_reward", "check_majority_vote",
           "check_pass_at_k", "check_shepherd_labels", "check_study"]  # fmt: skip


def _number(out, name: str) -> float:
    try:
        return float(out)
    except (TypeError, ValueError):
        raise GradingError(f"{name} should return a number, got {describe(out)}.") from None


# --- Exercise 1: pass@k ---------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): the chance that k of the n samples, drawn without replacement, hold a right one."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@graded("pass_at_k")
def check_pass_at_k(fn: Callable) -> None:
    # small and large n (C(2000, 1000) overflows a float), c = 0, c = n, n - c < k, k = 1, k = n; float32 code passes
    cases = [(10, 3, 1), (10, 3, 4), (16, 0, 8), (16, 16, 1), (20, 15, 10), (200, 7, 100), (200, 1, 50), (5, 2, 5),
             (64, 20, 16), (12, 1, 12), (2000, 37, 1000), (10_000, 2, 100)]  # fmt: skip
    for n, c, k in cases:
        out = _number(call(fn, (n, c, k), "pass_at_k"), "pass_at_k")
        want = pass_at_k(n, c, k)
        if math.isclose(out, want, rel_tol=1e-5, abs_tol=1e-6):
            continue
        plug_in = 1 - (1 - c / n) ** k
        if math.isclose(out, plug_in, rel_tol=1e-5, abs_tol=1e-6):
            raise GradingError(f"pass_at_k({n}, {c}, {k}) = {out:.4f} is 1 - (1 - c/n)^k, which draws WITH "
                               "replacement and is biased for small n; count the k-subsets of the n samples that "
                               "hold no right one: 1 - C(n-c, k) / C(n, k).")  # fmt: skip
        if math.isclose(out, c / n, rel_tol=1e-5):
            raise GradingError(f"pass_at_k({n}, {c}, {k}) = {out:.4f} is c/n, the pass@1 estimate; k matters.")
        if not math.isfinite(out):
            raise GradingError(f"pass_at_k({n}, {c}, {k}) is {out}: C({n}, {k}) overflows a float; use math.comb "
                               "on integers, or the product form prod(1 - k / i for i in range(n - c + 1, n + 1)).")
        raise GradingError(f"pass_at_k({n}, {c}, {k}) returned {out:.6g}, expected {want:.6g}.")
    print(f"✓ pass_at_k: passed {len(cases)} checks, large n and edge cases included.")


# --- Exercise 2: majority vote --------------------------------------------------------------------------------


def extract_answer(reply: str) -> int | None:
    """The integer after the last "The answer is", or None."""
    tail = reply.rsplit("The answer is", 1)
    if len(tail) < 2:
        return None
    words = tail[1].split()
    word = words[0].rstrip(".") if words else ""
    return int(word) if word.lstrip("-").isdigit() else None


def majority_vote(replies: list[str]) -> int | None:
    answers = [a for a in map(extract_answer, replies) if a is not None]
    if not answers:
        return None
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)  # ties: the answer reached first


def _trace(rng: random.Random, answer: int, slip: bool = False) -> str:
    """A reply whose thinking holds several numbers (the last one not always the answer) and maybe a slip."""
    steps = [f"{rng.randint(10, 99)} + {rng.randint(2, 9)} = {rng.randint(10, 99)}" for _ in range(rng.randint(2, 4))]
    if slip:
        steps.append(f"wait, {rng.randint(10, 99)} - {rng.randint(2, 9)} = {rng.randint(10, 99)}")
    return f"{THINK_OPEN} {SEP.join(steps)} {THINK_CLOSE} The answer is {answer}."


def _vote_cases(seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    t = lambda a, **kw: _trace(rng, a, **kw)  # noqa: E731
    truncated = lambda: f"{THINK_OPEN} 45 + 7 = 52 ; 52 - 9 = 43 ; 43 +"  # noqa: E731 - ran out of tokens
    return [
        [t(52), t(43), t(52), t(17, slip=True), t(52)],  # a clear majority
        [truncated(), truncated(), truncated(), t(61), t(61), t(8)],  # most replies never answer
        [t(44, slip=True), t(30), t(30), t(44)],  # a tie: the answer reached first wins
        [t(21), t(85), t(85), t(21), truncated()],  # another tie
        [truncated(), truncated()],  # nobody answers
        [t(7), "The answer is 12. wait, " + t(9), t(9), t(12)],  # the LAST "The answer is" counts
        [t(105), t(150), t(150), t(105), t(105), t(150), t(150)],  # three-digit answers
        [t(33) + " The answer is 33.", t(34), t(34), "I think 33. " + t(33), t(33)],
    ]


def _vote_variant(none_votes: bool = False, first_number: bool = False, first_answer: bool = False):
    def variant(replies):
        if first_number:
            answers = [next((int(w) for w in r.replace(".", " ").split() if w.isdigit()), None) for r in replies]
        elif first_answer:
            answers = [extract_answer("The answer is" + r.split("The answer is", 2)[1]) if "The answer is" in r
                       else None for r in replies]  # fmt: skip
        else:
            answers = [extract_answer(r) for r in replies]
        counts = Counter(a for a in answers if none_votes or a is not None)
        return counts.most_common(1)[0][0] if counts else None

    return variant


@graded("majority_vote")
def check_majority_vote(fn: Callable) -> None:
    cases = _vote_cases(4)
    hints = [
        (_vote_variant(none_votes=True), "replies that never state an answer (cut off mid-thought) do not vote; "
         "vote among the replies that do."),
        (_vote_variant(first_number=True), "read the FINAL answer (after 'The answer is'), not a number from the "
         "thinking."),
        (_vote_variant(first_answer=True), "a reply that states an answer twice means its LAST one."),
    ]  # fmt: skip
    for replies in cases:
        out = call(fn, (replies,), "majority_vote")
        want = majority_vote(replies)
        got = out.item() if hasattr(out, "item") else out
        if got is not None and not isinstance(got, int | float):
            raise GradingError(f"majority_vote should return the winning answer as an int (or None), got "
                               f"{describe(out)}.")  # fmt: skip
        if got == want:
            continue
        for wrong, message in hints:
            if wrong(replies) == got:
                raise GradingError(f"majority_vote: {message}")
        counts = Counter(a for a in map(extract_answer, replies) if a is not None)
        if counts and got in counts and counts[got] == max(counts.values()):
            raise GradingError(f"majority_vote: on a tie, return the answer that appears first among the replies "
                               f"(here {want}), not {got}.")  # fmt: skip
        raise GradingError(f"majority_vote returned {got!r} for replies whose answers are "
                           f"{[extract_answer(r) for r in replies]}; expected {want!r}.")  # fmt: skip
    print(f"✓ majority_vote: passed {len(cases)} checks (cut-off replies, ties, numbers in the thinking).")


# --- Exercise 3: Math-Shepherd step labels ---------------------------------------------------------------------


class FakeRollouts:
    """Continues a prefix like a sampler would. Whether the i-th continuation of a prefix reaches the answer is a
    fixed function of (prefix, i), so any call order that rolls each prefix out n times gets the same labels. A
    prefix counts its right steps (marked `ok`) and the continuation is right more often the more there are."""

    def __init__(self, answer: int, salt: int):
        self.answer, self.salt, self.seen = answer, salt, Counter()

    def __call__(self, prefixes: list[str]) -> list[str]:
        if isinstance(prefixes, str):
            raise TypeError("rollout takes a LIST of prefixes")
        out = []
        for prefix in prefixes:
            i = self.seen[prefix]
            self.seen[prefix] += 1
            out.append(self.continue_one(prefix, i))
        return out

    def continue_one(self, prefix: str, i: int) -> str:
        if not prefix.startswith("Q" + THINK_OPEN + " ") or prefix.endswith(SEP) or prefix.endswith(" "):
            return " ; ; ;"  # not a prefix the model was trained to continue: no answer
        steps = prefix.removeprefix("Q" + THINK_OPEN + " ").split(SEP)
        good = sum(s.endswith("ok") for s in steps)
        u = zlib.crc32(f"{self.salt}|{prefix}|{i}".encode()) / 2**32
        right = u < (good + 1) / (len(steps) + 2)
        value = self.answer if right else self.answer + 1 + (zlib.crc32(f"{prefix}{i}".encode()) % 5)
        return f" ; {value - 3} + 3 = {value} {THINK_CLOSE} The answer is {value}."


def shepherd_labels(prompt: str, steps: list[str], answer: int, rollout: Callable, n: int) -> list[float]:
    prefixes = [f"{prompt}{THINK_OPEN} {SEP.join(steps[: k + 1])}" for k in range(len(steps))]
    replies = rollout([p for p in prefixes for _ in range(n)])
    return [sum(extract_answer(r) == answer for r in replies[k * n : (k + 1) * n]) / n for k in range(len(steps))]


def _shepherd_variant(before: bool = False, hard: bool = False, trailing: bool = False, first_number: bool = False):
    def variant(prompt, steps, answer, rollout, n):
        prefixes = [f"{prompt}{THINK_OPEN} {SEP.join(steps[: k if before else k + 1])}" + (SEP if trailing else "")
                    for k in range(len(steps))]  # fmt: skip
        labels = []
        for p in prefixes:
            replies = rollout([p] * n)
            if first_number:
                hits = [int(r.split()[1]) == answer if len(r.split()) > 1 and r.split()[1].isdigit() else False
                        for r in replies]  # fmt: skip
            else:
                hits = [extract_answer(r) == answer for r in replies]
            labels.append(float(any(hits)) if hard else sum(hits) / n)
        return labels

    return variant


def _shepherd_case(seed: int, n_steps: int, n: int) -> tuple:
    rng = random.Random(seed)
    steps = [f"{rng.randint(10, 99)} + {rng.randint(2, 9)} = {rng.randint(10, 99)} {rng.choice(['ok', 'no'])}"
             for _ in range(n_steps)]  # fmt: skip
    answer = rng.randint(20, 90)
    return "Q", steps, answer, n, seed


@graded("shepherd_labels")
def check_shepherd_labels(fn: Callable) -> None:
    cases = [_shepherd_case(1, 4, 8), _shepherd_case(2, 6, 5), _shepherd_case(3, 1, 12), _shepherd_case(4, 5, 16)]
    hints = [
        (_shepherd_variant(before=True), "the label of step k scores the prefix that ENDS with step k (steps[:k+1]): "
         "it asks whether the solution is still on track after that step."),
        (_shepherd_variant(trailing=True), "build each prefix exactly as the statement says, "
         "prompt + '<think> ' + ' ; '.join(steps[:k+1]), with no separator after the last step: the model continues "
         "with ' ; next step' or ' </think>'."),
        (_shepherd_variant(hard=True), "the label is the SHARE of the n continuations that reach the right answer "
         "(Math-Shepherd's soft estimate), not whether any of them does."),
        (_shepherd_variant(first_number=True), "read each continuation's final answer (after 'The answer is'), not "
         "the first number it writes."),
    ]  # fmt: skip
    for prompt, steps, answer, n, salt in cases:
        want = shepherd_labels(prompt, steps, answer, FakeRollouts(answer, salt), n)
        rollout = FakeRollouts(answer, salt)
        out = call(fn, (prompt, steps, answer, rollout, n), "shepherd_labels", mutable=(3,))
        try:
            got = [float(x) for x in out]
        except (TypeError, ValueError):
            raise GradingError(f"shepherd_labels should return a list of floats, got {describe(out)}.") from None
        if len(got) != len(steps):
            raise GradingError(f"shepherd_labels returned {len(got)} labels for {len(steps)} steps: one per step.")
        prefixes = {p: c for p, c in rollout.seen.items()}
        if any(c != n for c in prefixes.values()) and len(prefixes) == len(steps):
            raise GradingError(f"shepherd_labels: roll each prefix out exactly n = {n} times; counts were "
                               f"{sorted(prefixes.values())}.")  # fmt: skip
        if all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(got, want, strict=True)):
            continue
        for wrong, message in hints:
            if all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(
                    got, wrong(prompt, steps, answer, FakeRollouts(answer, salt), n), strict=True)):  # fmt: skip
                raise GradingError(f"shepherd_labels: {message}")
        raise GradingError(f"shepherd_labels returned {[round(x, 3) for x in got]}, expected "
                           f"{[round(x, 3) for x in want]}.")  # fmt: skip
    print(f"✓ shepherd_labels: passed {len(cases)} checks with a sampler you have not seen.")


# --- Exercise 4: GRPO --------------------------------------------------------------------------------------------


def group_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """(r - group mean) / (group std + 1e-4), std unbiased; rewards are (groups, samples per group)."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    return (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + 1e-4)


def _advantage_variant(population: bool = False, no_std: bool = False, global_mean: bool = False):
    def variant(rewards):
        r = torch.as_tensor(rewards, dtype=torch.float64)
        centred = r - (r.mean() if global_mean else r.mean(-1, keepdim=True))
        return centred if no_std else centred / (r.std(-1, keepdim=True, correction=0 if population else 1) + 1e-4)

    return variant


@graded("group_advantages")
def check_group_advantages(fn: Callable) -> None:
    g = torch.Generator().manual_seed(7)
    cases = [
        (torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]),),  # a group all right: advantage 0, not NaN
        ((torch.rand(3, 6, generator=g) < 0.4).double(),),  # right / wrong rewards
        (torch.randn(4, 8, generator=g).double() * 3 + 1,),
        (torch.tensor([[0.0, 0.5, 1.0]]),),
    ]
    hints = [
        (same_as(_advantage_variant(global_mean=True)), "subtract each GROUP's mean (the samples of one prompt), "
         "not the batch's."),
        (same_as(_advantage_variant(no_std=True)), "divide by the group's standard deviation (+ 1e-4)."),
        (same_as(_advantage_variant(population=True)), "use the unbiased standard deviation (torch's default, "
         "dividing by n - 1)."),
    ]  # fmt: skip
    check_function(fn, group_advantages, "group_advantages", cases, hints, atol=1e-6, rtol=1e-5,
                   nonfinite_hint="a group whose rewards are all equal has std 0; the + 1e-4 keeps it finite.")


def clipped_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                 clip: float = 0.2) -> torch.Tensor:  # fmt: skip
    ratio = (logp_new - logp_old).exp()
    a = advantages[:, None]
    per_token = -torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    mask = mask.to(per_token.dtype)
    return ((per_token * mask).sum(-1) / mask.sum(-1)).mean()


def _loss_variant(token_mean: bool = False, no_min: bool = False, max_: bool = False, no_mask: bool = False,
                  sign: bool = False, no_exp: bool = False):  # fmt: skip
    def variant(logp_new, logp_old, advantages, mask, clip=0.2):
        ratio = (logp_new - logp_old) if no_exp else (logp_new - logp_old).exp()
        a = advantages[:, None]
        clipped = ratio.clamp(1 - clip, 1 + clip) * a
        pick = torch.maximum if max_ else torch.minimum
        per_token = -(clipped if no_min else pick(ratio * a, clipped))
        per_token = -per_token if sign else per_token
        m = torch.ones_like(per_token) if no_mask else mask.to(per_token.dtype)
        if token_mean:
            return (per_token * m).sum() / m.sum()
        return ((per_token * m).sum(-1) / m.sum(-1)).mean()

    return variant


def _loss_case(seed: int, batch: int, length: int, spread: float, clip: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, length, generator=g).double() * 3
    new = (old + torch.randn(batch, length, generator=g).double() * spread).requires_grad_()
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    advantages = torch.randn(batch, generator=g).double()
    return new, old, advantages, mask, clip


@graded("clipped_loss")
def check_clipped_loss(fn: Callable) -> None:
    cases = [_loss_case(0, 4, 7, 0.4), _loss_case(1, 6, 5, 0.05), _loss_case(2, 3, 9, 0.8, 0.1),
             _loss_case(3, 5, 6, 0.3, 0.3)]  # fmt: skip
    hints = [
        (same_as(_loss_variant(sign=True)), "return the LOSS to minimise: the negative of the clipped objective."),
        (same_as(_loss_variant(no_exp=True)), "the ratio is pi_new / pi_old = exp(logp_new - logp_old)."),
        (same_as(_loss_variant(max_=True)), "take the minimum of the unclipped and clipped terms (a pessimistic "
         "bound), not the maximum."),
        (same_as(_loss_variant(no_min=True)), "keep the unclipped term too: the objective is "
         "min(ratio * A, clip(ratio) * A), so the clip only removes the incentive to move further."),
        (same_as(_loss_variant(no_mask=True)), "padding positions (mask 0) are not part of a reply: leave them out."),
        (same_as(_loss_variant(token_mean=True)), "average over each reply's own tokens first, then over replies "
         "(GRPO's 1/G sum_i 1/|o_i| sum_t), not over all tokens of the batch at once."),
    ]  # fmt: skip
    check_function(fn, clipped_loss, "clipped_loss", cases, hints, atol=1e-6, rtol=1e-5)
    for case in cases:  # the loss must train the policy: its gradient w.r.t. logp_new matches the reference's
        mine = [x.detach().clone().requires_grad_() if i == 0 else x for i, x in enumerate(case)]
        ref = [x.detach().clone().requires_grad_() if i == 0 else x for i, x in enumerate(case)]
        out = fn(*mine)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise GradingError("clipped_loss: the loss carries no gradient to logp_new; do not detach it or convert "
                               "it to a number.")  # fmt: skip
        out.backward()
        clipped_loss(*ref).backward()
        if mine[0].grad is None or not matches(mine[0].grad, ref[0].grad, atol=1e-6, rtol=1e-5):
            raise GradingError("clipped_loss: the value is right but its gradient w.r.t. logp_new is not; the old "
                               "log-probabilities and the advantages are constants (no gradient through them).")
    print("✓ clipped_loss: gradients match too.")


# --- Exercise 5: Kimi's length reward ------------------------------------------------------------------------


def length_reward(lengths, correct) -> torch.Tensor:
    """lambda = 0.5 - (len - min) / (max - min) over the group (0 if all lengths are equal); a right reply gets
    lambda, a wrong one min(0, lambda)."""
    lengths = torch.as_tensor(lengths, dtype=torch.float64)
    correct = torch.as_tensor(correct, dtype=torch.bool)
    spread = lengths.max() - lengths.min()
    lam = 0.5 - (lengths - lengths.min()) / spread if spread > 0 else torch.zeros_like(lengths)
    return torch.where(correct, lam, lam.clamp(max=0))


def _length_variant(wrong_too: bool = False, correct_only: bool = False, by_max: bool = False):
    def variant(lengths, correct):
        lengths = torch.as_tensor(lengths, dtype=torch.float64)
        correct = torch.as_tensor(correct, dtype=torch.bool)
        pool = lengths[correct] if correct_only and correct.any() else lengths
        lo, hi = (torch.tensor(0.0, dtype=torch.float64), pool.max()) if by_max else (pool.min(), pool.max())
        lam = 0.5 - (lengths - lo) / (hi - lo) if hi > lo else torch.zeros_like(lengths)
        return lam if wrong_too else torch.where(correct, lam, lam.clamp(max=0))

    return variant


@graded("length_reward")
def check_length_reward(fn: Callable) -> None:
    cases = [
        ([120, 80, 200, 95, 150, 60], [True, True, False, True, False, False]),
        ([40, 40, 40], [True, False, True]),  # equal lengths: no length signal
        ([300, 50, 180, 75], [False, True, True, False]),
        (torch.tensor([33, 71, 52, 90, 64]), torch.tensor([1, 1, 1, 0, 0])),
    ]
    hints = [
        (same_as(_length_variant(wrong_too=True)), "a wrong reply may be penalised for length but never rewarded: "
         "it gets min(0, lambda)."),
        (same_as(_length_variant(correct_only=True)), "min_len and max_len are over ALL the group's replies, right "
         "and wrong (Kimi k1.5)."),
        (same_as(_length_variant(by_max=True)), "normalise by the range: (len - min_len) / (max_len - min_len)."),
    ]  # fmt: skip
    check_function(fn, length_reward, "length_reward", cases, hints, atol=1e-6, rtol=1e-5,
                   nonfinite_hint="when all lengths are equal, max - min = 0: lambda is 0 then.")
