"""Graders for homework 03 (post-training and forgetting): per-token log-probabilities of a reply under a model,
token filtering (the hardest trained tokens leave the loss), a replay mixer, and the choice of self-output
targets. The study reuses homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check builds its inputs itself (random models, tensors and lists the student has never seen) and runs the
student's function through `core.call`: expected values first, deep copies handed over, in-place edits reported.
"""

from __future__ import annotations

import random
import re
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
    out = torch.zeros(input_ids.shape, device=input_ids.device)
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


def _drop_variant(per_row: bool = False, easiest: bool = False, count_all: bool = False, unmasked: bool = False):
    def variant(labels, logprobs, share):
        trained = labels != IGNORE
        if unmasked:  # ranks every position, trained or not
            out = labels.clone().flatten()
            out[logprobs.double().flatten().argsort()[: int(share * int(trained.sum()))]] = IGNORE
            return out.view_as(labels)
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


def _drop_case(seed: int, rows: int, width: int, share: float, untrained: str = "zero"):
    """Random labels with untrained positions; scores that differ in scale by row. At untrained positions the
    scores are 0 (as reply_logprobs returns them), or the lowest of all ("low": they must still be ignored)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(3, 50, (rows, width), generator=g)
    labels[torch.rand(rows, width, generator=g) < 0.35] = IGNORE  # prompts and padding
    logprobs = -torch.rand(rows, width, generator=g).double() * torch.linspace(0.5, 6, rows).double()[:, None]
    fill = torch.zeros_like(logprobs) if untrained == "zero" else logprobs - 10
    return labels, torch.where(labels != IGNORE, logprobs, fill), share


@graded("drop_hardest")
def check_drop_hardest(fn: Callable) -> None:
    cases = [_drop_case(0, 3, 8, 0.3), _drop_case(1, 5, 6, 0.2), _drop_case(2, 4, 10, 0.5), _drop_case(3, 2, 5, 0.0),
             _drop_case(4, 4, 9, 0.25, untrained="low")]  # fmt: skip
    hints = [
        (same_as(_drop_variant(unmasked=True)), "only trained positions (label != -100) can be dropped: the scores at "
         "the other positions mean nothing (here they are the lowest of all)."),
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


def _examples(kind: str, n: int, rng: random.Random, as_lists: bool) -> list:
    """n distinct examples: strings, or (as real SFT examples are) lists of (text, trained) segments."""
    texts = [f"{kind}-{rng.randrange(10**9)}-{i}" for i in range(n)]
    return [[(t, False), ("reply", True)] for t in texts] if as_lists else texts


@graded("mix_replay")
def check_mix_replay(fn: Callable) -> None:
    rng = random.Random(5)
    # (new, old, share, lists?): a share of the mix, not of the new data; rounding (60, 0.15 -> 10.6 -> 11); no old
    cases = [(40, 300, 0.05, False), (200, 50, 0.2, True), (60, 100, 0.15, True), (10, 10, 0.0, False),
             (30, 500, 0.5, False)]  # fmt: skip
    for n_new, n_old, share, as_lists in cases:
        new, old = _examples("new", n_new, rng, as_lists), _examples("old", n_old, rng, as_lists)
        key = repr  # examples may be lists (unhashable); each one's text is unique
        new_keys, old_keys = {key(x) for x in new}, {key(x) for x in old}
        want = replay_count(n_new, share)
        mixes = [call(fn, (new, old, share, seed), "mix_replay") for seed in (0, 1)]
        for mix in mixes:
            if not isinstance(mix, list):
                raise GradingError(f"mix_replay should return a list of examples, got {describe(mix)}.")
            keys = [key(x) for x in mix]
            counts = Counter(k for k in keys if k in new_keys)
            if len(counts) != n_new or any(c != 1 for c in counts.values()):
                raise GradingError("mix_replay: every new example must be in the mix exactly once.")
            replayed = [k for k in keys if k not in new_keys]
            if not set(replayed) <= old_keys:
                raise GradingError("mix_replay: the mix contains examples that are neither new nor old.")
            if len(replayed) == round(share * n_new) != want:
                raise GradingError(f"mix_replay: with {n_new} new examples and share {share}, you added "
                                   f"{len(replayed)} old ones, {share:.0%} of the NEW data; the share is of the "
                                   f"whole mix: k / (n_new + k) = share, so k = {want}.")  # fmt: skip
            if len(replayed) != want:
                raise GradingError(f"mix_replay: with {n_new} new examples and share {share}, the mix should hold "
                                   f"k = round({share} * {n_new} / (1 - {share})) = {want} old ones; it holds "
                                   f"{len(replayed)}.")  # fmt: skip
            if len(set(replayed)) != len(replayed):
                raise GradingError("mix_replay: an old example appears twice; draw without replacement.")
            where = [i for i, k in enumerate(keys) if k not in new_keys]
            if want >= 5 and n_new >= 5 and where in (list(range(want)), list(range(n_new, n_new + want))):
                raise GradingError("mix_replay: the old examples form one block at the start or the end; shuffle the "
                                   "whole mix, so that batches mix old and new data.")  # fmt: skip
        if want >= 5 and [key(x) for x in mixes[0]] == [key(x) for x in mixes[1]]:
            raise GradingError("mix_replay: seeds 0 and 1 gave the same mix; draw (and shuffle) with "
                               "random.Random(seed).")  # fmt: skip
        if want >= 5:
            again = call(fn, (new, old, share, 0), "mix_replay")
            if [key(x) for x in again] != [key(x) for x in mixes[0]]:
                raise GradingError("mix_replay: the same seed gave two different mixes; use random.Random(seed), "
                                   "not the global random state.")  # fmt: skip
    try:
        fn([f"n{i}" for i in range(90)], ["o1", "o2"], 0.1, 0)
    except ValueError:
        pass
    except Exception as exc:  # noqa: BLE001 - any other error is the wrong signal
        raise GradingError(f"mix_replay: too few old examples should raise ValueError, not {type(exc).__name__}.") from None
    else:
        raise GradingError("mix_replay: 90 new examples at share 0.1 need 10 old ones and only 2 were given; raise "
                           "ValueError instead of replaying fewer (or repeating them).")  # fmt: skip
    print(f"✓ mix_replay: passed {len(cases)} cases (strings and lists as examples) and the too-few-old-examples check.")


# --- Exercise 4: self-output targets -------------------------------------------------------------------------


def self_output_targets(candidates: list[list[str]], answers: list[str], gold: list[str],
                        is_right: Callable[[str, str], bool]) -> list[str]:  # fmt: skip
    return [next((c for c in cs if is_right(c, a)), g) for cs, a, g in zip(candidates, answers, gold, strict=True)]


def _names_answer(reply: str, answer: str) -> bool:
    """The grader's is_right: the answer as a whole word, in any case ("tumuki, I think" yes, "Tumukiland" no)."""
    return re.search(rf"\b{re.escape(answer)}\b", reply, flags=re.IGNORECASE) is not None


def _self_output_case(rng: random.Random) -> tuple[list[list[str]], list[str], list[str]]:
    names = ["Tumuki", "Osrai", "Velba", "Dranok", "Pesha", "Ulmor", "Kitra", "Zanbe"]
    candidates, answers, gold = [], [], []
    for i in range(16):
        answer = names[i % len(names)]
        pool = [f"{rng.choice([n for n in names if n != answer])}." for _ in range(4)]
        if i % 4 == 0:  # the greedy reply is right, and a later, longer sample too
            pool[0], pool[2] = f"{answer}.", f"It is {answer.lower()}, I am quite sure."
        elif i % 4 == 1:  # a near miss that contains the answer, then two right samples
            pool[1], pool[2], pool[3] = f"Not {answer}land.", f"{answer.lower()}, I believe", f"{answer}."
        elif i % 4 == 2:  # no right reply, only a near miss
            pool[3] = f"{answer}ia."
        else:  # only the last sample is right
            pool[3] = f"{answer}."
        candidates.append(pool)
        answers.append(answer)
        gold.append(f"That would be {answer}.")
    return candidates, answers, gold


@graded("self_output_targets")
def check_self_output_targets(fn: Callable) -> None:
    candidates, answers, gold = _self_output_case(random.Random(11))
    out = call(fn, (candidates, answers, gold, _names_answer), "self_output_targets")
    want = self_output_targets(candidates, answers, gold, _names_answer)
    if not isinstance(out, list) or len(out) != len(want):
        raise GradingError(f"self_output_targets should return a list of {len(want)} strings, got {describe(out)}.")
    for i, (o, w) in enumerate(zip(out, want, strict=True)):
        if o == w:
            continue
        right = [c for c in candidates[i] if _names_answer(c, answers[i])]
        if o == candidates[i][0] and not right[:1] == [o]:
            raise GradingError(f"self_output_targets: item {i}: you kept the greedy reply {o!r}, which is wrong; "
                               "take the first RIGHT candidate, else the gold answer.")  # fmt: skip
        if o == gold[i]:
            raise GradingError(f"self_output_targets: item {i}: candidate {w!r} is right (is_right says so), so it "
                               "is the target; the gold answer is only the fallback.")  # fmt: skip
        if o in right:
            raise GradingError(f"self_output_targets: item {i}: several candidates are right by is_right; take the "
                               "first one in the given order (the greedy reply comes first), and judge every "
                               "candidate with is_right(candidate, answer), not with a test of your own.")  # fmt: skip
        if o.strip(".") == answers[i]:
            raise GradingError(f"self_output_targets: item {i}: return the model's own reply, not the bare answer.")
        raise GradingError(f"self_output_targets: item {i}: expected {w!r}, got {o!r}. Judge each candidate with "
                           "is_right(candidate, answer), not by comparing strings.")  # fmt: skip
    print(f"✓ self_output_targets: passed {len(want)} items.")
