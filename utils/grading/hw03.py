"""Graders for homework 03 (post-training and forgetting): per-token log-probabilities of a reply under a model,
token filtering (the hardest trained tokens leave the loss), a replay mixer, and the choice of self-output
targets. The study reuses homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check builds its inputs itself (random models, tensors and lists the student has never seen) and runs the
student's function through `core.call`: expected values first, deep copies handed over, in-place edits reported.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import torch

from utils.grading.core import GradingError, call, check_function, describe, graded, same_as
from utils.grading.hw02 import check_study, gpt2, llama_like

__all__ = ["check_drop_hardest", "check_mix_replay", "check_reply_logprobs", "check_self_output_targets", "check_study"]

IGNORE = -100  # the label of a position that is not trained


# --- Exercise 1: log p of every trained token ------------------------------------------------------------------


@torch.no_grad()
def reply_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logp = model(input_ids=input_ids, attention_mask=attention_mask).logits.float().log_softmax(-1)
    out = torch.zeros(input_ids.shape)
    out[:, 1:] = logp[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
    return torch.where(labels != IGNORE, out, torch.zeros_like(out))


def _logprobs_variant(shift: bool = True, probabilities: bool = False, mask: bool = True, read_labels: bool = False):
    @torch.no_grad()
    def variant(model, input_ids, attention_mask, labels):
        scores = model(input_ids=input_ids, attention_mask=attention_mask).logits.float().softmax(-1)
        scores = scores if probabilities else scores.log()
        out = torch.zeros(input_ids.shape)
        if shift:
            out[:, 1:] = scores[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
        else:
            out = scores.gather(-1, input_ids[..., None])[..., 0]
        if read_labels:  # the labels shifted by one by hand, as if the model did not shift them
            out = torch.zeros(input_ids.shape)
            out[:, :-1] = scores[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
        return torch.where(labels != IGNORE, out, torch.zeros_like(out)) if mask else out

    return variant


def _reply_case(model, seed: int, lengths: list[int], prompt: int):
    """A right-padded batch: `prompt` untrained tokens, then trained ones, then padding (untrained, masked)."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), 2)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    labels = torch.full((len(lengths), width), IGNORE)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, model.config.vocab_size, (n,), generator=g)
        mask[row, :n] = 1
        labels[row, prompt:n] = ids[row, prompt:n]
    return model, ids, mask, labels


@graded("reply_logprobs")
def check_reply_logprobs(fn: Callable) -> None:
    gpt, qwen = gpt2(30, n_layer=2), llama_like(31)
    cases = [_reply_case(gpt, 1, [7, 7], 3), _reply_case(gpt, 2, [9, 5, 7], 2), _reply_case(qwen, 3, [6, 8], 4)]
    hints = [
        (same_as(_logprobs_variant(shift=False)), "the logits at position t predict the token at t + 1: the "
         "log-probability of token t is read from the logits at t - 1."),
        (same_as(_logprobs_variant(read_labels=True)), "entry t belongs to token t (labels are aligned with "
         "input_ids, as Hugging Face expects them); you stored it at t - 1."),
        (same_as(_logprobs_variant(probabilities=True)), "return log-probabilities (log_softmax), not probabilities."),
        (same_as(_logprobs_variant(mask=False)), "positions whose label is -100 (the prompt, the padding) are not "
         "trained: return 0 there."),
    ]  # fmt: skip
    check_function(fn, reply_logprobs, "reply_logprobs", cases, hints, atol=1e-4, rtol=1e-4)


# --- Exercise 2: token filtering ------------------------------------------------------------------------------


def drop_hardest(labels: torch.Tensor, logprobs: torch.Tensor, share: float) -> torch.Tensor:
    trained = labels != IGNORE
    k = int(share * int(trained.sum()))
    order = torch.where(trained, logprobs.double(), torch.inf).flatten().argsort()[:k]
    out = labels.clone().flatten()
    out[order] = IGNORE
    return out.view_as(labels)


def _drop_variant(per_row: bool = False, easiest: bool = False, count_all: bool = False):
    def variant(labels, logprobs, share):
        trained = labels != IGNORE
        if per_row:
            return torch.stack([drop_hardest(labels[i : i + 1], logprobs[i : i + 1], share)[0] for i in range(len(labels))])
        n = labels.numel() if count_all else int(trained.sum())
        k = int(share * n)
        scores = -logprobs.double() if easiest else logprobs.double()
        order = torch.where(trained, scores, torch.inf).flatten().argsort()[:k]
        out = labels.clone().flatten()
        out[order] = IGNORE
        return out.view_as(labels)

    return variant


def _drop_case(seed: int, rows: int, width: int, share: float):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(3, 50, (rows, width), generator=g)
    labels[torch.rand(rows, width, generator=g) < 0.35] = IGNORE  # prompts and padding
    logprobs = -torch.rand(rows, width, generator=g).double() * torch.linspace(0.5, 6, rows).double()[:, None]
    return labels, torch.where(labels != IGNORE, logprobs, torch.zeros_like(logprobs)), share


@graded("drop_hardest")
def check_drop_hardest(fn: Callable) -> None:
    cases = [_drop_case(0, 3, 8, 0.3), _drop_case(1, 5, 6, 0.2), _drop_case(2, 4, 10, 0.5), _drop_case(3, 2, 5, 0.0)]
    hints = [
        (same_as(_drop_variant(easiest=True)), "drop the tokens the model finds hardest: the LOWEST log-probabilities."),
        (same_as(_drop_variant(per_row=True)), "rank the trained tokens of the whole batch together, not row by row: "
         "the hardest tokens are not spread evenly over the examples."),
        (same_as(_drop_variant(count_all=True)), "the share counts trained tokens only (label != -100), not every "
         "position."),
    ]  # fmt: skip
    check_function(fn, drop_hardest, "drop_hardest", cases, hints, atol=0, rtol=0)


# --- Exercise 3: the replay mixer -------------------------------------------------------------------------------


def replay_count(n_new: int, share: float) -> int:
    """How many old examples make `share` of a mix with n_new new ones."""
    return round(share * n_new / (1 - share))


@graded("mix_replay")
def check_mix_replay(fn: Callable) -> None:
    rng = random.Random(5)
    cases = [(40, 300, 0.05), (200, 50, 0.2), (37, 100, 0.1), (10, 10, 0.0), (30, 500, 0.5)]
    for n_new, n_old, share in cases:
        new = [f"new-{rng.randrange(10**9)}-{i}" for i in range(n_new)]
        old = [f"old-{rng.randrange(10**9)}-{i}" for i in range(n_old)]
        want = replay_count(n_new, share)
        mixes = [call(fn, (new, old, share, seed), "mix_replay") for seed in (0, 1)]
        for mix in mixes:
            if not isinstance(mix, list):
                raise GradingError(f"mix_replay should return a list of examples, got {describe(mix)}.")
            counts = Counter(mix)
            if any(counts[x] != 1 for x in new) or len([x for x in mix if x in set(new)]) != n_new:
                raise GradingError("mix_replay: every new example must be in the mix exactly once.")
            replayed = [x for x in mix if x not in set(new)]
            if not set(replayed) <= set(old):
                raise GradingError("mix_replay: the mix contains examples that are neither new nor old.")
            if len(replayed) == round(share * n_new) != want:
                raise GradingError(f"mix_replay: with {n_new} new examples and share {share}, you added "
                                   f"{len(replayed)} old ones, {share:.0%} of the NEW data; the share is of the "
                                   f"whole mix: k / (n_new + k) = share, so k = {want}.")  # fmt: skip
            if len(replayed) != want:
                raise GradingError(f"mix_replay: with {n_new} new examples and share {share}, the mix should hold "
                                   f"{want} old ones (k / (n_new + k) = share, rounded); it holds {len(replayed)}.")  # fmt: skip
            if len(set(replayed)) != len(replayed):
                raise GradingError("mix_replay: an old example appears twice; draw without replacement.")
        if want >= 5 and mixes[0] == mixes[1]:
            raise GradingError("mix_replay: seeds 0 and 1 gave the same mix; draw (and shuffle) with "
                               "random.Random(seed).")  # fmt: skip
        if want >= 5 and n_old > 2 * want:
            again = call(fn, (new, old, share, 0), "mix_replay")
            if again != mixes[0]:
                raise GradingError("mix_replay: the same seed gave two different mixes; use random.Random(seed), "
                                   "not the global random state.")  # fmt: skip
            first_old = [i for i, x in enumerate(mixes[0]) if x not in set(new)]
            if first_old == list(range(n_new, n_new + want)):
                raise GradingError("mix_replay: every old example comes after all the new ones; shuffle the mix, "
                                   "so that batches mix old and new data.")  # fmt: skip
    try:
        fn([f"n{i}" for i in range(90)], ["o1", "o2"], 0.1, 0)
    except ValueError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise GradingError(f"mix_replay: too few old examples should raise ValueError, not {type(exc).__name__}.") from None
    else:
        raise GradingError("mix_replay: 90 new examples at share 0.1 need 10 old ones and only 2 were given; raise "
                           "ValueError instead of replaying fewer (or repeating them).")  # fmt: skip
    print(f"✓ mix_replay: passed {len(cases)} cases and the too-few-old-examples check.")


# --- Exercise 4: self-output targets -------------------------------------------------------------------------


def self_output_targets(candidates: list[list[str]], answers: list[str], gold: list[str],
                        is_right: Callable[[str, str], bool]) -> list[str]:  # fmt: skip
    return [next((c for c in cs if is_right(c, a)), g) for cs, a, g in zip(candidates, answers, gold, strict=True)]


def _ends_with(reply: str, answer: str) -> bool:
    return reply.strip().rstrip(".").endswith(answer)


@graded("self_output_targets")
def check_self_output_targets(fn: Callable) -> None:
    rng = random.Random(11)
    names = ["Tumuki", "Osrai", "Velba", "Dranok", "Pesha", "Ulmor", "Kitra", "Zanbe"]
    candidates, answers, gold = [], [], []
    for i in range(12):
        answer = names[i % len(names)]
        wrong = [n for n in names if n != answer]
        pool = [f"{rng.choice(wrong)}." for _ in range(4)]
        if i % 3 == 0:  # the greedy reply is right
            pool[0] = f"{answer}."
        elif i % 3 == 1:  # a sample is right, in another wording, and a later one too
            pool[2], pool[3] = f"It is {answer}", f"{answer}."
        candidates.append(pool)
        answers.append(answer)
        gold.append(f"That would be {answer}.")
    out = call(fn, (candidates, answers, gold, _ends_with), "self_output_targets")
    want = self_output_targets(candidates, answers, gold, _ends_with)
    if not isinstance(out, list) or len(out) != len(want):
        raise GradingError(f"self_output_targets should return a list of {len(want)} strings, got {describe(out)}.")
    for i, (o, w) in enumerate(zip(out, want, strict=True)):
        if o == w:
            continue
        if o == candidates[i][0]:
            raise GradingError(f"self_output_targets: item {i}: you kept the greedy reply {o!r}, which is wrong; "
                               "take the first RIGHT candidate, else the gold answer.")  # fmt: skip
        if o == gold[i] and w != gold[i]:
            raise GradingError(f"self_output_targets: item {i}: candidate {w!r} is right (is_right says so), so it "
                               "is the target; the gold answer is only the fallback.")  # fmt: skip
        if w != gold[i] and o in candidates[i] and is_right_later(candidates[i], o, answers[i]):
            raise GradingError(f"self_output_targets: item {i}: several candidates are right; take the first one "
                               "in the given order (the greedy reply comes first).")  # fmt: skip
        if o == answers[i] or o == f"{answers[i]}.":
            raise GradingError(f"self_output_targets: item {i}: return the model's own reply, not the bare answer.")
        raise GradingError(f"self_output_targets: item {i}: expected {w!r}, got {o!r}. Judge each candidate with "
                           "is_right(candidate, answer), not by comparing strings.")  # fmt: skip
    print(f"✓ self_output_targets: passed {len(want)} items.")


def is_right_later(candidates: list[str], chosen: str, answer: str) -> bool:
    """Whether `chosen` is a right candidate that is not the first right one."""
    right = [c for c in candidates if _ends_with(c, answer)]
    return chosen in right[1:]
