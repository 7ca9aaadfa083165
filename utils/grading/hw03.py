"""Graders for homework 03 (post-training and forgetting): per-token log-probabilities of a reply under a model,
token filtering (the hardest trained tokens leave the loss), a replay mixer, and the choice of self-output
targets. The study reuses homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check draws its inputs with Hypothesis over the statement's whole domain (small random models built in the
check, padded batches whose real tokens include the pad id, ties at the cut, a share of 0, too few old examples,
candidates no test of the student's own can judge), edge cases given as explicit examples, two inputs of the same
shape with different contents among them; the student's function runs through `core.call`.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import math
import os
import random
import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch
from hypothesis import strategies as st

from utils.grading import draws
from utils.grading.core import (
    FRESH_DRAWS,
    GradingError,
    call,
    check_property,
    compare,
    confirmed,
    copies,
    expect_list,
    graded,
    holds,
    same_as,
    show,
)
from utils.grading.hw02 import check_study

__all__ = ["check_drop_hardest", "check_mix_replay", "check_reply_logprobs", "check_self_output_targets", "check_study"]

IGNORE = -100  # the label of a position that is not trained


# --- Exercise 1: log p of every trained token ------------------------------------------------------------------


@torch.no_grad()
def reply_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logp = model(input_ids=input_ids, attention_mask=attention_mask).logits.float().log_softmax(-1)
    out = torch.zeros(input_ids.shape, device=input_ids.device)
    out[:, 1:] = logp[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
    return torch.where(labels != IGNORE, out, torch.zeros_like(out))


VOCAB = 64


def _random_models() -> dict[str, torch.nn.Module]:
    """Small random causal LMs, named as the messages show them. GPT-2's pad, BOS and EOS are one token (id 0), so
    `input_ids != pad_token_id` is not the attention mask; the last one's logits reach ±2000, where log(softmax) in
    float32 is log 0 = -inf."""
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    def gpt2(seed: int, logit_scale: float = 1.0):
        torch.manual_seed(seed)
        config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, tie_word_embeddings=False,
                            bos_token_id=0, eos_token_id=0, pad_token_id=0)  # fmt: skip
        model = GPT2LMHeadModel(config).eval()
        model.lm_head.weight.mul_(logit_scale)
        return model

    with torch.random.fork_rng(devices=[]), torch.no_grad():  # the notebook's random state stays as it was
        torch.manual_seed(31)
        qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                            bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()  # fmt: skip
        models = {"a GPT-2 whose pad id is its BOS id (0)": gpt2(30), "a Qwen2 whose pad id is its EOS id (1)": qwen,
                  "a GPT-2 with logits near ±2000": gpt2(32, logit_scale=5000.0)}  # fmt: skip
    return models


@st.composite
def _reply_batch(draw, names: Sequence[str], pads: dict[str, int]):
    """(model name, input_ids, attention_mask, labels): right-padded rows of 1..width real tokens, the first `prompt`
    of them untrained (0: position 0 is trained too); real tokens are often 0, 1 or 2, the models' special ids."""
    name = draw(st.sampled_from(names))
    rows, width = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    token = st.one_of(st.sampled_from([0, 1, 2]), st.integers(0, VOCAB - 1))
    ids = torch.full((rows, width), pads[name])
    mask, labels = torch.zeros(rows, width, dtype=torch.long), torch.full((rows, width), IGNORE)
    for row in range(rows):
        n = draw(st.integers(1, width))
        prompt = draw(st.integers(0, n))
        ids[row, :n] = torch.tensor(draw(st.lists(token, min_size=n, max_size=n)))
        mask[row, :n] = 1
        labels[row, prompt:n] = ids[row, prompt:n]
    return name, ids, mask, labels


def _reply_example(name: str, rows: list[list[int]], prompt: int, pad: int):
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = torch.where(mask.bool() & (torch.arange(width) >= prompt), ids, IGNORE)
    return name, ids, mask, labels


def _logprobs_variant(shift: bool = True, probabilities: bool = False, zero_untrained: bool = True,
                      stored_at: int = 0, attend: str = "mask", naive: bool = False):  # fmt: skip
    """reply_logprobs with one mistake; attend: "mask" (right), "pad id" (input_ids != pad_token_id) or "labels"."""

    @torch.no_grad()
    def variant(model, input_ids, attention_mask, labels):
        if attend == "pad id":
            attention_mask = (input_ids != model.config.pad_token_id).long()
        elif attend == "labels":
            attention_mask = (labels != IGNORE).long()
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        scores = logits.softmax(-1) if probabilities else logits.softmax(-1).log() if naive else logits.log_softmax(-1)
        out = torch.zeros(input_ids.shape)
        if not shift:
            out = scores.gather(-1, input_ids[..., None])[..., 0]
        elif stored_at == -1:  # the log-probability of token t stored at t - 1
            out[:, :-1] = scores[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
        else:
            out[:, 1:] = scores[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0]
        return torch.where(labels != IGNORE, out, torch.zeros_like(out)) if zero_untrained else out

    return variant


def _wrong_at_untrained_only(out, model, input_ids, attention_mask, labels):
    right = reply_logprobs(model, input_ids, attention_mask, labels)
    trained = labels != IGNORE
    return bool(torch.allclose(out[trained].double(), right[trained].double(), atol=1e-3, rtol=1e-3)
                and (out[~trained] != 0).any())  # fmt: skip


def _wrong_at_position_0_only(out, model, input_ids, attention_mask, labels):
    right = reply_logprobs(model, input_ids, attention_mask, labels)
    return bool(torch.allclose(out[:, 1:].double(), right[:, 1:].double(), atol=1e-3, rtol=1e-3)
                and (out[:, 0] != 0).any())  # fmt: skip


@graded("reply_logprobs")
def check_reply_logprobs(fn: Callable) -> None:
    models = _random_models()
    names = list(models)
    gpt, qwen, loud = names
    pads = {name: m.config.pad_token_id for name, m in models.items()}
    examples = [
        _reply_example(gpt, [[0, 17, 0, 23, 41], [0, 9, 33]], 2, 0),  # BOS = pad starts each row, and comes again
        _reply_example(loud, [[0, 17, 0, 23, 41], [0, 9, 33]], 2, 0),  # the same batch, another model: a cache fails
        _reply_example(gpt, [[0, 52, 2, 0, 6], [0, 44, 0]], 2, 0),  # the same shape, other tokens (2: TinyWorld's pad)
        _reply_example(loud, [[0, 5, 61, 12, 30, 7], [0, 40, 2]], 1, 0),  # log(softmax) underflows to -inf
        _reply_example(qwen, [[3, 1, 14, 1], [25, 1, 4, 60]], 0, 1),  # position 0 trained; EOS = pad mid-sequence
    ]
    hints = [
        (same_as(_logprobs_variant(shift=False)), "the logits at position t predict the token at t + 1: the "
         "log-probability of token t is read from the logits at t - 1."),
        (same_as(_logprobs_variant(stored_at=-1)), "entry t belongs to token t (labels are aligned with input_ids, as "
         "Hugging Face expects them); you stored it at t - 1."),
        (same_as(_logprobs_variant(probabilities=True)), "return log-probabilities (log_softmax), not probabilities."),
        (same_as(_logprobs_variant(attend="pad id")), "pass the attention_mask you are given: a real token can have "
         "the pad id (GPT-2's pad, BOS and EOS are one token), so input_ids != pad_token_id is not the mask."),
        (same_as(_logprobs_variant(attend="labels")), "the model must attend to every real token (attention_mask), "
         "the untrained prompt included: it is the context of the reply."),
        (same_as(_logprobs_variant(zero_untrained=False)), "positions whose label is -100 (the prompt, the padding) "
         "are not trained: return 0 there."),
        (_wrong_at_position_0_only, "position 0 has no prediction (nothing comes before it): return 0 there, even "
         "where its label is trained."),
        (_wrong_at_untrained_only, "return 0 at every position whose label is -100 (the prompt, the padding), not only "
         "where attention_mask is 0."),
    ]  # fmt: skip
    unstable = ("log(softmax(x)) is log 0 = -inf in float32 where a logit is far below the largest (here they reach "
                "±2000): use log_softmax.")  # fmt: skip

    def one(args):
        name, ids, mask, labels = args
        real = (models[name], ids, mask, labels)
        want = reply_logprobs(*copies(real))
        out = call(fn, real, "reply_logprobs")
        # a float32 forward pass with padding differs from one without by about 2e-7 of the logits' size
        with torch.no_grad():
            size = float(models[name](input_ids=ids, attention_mask=mask).logits.abs().max())
        compare(out, want, "reply_logprobs", real, hints, nonfinite_hint=unstable, atol=1e-5 + 2e-6 * size, rtol=1e-4)

    tried = holds("reply_logprobs", _reply_batch(names, pads), one, examples, max_examples=16, reference=reply_logprobs)
    print(f"✓ reply_logprobs: passed on {tried} padded batches drawn over the statement's domain (three small random "
          "models, pad ids among the real tokens, logits near ±2000).")  # fmt: skip


# --- Exercise 2: token filtering ------------------------------------------------------------------------------


def drop_hardest(labels: torch.Tensor, logprobs: torch.Tensor, share: float) -> torch.Tensor:
    trained = labels != IGNORE
    k = int(share * int(trained.sum()))
    order = torch.where(trained, logprobs.double(), torch.inf).flatten().argsort()[:k]
    out = labels.clone().flatten()
    out[order] = IGNORE
    return out.view_as(labels)


def _allowed_counts(share: float, n: int) -> set[int]:
    """k = int(share * n), in float64 or float32 (torch's product of a count and a share); where share * n is a
    hair off a whole number (0.29 * 100 = 28.999...), either neighbour passes."""
    exact, near = share * n, round(share * n)
    counts = {int(exact), int(np.float32(share) * np.float32(n))}
    if exact != near and abs(exact - near) <= 1e-6 * max(1, near):
        counts |= {near - 1, near}
    return {k for k in counts if 0 <= k <= n}


def _drops_validly(out, labels, scores, counts) -> bool:
    """out is labels with exactly k trained positions set to -100 (k in counts), each scored no higher than any
    trained position it keeps (ties broken either way)."""
    if not isinstance(out, torch.Tensor) or out.shape != labels.shape or out.is_floating_point():
        return False
    trained = labels != IGNORE
    dropped = trained & (out == IGNORE)
    if not torch.equal(torch.where(dropped, IGNORE, labels), out.to(labels.dtype)) or int(dropped.sum()) not in counts:
        return False
    kept = trained & ~dropped
    return not dropped.any() or not kept.any() or bool(scores[dropped].max() <= scores[kept].min())


def _drops_by(out, labels, logprobs, share, rank_by: Callable = lambda lp: lp.double(), count: Callable | None = None):
    """out drops validly under another rule: another score (rank_by) or another k (count)."""
    n = int((labels != IGNORE).sum())
    counts = {count(share, n, labels)} if count else _allowed_counts(share, n)
    return _drops_validly(out, labels, rank_by(logprobs), counts)


def _drop_rule(per_row: bool = False, **rule):
    """A hint's predicate: out drops validly under another rule, for the whole batch or row by row."""

    def predicate(out, labels, logprobs, share):
        if per_row:
            return len(labels) > 1 and all(_drops_by(o[None], lab[None], lp[None], share, **rule)
                                           for o, lab, lp in zip(out, labels, logprobs, strict=True))  # fmt: skip
        return _drops_by(out, labels, logprobs, share, **rule)

    return predicate


def _drops_at_the_cut(out, labels, logprobs, share):
    """Drops every trained token below the k-th lowest score (fewer than k), or every one tied with it (more)."""
    trained = labels != IGNORE
    n = int(trained.sum())
    k = max(_allowed_counts(share, n))
    if not 0 < k < n or out.shape != labels.shape:
        return False
    lp = logprobs.double()
    cut = lp[trained].sort().values[k - 1]
    if int((trained & (lp == cut)).sum()) < 2:  # no tie at the cut
        return False
    dropped = trained & (out == IGNORE)
    at_cut = torch.equal(dropped, trained & (lp < cut)) or torch.equal(dropped, trained & (lp <= cut))
    return at_cut and int(dropped.sum()) != k


def _ranks_untrained_too(out, labels, logprobs, share):
    """Fewer than k trained tokens dropped: the k lowest of a ranking over every position, untrained ones scored by
    their logprobs or by 0, as when they are not left out of the ranking."""
    trained = labels != IGNORE
    dropped = trained & (out == IGNORE)
    if out.shape != labels.shape or not torch.equal(torch.where(dropped, IGNORE, labels), out.to(labels.dtype)):
        return False
    for k in _allowed_counts(share, int(trained.sum())):
        need = k - int(dropped.sum())  # untrained positions that took places
        if need <= 0 or need > int((~trained).sum()):
            continue
        for untrained in (logprobs.double(), torch.zeros(labels.shape, dtype=torch.float64)):
            scores = torch.where(trained, logprobs.double(), untrained)
            taken = dropped.clone()
            taken[~trained] = scores[~trained].argsort().argsort() < need  # the lowest untrained positions
            if not (~taken).any() or scores[taken].max() <= scores[~taken].min():
                return True
    return False


@st.composite
def _drop_inputs(draw):
    """labels with untrained positions anywhere (none trained, all trained); log-probabilities from a few values so
    that ties (at the cut too) are common, exactly 0 included, float64 values closer than float32 can tell apart
    (-1e-300 and 0 too), values far below -745 where exp() is 0 (logits in the thousands); anything at untrained
    positions; shares 0, 1, at a cut j / n and in between."""
    rows, width = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    trained = torch.tensor(draw(st.lists(st.booleans(), min_size=rows * width, max_size=rows * width))).view(rows, width)
    tokens = torch.tensor(draw(st.lists(st.integers(0, 63), min_size=rows * width, max_size=rows * width)))
    labels = torch.where(trained, tokens.view(rows, width), IGNORE)
    close = [-1.0, -1.0 - 1e-12, -1.0 + 1e-12, -1e-300] if dtype == torch.float64 else [-1.0]
    value = st.one_of(st.sampled_from([0.0, -0.5, -2.0, -800.0, -1200.0, *close]), draws.floats(-20.0, 0.0),
                      draws.floats(-3000.0, -700.0))  # log p of logits in the thousands: exp() underflows to 0
    untrained_value = st.one_of(st.just(0.0), draws.floats(-30.0, 5.0))
    values = [draw(value if t else untrained_value) for t in trained.flatten().tolist()]
    logprobs = torch.tensor(values, dtype=torch.float64).to(dtype).view(rows, width)
    n = int(trained.sum())
    at_cut = st.integers(0, n).map(lambda j: j / n) if n else st.just(0.5)
    shares = st.sampled_from([0.3, 0.1, 0.2, 0.25, 0.29, 0.4, 0.5, 0.6, 0.7, 0.75, 0.9, 0.0, 1.0])
    share = draw(st.one_of(shares, draws.floats(0.0, 1.0), at_cut))
    return labels, logprobs, share


@graded("drop_hardest")
def check_drop_hardest(fn: Callable) -> None:
    labels = torch.tensor([[IGNORE, 12, 7, 30, 2, IGNORE], [IGNORE, IGNORE, 9, 41, 3, 8]])
    scores = torch.tensor([[-7.0, -5.0, -4.0, -1.0, -3.0, 0.0], [-9.0, 0.0, -1.0, -0.2, 0.0, -0.5]])
    examples = [
        (labels, scores, 0.5),  # 8 trained, k = 4: -5, -4, -3 and one of two -1s (a tie at the cut); row 0 the hardest
        (labels, scores.flip(1) - 1, 0.5),  # the same shape, other scores
        (labels, torch.where(labels != IGNORE, 0.0, -5.0), 0.25),  # trained log p exactly 0; untrained scored lowest
        (labels, scores, 0.0),  # k = 0
        (labels, scores.double(), 1.0),  # every trained token
        (torch.full((2, 3), IGNORE), torch.zeros(2, 3), 0.5),  # nothing trained
        (torch.tensor([[4, 5, 6, 7, 8]]), torch.tensor([[-2, -1 + 1e-12, -1 - 1e-12, -1, 0]], dtype=torch.float64),
         0.4),  # k = 2: -2 and -1 - 1e-12, which float32 cannot tell from -1 and -1 + 1e-12
        (torch.arange(100).view(4, 25), -torch.arange(100.0).view(4, 25).flip(0), 0.29),  # 0.29 * 100 = 28.999...
        (torch.tensor([[5, 6, 7, 8]]), torch.tensor([[-1.0, -900.0, -1200.0, -2.0]], dtype=torch.float64), 0.25),
        # k = 1: -1200, not -900 (both have probability exp(log p) = 0)
        (torch.tensor([[3, 9]]), torch.tensor([[0.0, -1e-300]], dtype=torch.float64), 0.5),  # k = 1: -1e-300 (p = 1)
        (torch.tensor([[0, IGNORE]]), torch.zeros(1, 2), 1.0),  # token id 0; the untrained position ties with it
        (torch.arange(7)[None], -torch.arange(7.0)[None], 0.2),  # 1.4: k = 1, not 2 (rounded up)
        (torch.arange(7)[None], -torch.arange(7.0)[None], 0.4),  # 2.8: k = 2, not 3 (rounded to the nearest)
    ]
    hints = [
        (lambda out, lab, lp, s: bool(((out != IGNORE) & (lab == IGNORE)).any()),
         "a position whose label is -100 is not trained: it must stay -100."),
        (lambda out, lab, lp, s: bool(((out != lab) & (out != IGNORE)).any()),
         "set a dropped label to -100, and leave every other label as it is."),
        (_drop_rule(rank_by=lambda lp: -lp.double()), "drop the tokens the model finds hardest: the LOWEST "
         "log-probabilities."),
        (_drop_rule(per_row=True), "rank the trained tokens of the whole batch together, not row by row: the hardest "
         "tokens are not spread evenly over the examples."),
        (_drop_rule(count=lambda s, n, lab: int(s * lab.numel())), "the share counts trained tokens only "
         "(label != -100), not every position."),
        (_drop_rule(count=lambda s, n, lab: round(s * n)), "k = int(share * n) rounds down, not to the nearest."),
        (_drop_rule(count=lambda s, n, lab: math.ceil(s * n)), "k = int(share * n) rounds down, not up."),
        (_drop_rule(rank_by=lambda lp: lp.float().double()), "rank the logprobs in their own dtype: converting "
         "float64 to float32 makes distinct values equal."),
        (_drop_rule(rank_by=lambda lp: lp.double().exp()), "rank the logprobs themselves, not probabilities "
         "exp(logprobs): exp() is 0 below about -745 (log p of logits in the thousands) and 1 at -1e-300, so distinct "
         "logprobs tie."),
        (_drops_at_the_cut, "drop exactly k = int(share * n) tokens: at a tie at the cut, drop only as many of the "
         "tied tokens as are needed (either ones)."),
        (_ranks_untrained_too, "fewer than k = int(share * n) trained tokens were dropped: untrained positions took "
         "places in the ranking. Leave them out (e.g. +inf there: a trained token can have log p = 0)."),
        (lambda out, lab, lp, s: torch.equal(out, lab), "no label was dropped: set the k = int(share * n) trained "
         "labels with the lowest logprobs to -100."),
    ]  # fmt: skip

    def valid(out, labels, logprobs, share):
        return _drops_validly(out, labels, logprobs.double(), _allowed_counts(share, int((labels != IGNORE).sum())))

    first = call(fn, examples[0], "drop_hardest")
    if isinstance(first, torch.Tensor) and not first.is_floating_point() and first.dtype != labels.dtype:
        raise GradingError(f"drop_hardest returned {first.dtype} labels: return a copy of labels in their dtype, "
                           f"{labels.dtype} (a loss such as Hugging Face's cross-entropy needs int64 targets).")
    check_property(fn, drop_hardest, "drop_hardest", _drop_inputs(), examples, hints, max_examples=80, accept=valid,
                   tol={"atol": 0, "rtol": 0})


# --- Exercise 3: the replay mixer -------------------------------------------------------------------------------


def mix_replay(new: list, old: list, share: float, seed: int) -> list:
    k = round(share * len(new) / (1 - share))
    if k > len(old):
        raise ValueError(f"{k} old examples needed for a share of {share}, only {len(old)} given")
    rng = random.Random(seed)
    mix = list(new) + rng.sample(list(old), k)
    rng.shuffle(mix)
    return mix


def replay_counts(n_new: int, share: float) -> set[int]:
    """k = round(share * n_new / (1 - share)): how many old examples make `share` of the mix; a half (up to float
    rounding) may round either way."""
    exact = share * n_new / (1 - share)
    low = math.floor(exact)
    if abs(exact - low - 0.5) <= 1e-9 * max(1.0, exact):
        return {low, low + 1}
    return {round(exact)}


SEEDS = 20  # mixes per drawn input, for the statistical tests of the shuffle
REJECT = 1e-7  # the chance that a uniform shuffle fails a test


def _poisson_tail(mean: float, at_least: int) -> float:
    """P(X >= at_least) for X ~ Poisson(mean)."""
    term, below = math.exp(-mean), 0.0
    for j in range(at_least):
        below += term
        term *= mean / (j + 1)
    return max(0.0, 1.0 - below)


def _shuffle_problem(mixes: list[list[str]], new: list[str], old: list[str]) -> str | None:
    """What shows, over SEEDS mixes of the same input, that they are not uniform shuffles (each test at a false
    rejection rate below REJECT), or None."""
    n, new_set = len(new), set(new)
    total = len(mixes[0])
    if total < 2:
        return None
    k = total - n
    where_old = [tuple(i for i, x in enumerate(m) if x not in new_set) for m in mixes]
    chosen = [frozenset(m) - new_set for m in mixes]
    if 2 <= k and 2 <= n and all(w in (tuple(range(k)), tuple(range(n, total))) for w in where_old):
        return "the old examples form one block at the start or the end of every mix: shuffle the whole mix."
    if n >= 3 and all([x for x in m if x in new_set] == new for m in mixes):
        return ("the new examples keep their order in every mix: shuffle the whole mix, not only where the old "
                "examples go.")  # fmt: skip
    if len(set(where_old)) == 1 and math.comb(total, k) ** (len(mixes) - 1) > 1 / REJECT:
        return "the old examples land at the same positions for every seed: shuffle the whole mix with the seed."
    if len(set(chosen)) == 1 and math.comb(len(old), k) ** (len(mixes) - 1) > 1 / REJECT:
        return ("every seed replays the same old examples: draw them at random with the seed's generator (e.g. "
                "rng.sample(old, k)), not old[:k].")  # fmt: skip
    follows = {a: b for a, b in zip(new, new[1:], strict=False)}
    successions = sum(m[i + 1] == follows.get(m[i]) for m in mixes for i in range(total - 1))
    if _poisson_tail(len(mixes) * (n - 1) / total, successions) < REJECT:
        return (f"new examples stay next to their neighbours ({successions} times in {len(mixes)} mixes, where a "
                "shuffle keeps about one pair per mix): shuffle the whole mix uniformly (rng.shuffle).")  # fmt: skip
    if 0 < k < total:
        positions = sum(sum(w) for w in where_old)
        mean, var = len(mixes) * k * (total - 1) / 2, len(mixes) * k * (total - k) * (total + 1) / 12
        if abs(positions - mean) > 6 * math.sqrt(var):
            side = "end" if positions > mean else "start"
            return (f"the old examples land too often towards the {side} of the mix: shuffle the whole mix "
                    "uniformly (rng.shuffle on the concatenation).")  # fmt: skip
    for offset, concatenation in ((0, "new + old"), (k, "old + new")):  # where each new example starts
        stays = sum(m[i + offset] == x for m in mixes for i, x in enumerate(new))
        if stays == 0 and len(mixes) * n / total >= 17:  # P(no new example ever at its place) < e^-17
            return (f"no example ever stays at its place in {concatenation}: a hand-written shuffle that draws j from "
                    "range(i) instead of range(i + 1) (Sattolo's algorithm) is not uniform; use rng.shuffle.")
    return None


ORDERS = 8000  # seeds of the uniformity test over the 6 orders of a 3-example mix
ORDERS_CRITICAL = 40.86  # chi-square, 5 degrees of freedom: a uniform shuffle exceeds it with probability 1e-7


def _order_problem(run: Callable) -> str | None:
    """A chi-square test of the 6 orders of a mix of 2 new examples and 1 old one (share 1/3, k = 1) over ORDERS
    seeds, or None. A shuffle that swaps each place with one drawn from the whole range comes out 4:5:5:5:4:4 and
    fails it (in 99.99% of runs); so does an old example never put last."""
    new, old = ["a", "b"], ["c"]
    start = int.from_bytes(os.urandom(4), "little") if FRESH_DRAWS in os.environ else 0
    counts = Counter()
    for seed in range(start, start + ORDERS):
        try:
            mix = run(list(new), list(old), 1 / 3, seed)
        except Exception as exc:  # noqa: BLE001 - a student's error: one readable line
            return f"raised {type(exc).__name__} on new={new}, old={old}, share=1/3, seed={seed}: {exc}"[:300]
        if not isinstance(mix, list | tuple):
            return None  # the checks above judge other outputs
        counts[tuple(map(repr, mix))] += 1
    orders = list(itertools.permutations(map(repr, new + old)))
    if not set(counts) <= set(orders):
        return None  # not a shuffle of the three: the checks above explain it
    expected = ORDERS / 6
    chi2 = sum((counts[order] - expected) ** 2 / expected for order in orders)
    if chi2 <= ORDERS_CRITICAL:
        return None
    names = {repr(x): x for x in new + old}
    shown = ", ".join(f"{''.join(names[x] for x in order)} {counts[order]}" for order in sorted(orders))
    why = ("an example inserted at rng.randrange(len(out)) is never last (draw from range(len(out) + 1))"
           if 0 in (counts[order] for order in orders) else
           "a hand-written loop that swaps each place with one drawn from the whole range (randrange(n)) is not "
           "uniform (Fisher-Yates draws j from range(i + 1))")  # fmt: skip
    return (f"over {ORDERS} seeds the 6 orders of a mix of new ['a', 'b'] and old ['c'] (share 1/3) came out "
            f"{shown} times, where a uniform shuffle gives each about {expected:.0f} (chi-square {chi2:.0f}; a "
            f"uniform shuffle exceeds {ORDERS_CRITICAL:.0f} once in 10^7 runs): {why}; use rng.shuffle.")


_PLAIN_HASH = builtins.hash


def _salted_hash(salt: int) -> Callable:
    """hash() as another Python process computes it (PYTHONHASHSEED): strings and bytes, alone or inside tuples and
    frozensets, hash differently; numbers as always."""

    def text(x) -> bool:
        return isinstance(x, str | bytes) or (isinstance(x, tuple | frozenset) and any(map(text, x)))

    return lambda x: _PLAIN_HASH((salt, x)) if text(x) else _PLAIN_HASH(x)


def _hash_problem(run: Callable) -> str | None:
    """A mix that changes when hash() of strings changes, as it does in the next Python session, or None (in one
    process a mix ordered by hash(...) looks random and repeats for a seed; an order that comes from iterating a
    set of strings cannot be seen from here)."""
    args = ([f"new {i}" for i in range(6)], [f"old {i}" for i in range(4)], 0.25, 7)
    mixes = []
    for salt in (1, 2):
        builtins.hash = _salted_hash(salt)
        try:
            mixes.append(run(*copies(args)))
        except Exception:  # noqa: BLE001 - judged by the checks above, not here
            return None
        finally:
            builtins.hash = _PLAIN_HASH
    if isinstance(mixes[0], list | tuple) and list(mixes[0]) != list(mixes[1]):
        return ("the mix depends on hash() of strings, which Python draws anew in every session (PYTHONHASHSEED): "
                "the same seed must give the same mix tomorrow too; shuffle with random.Random(seed).")
    return None


def _as_examples(kind: str, texts: list[str]) -> list:
    """Examples of one kind: strings, (text, trained) segments as real SFT examples are (unhashable), or dicts."""
    if kind == "segments":
        return [[(t, False), ("reply", True)] for t in texts]
    if kind == "dicts":
        return [{"prompt": t, "reply": "reply"} for t in texts]
    return list(texts)


@st.composite
def _mix_inputs(draw):
    """new and old examples (distinct, any kind), share 0, at its edge (0.9) or in between, old sometimes exactly k
    long, sometimes too short; a salt makes inputs of the same sizes differ."""
    n_new = draw(st.one_of(st.integers(0, 6), st.integers(12, 30)))
    share = draw(st.one_of(st.sampled_from([0.0, 0.2, 0.5, 0.1, 0.9]), draws.floats(0.0, 0.9)))
    k = max(replay_counts(n_new, share))
    if n_new + k > 80:  # keeps a draw quick
        share = 0.5
        k = n_new
    n_old = max(0, k + draw(st.one_of(st.just(0), st.integers(1, 4), st.integers(-3, -1))))
    kind, salt = draw(st.sampled_from(["text", "segments", "dicts"])), draw(st.integers(0, 999))
    new = _as_examples(kind, [f"new {salt}-{i}" for i in range(n_new)])
    old = _as_examples(kind, [f"old {salt}-{i}" for i in range(n_old)])
    return new, old, share, draw(st.integers(0, 2**31 - 1))


class _Raised:
    def __init__(self, error: ValueError):
        self.error = error


def _value_error_returned(fn: Callable) -> Callable:
    """fn, with a ValueError returned (as _Raised) instead of raised, so that `call` lets the check judge it."""

    @functools.wraps(fn)
    def run(*args):
        try:
            return fn(*args)
        except ValueError as error:
            return _Raised(error)

    return run


def _global_states():
    return random.getstate(), np.random.get_state()[1].tolist()


@graded("mix_replay")
def check_mix_replay(fn: Callable) -> None:
    run = _value_error_returned(fn) if callable(fn) else fn

    def one(args):
        new, old, share, seed = args
        counts = replay_counts(len(new), share)
        k = f"k = round({share:.4g} * {len(new)} / (1 - {share:.4g})) = {' or '.join(map(str, sorted(counts)))}"
        new_keys, old_keys = [repr(x) for x in new], {repr(x) for x in old}
        before = _global_states()
        first = call(run, args, "mix_replay")
        if isinstance(first, _Raised):
            if len(old) < max(counts):
                return
            raise GradingError(f"mix_replay raised ValueError ({first.error}) with {len(old)} old examples where "
                               f"{k}: raise only if len(old) < k; exactly k old examples are enough.")  # fmt: skip
        seeds = [seed + s for s in range(SEEDS)]
        mixes = [first] + [call(run, (new, old, share, s), "mix_replay") for s in seeds[1:]]
        keys, new_set = [], set(new_keys)
        for s, mix in zip(seeds, mixes, strict=True):
            if isinstance(mix, _Raised):
                raise GradingError(f"mix_replay raised ValueError for seed {s} but not for seed {seed}: whether k old "
                                   "examples are enough does not depend on the seed.")  # fmt: skip
            keys.append([repr(x) for x in expect_list(mix, "mix_replay", what="a list of examples")])
            replayed = [x for x in keys[-1] if x not in new_set]
            if not set(replayed) <= old_keys:
                raise GradingError("mix_replay: the mix contains examples that are neither new nor old ones (does your "
                                   "function keep something from an earlier call?).")  # fmt: skip
            new_counts = Counter(x for x in keys[-1] if x in new_set)
            if len(new_counts) != len(new) or any(c != 1 for c in new_counts.values()):
                raise GradingError(f"mix_replay: every new example must be in the mix exactly once; the mix holds "
                                   f"{sum(new_counts.values())} of the {len(new)} (counting repeats).")  # fmt: skip
            if len(replayed) > len(set(replayed)):
                raise GradingError("mix_replay: an old example appears twice; draw without replacement.")
            if len(old) < min(counts):
                raise GradingError(f"mix_replay: {len(new)} new examples at share {share:.4g} need {k} old ones, "
                                   f"and only {len(old)} were given: raise ValueError instead of replaying fewer (or "
                                   "repeating them).")  # fmt: skip
            if len(replayed) not in counts:
                of_new = round(share * len(new))
                raise GradingError(f"mix_replay: with {len(new)} new examples and share {share:.4g}, you added "
                                   f"{len(replayed)} old ones" + (
                                       f", {share:.0%} of the NEW data; the share is of the whole mix: k / (n_new + k) "
                                       f"= share, so {k}." if len(replayed) == of_new else f"; the mix needs {k}."))
        again = call(run, args, "mix_replay")
        if [repr(x) for x in expect_list(again, "mix_replay")] != keys[0]:
            raise GradingError("mix_replay: the same seed gave two different mixes; draw and shuffle with "
                               "random.Random(seed), not the global random state.")  # fmt: skip
        if _global_states() != before:
            raise GradingError("mix_replay changed the global random state (random.seed, random.shuffle, "
                               "np.random...): use a generator of your own, e.g. random.Random(seed).")  # fmt: skip
        problem = _shuffle_problem(keys, new_keys, [repr(x) for x in old])
        if problem:
            raise GradingError(f"mix_replay: {problem}")

    salted = [_as_examples("segments", [f"{s}-{i}" for i in range(20)]) for s in ("new a", "new b", "old a", "old b")]
    examples = [
        (salted[0], salted[2], 0.2, 0),  # k = 5: lists as examples (unhashable)
        (salted[1], salted[3], 0.2, 0),  # the same sizes, other examples
        ([f"n{i}" for i in range(90)], ["o1", "o2"], 0.1, 0),  # k = 10: too few old examples
        ([f"n{i}" for i in range(24)], [], 0.0, 3),  # a share of 0: nothing old, nothing raised, still shuffled
        ([f"n{i}" for i in range(9)], [f"o{i}" for i in range(81)], 0.9, 1),  # share at its edge: k = 81 = len(old)
        ([f"n{i}" for i in range(60)], [f"o{i}" for i in range(15)], 0.15, 4),  # k = 10.6: 11, not 10 (truncated)
        ([f"n{i}" for i in range(10)], [f"o{i}" for i in range(3)], 0.2, 2),  # k = 2.5: 2 or 3
        ([], [f"o{i}" for i in range(4)], 0.5, 0),  # nothing new
        (["n0", "n1"], [f"o{i}" for i in range(20)], 0.875, 5),  # k = 14 (0.875 is not 0.88)
    ]
    tried = holds("mix_replay", _mix_inputs(), one, examples, max_examples=40, reference=mix_replay)
    problem = _order_problem(run) or _hash_problem(run)
    if problem:
        raise GradingError(f"mix_replay: {problem}")
    print(f"✓ mix_replay: passed on {tried} inputs drawn over the statement's domain ({SEEDS} seeds each; strings, "
          "lists and dicts as examples; too few old examples).")  # fmt: skip


# --- Exercise 4: self-output targets -------------------------------------------------------------------------


def self_output_targets(candidates: list[list[str]], answers: list[str], gold: list[str],
                        is_right: Callable[[str, str], bool]) -> list[str]:  # fmt: skip
    return [next((c for c in cs if is_right(c, a)), g) for cs, a, g in zip(candidates, answers, gold, strict=True)]


class _Judge:
    """A grader's is_right(reply, answer) that records how it is called; copies of it are itself, so the calls made
    on the copy handed to the student's function are seen."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __deepcopy__(self, memo):
        return self

    def __call__(self, reply, answer):
        self.calls.append((reply, answer))
        return self.verdict(reply, answer)

    def verdict(self, reply: str, answer: str):
        raise NotImplementedError


class _WholeWord(_Judge):
    """The answer as a whole word, in any case ("tumuki, I think" yes, "Tumukiland" no); returns a bool, or the
    re.Match itself (truthy, as re.search gives it)."""

    def __init__(self, match_object: bool = False):
        super().__init__()
        self.match_object = match_object

    def verdict(self, reply: str, answer: str):
        found = re.search(rf"\b{re.escape(answer)}\b", reply, flags=re.IGNORECASE)
        return found if self.match_object else found is not None

    def __repr__(self) -> str:
        return "<is_right: the answer as a whole word" + (", returns a re.Match or None>" if self.match_object else ">")


class _Arbitrary(_Judge):
    """A judge whose verdicts no test on the text can guess (a hash of the pair); returns numpy booleans."""

    def __init__(self, salt: int):
        super().__init__()
        self.salt = salt

    def verdict(self, reply: str, answer: str):
        return np.bool_(zlib.crc32(f"{self.salt}|{reply}|{answer}".encode()) % 3 == 0)

    def __repr__(self) -> str:
        return "<is_right: a judge of its own, returns numpy booleans>"


NAMES = ["Tumuki", "Osrai", "Velba", "Dranok"]
TWIN_SALT = 8  # _Arbitrary(7) and _Arbitrary(8) print alike and judge the examples' candidates otherwise


@st.composite
def _target_inputs(draw):
    """0..5 questions (names repeat), 0..4 candidates each: the answer bare, in a sentence, in another case, inside
    a longer word, with spaces around, another name, an empty reply; one of three judges."""
    judge = draw(st.one_of(st.sampled_from([False, True]).map(_WholeWord), st.integers(0, 999).map(_Arbitrary)))
    answers = draw(st.lists(st.sampled_from(NAMES), max_size=5))
    candidates = []
    for answer in answers:
        other = draw(st.sampled_from([n for n in NAMES if n != answer]))
        forms = [f"{answer}.", f"It is {answer.lower()}, I think.", f"  {answer} ", f"{answer}land.", f"{other}.",
                 f"Not {other}, {answer}!", ""]  # fmt: skip
        candidates.append(draw(st.lists(st.sampled_from(forms), max_size=4)))
    return candidates, answers, [f"That would be {a}." for a in answers], judge


class _Listed(_Judge):
    """A judge that accepts the (reply, answer) pairs it lists, exactly as written."""

    def __init__(self, *right: tuple[str, str]):
        super().__init__()
        self.right = set(right)

    def verdict(self, reply: str, answer: str):
        return (reply, answer) in self.right

    def __repr__(self) -> str:
        return "<is_right: a judge of its own>"


def _as_list(out):
    return list(out) if isinstance(out, tuple) else out


def _greedy(candidates, answers, gold, is_right):
    return [cs[0] if cs else g for cs, g in zip(candidates, gold, strict=True)]


def _stripped_judged(candidates, answers, gold, is_right):
    return [next((c for c in cs if is_right(c.strip(), a)), g)
            for cs, a, g in zip(candidates, answers, gold, strict=True)]  # fmt: skip


TARGET_MISTAKES = [
    (_greedy, "you kept the greedy reply (the first candidate) whether or not is_right accepts it; take the first "
     "RIGHT candidate, else the gold answer."),
    (_stripped_judged, "judge each candidate exactly as it is, is_right(candidate, answer): a stripped or edited "
     "copy is another reply, which is_right may judge otherwise."),
]  # fmt: skip
# a probe on which the mistakes differ: "  Osrai " is wrong but "Osrai" right, and the greedy "Tumuki." is wrong
TARGET_PROBE = ([["  Osrai ", "Osrai."], ["Tumuki.", "It is Velba."]], ["Osrai", "Velba"], ["Gold 1", "Gold 2"],
                _Listed(("Osrai", "Osrai"), ("Osrai.", "Osrai"), ("It is Velba.", "Velba")))  # fmt: skip


def _is_true(is_right: _Judge) -> Callable:
    return lambda reply, answer: is_right.verdict(reply, answer) is True


@graded("self_output_targets")
def check_self_output_targets(fn: Callable) -> None:
    def one(args):
        judged(args)
        if isinstance(args[3], _Arbitrary):  # the same inputs, a judge that prints alike: a cache keyed on them fails
            judged((*args[:3], _Arbitrary(args[3].salt + 1000)))

    def judged(args):
        candidates, answers, gold, is_right = args
        want = self_output_targets(candidates, answers, gold, is_right.verdict)
        is_right.calls.clear()
        out = expect_list(call(fn, args, "self_output_targets"), "self_output_targets", len(want), "a list of targets")
        if out == want:
            return
        replies, asked = {c for cs in candidates for c in cs}, set(answers)
        calls = list(is_right.calls)  # before the mistakes below are tried: they call it too
        if calls and all(c[0] in asked and c[1] in replies for c in calls):
            raise GradingError("self_output_targets: call is_right(candidate, answer) in that order: the reply first, "
                               "then the answer.")  # fmt: skip
        mistakes = confirmed(fn, "self_output_targets", TARGET_MISTAKES, out, args, [TARGET_PROBE],
                             lambda got, wrong, _: got == wrong, _as_list)
        if mistakes:
            raise GradingError(f"self_output_targets: {mistakes[0]}")
        if replies and not calls:
            raise GradingError("self_output_targets: judge each candidate with the is_right you are given, "
                               "is_right(candidate, answer), not with a test of your own: yours never called it.")
        truthy = [is_right.verdict(c, a) for cs, a in zip(candidates, answers, strict=True) for c in cs]
        if any(v is not True and v for v in truthy) and out == self_output_targets(candidates, answers, gold,
                                                                                 _is_true(is_right)):  # fmt: skip
            raise GradingError("self_output_targets: is_right may return any truthy value (a re.Match, a numpy bool): "
                               "test it with `if is_right(...)`, not with `is True` or `== True`.")  # fmt: skip
        i = next(i for i, (o, w) in enumerate(zip(out, want, strict=True)) if o != w)
        o, w, options = out[i], want[i], candidates[i]
        right = [c for c in options if is_right.verdict(c, answers[i])]
        where = f"item {i} (candidates {show(options)}, answer {answers[i]!r})"
        if o not in options and o != gold[i]:
            if isinstance(o, str) and o.strip() == w.strip():
                raise GradingError(f"self_output_targets: {where}: return the candidate exactly as it is, {w!r}, "
                                   "without stripping or editing it.")  # fmt: skip
            if isinstance(o, str) and o.strip(". ") == answers[i]:
                raise GradingError(f"self_output_targets: {where}: return the model's own reply, not the bare answer.")
            raise GradingError(f"self_output_targets: {where}: you returned {show(o)}, neither a candidate of this "
                               "question nor its gold answer (does your function keep something from an earlier "
                               "call?).")  # fmt: skip
        if options and o == options[0] and not right[:1] == [o]:
            raise GradingError(f"self_output_targets: {where}: you kept the greedy reply {o!r}, which is_right rejects;"
                               " take the first RIGHT candidate, else the gold answer.")  # fmt: skip
        if o == gold[i]:
            raise GradingError(f"self_output_targets: {where}: candidate {w!r} is right by is_right(candidate, answer), "
                               "so it is the target; the gold answer is only the fallback.")  # fmt: skip
        if o in right:
            raise GradingError(f"self_output_targets: {where}: several candidates are right by is_right; take the "
                               f"first one in the given order ({w!r}; the greedy reply comes first).")  # fmt: skip
        raise GradingError(f"self_output_targets: {where}: expected {w!r}, got {show(o)}. Judge each candidate with "
                           "is_right(candidate, answer), not with a test of your own.")  # fmt: skip

    candidates = [["Velba.", "It is tumuki, I think."], ["Osrai."], [], ["Tumukiland.", "  Osrai ", "Osrai."]]
    answers = ["Tumuki", "Osrai", "Velba", "Osrai"]
    gold = [f"That would be {a}." for a in answers]
    examples = [
        (candidates, answers, gold, _WholeWord()),  # a right sample after a wrong greedy reply; none at all
        ([c[::-1] for c in candidates], answers, gold, _WholeWord()),  # the same lengths, other candidates
        (candidates, answers, gold, _WholeWord(match_object=True)),  # truthy values, not True
        (candidates, answers, gold, _Arbitrary(7)),  # verdicts no test on the text can guess
        (candidates, answers, gold, _Arbitrary(TWIN_SALT)),  # the same inputs, a judge that prints alike: a cache fails
        ([], [], [], _WholeWord()),  # no questions
    ]
    tried = holds("self_output_targets", _target_inputs(), one, examples, max_examples=60, reference=self_output_targets)
    print(f"✓ self_output_targets: passed on {tried} inputs drawn over the statement's domain (three judges, ties "
          "between right candidates, no candidates).")  # fmt: skip
