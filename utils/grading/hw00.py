"""Graders for homework 00 (warm-up): temperature, top-p filtering, sequence log-probability."""

from __future__ import annotations

import torch

from utils.grading.core import check_function, same_as

OVERFLOW = ("exp() overflows for logits near 1000 (and 0/0 appears when every logit is near -1000): subtract each "
            "row's maximum first, or use torch.softmax / torch.log_softmax.")  # fmt: skip


def _random_logits(seed: int, *shape: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# --- Exercise 1: softmax with temperature ------------------------------------------------------------------


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits / temperature, dim=-1)


def check_softmax_with_temperature(fn) -> None:
    cases = [
        (torch.tensor([2.0, 1.0, 0.0]), 1.0),
        (torch.tensor([2.0, 1.0, 0.0]), 0.5),
        (torch.tensor([[1000.0, 999.0, 0.0], [0.0, 0.0, 0.0], [-1000.0, -1001.0, -1002.0]]), 2.0),  # a naive exp fails
        (_random_logits(0, 4, 50), 0.7),
        (_random_logits(1, 2, 3, 11), 3.0),
    ]
    hints = [
        (same_as(lambda x, t: torch.softmax(x, dim=-1)), "the temperature has no effect: divide the logits by it."),
        (same_as(lambda x, t: torch.softmax(x * t, dim=-1)), "divide the logits by the temperature, don't multiply."),
        (same_as(lambda x, t: torch.softmax(x / t, dim=0)), "normalise over the last dimension (the vocabulary)."),
        (same_as(lambda x, t: x / t), "return probabilities: apply a softmax to the scaled logits."),
        (lambda out, x, t: not torch.allclose(out.sum(-1), torch.ones(())), "each row must sum to 1: normalise."),
    ]
    check_function(fn, softmax_with_temperature, "softmax_with_temperature", cases, hints, nonfinite_hint=OVERFLOW)


# --- Exercise 2: top-p (nucleus) filtering -----------------------------------------------------------------


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    sorted_probs = probs.sort(dim=-1, descending=True).values
    kept = sorted_probs.cumsum(dim=-1) - sorted_probs < p  # the mass before a token is still below p
    threshold = sorted_probs.masked_fill(~kept, float("inf")).amin(dim=-1, keepdim=True)
    return logits.masked_fill(probs < threshold, float("-inf"))  # ties with the last kept token stay


def _drop_crossing_token(logits, p):
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    drop_sorted = sorted_probs.cumsum(dim=-1) > p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _unsorted(logits, p):
    probs = torch.softmax(logits, dim=-1)
    return logits.masked_fill(probs.cumsum(dim=-1) - probs >= p, float("-inf"))


def _drops_a_tie(out, logits, p):
    """Keeps a subset of the nucleus, and every token left out is tied with the nucleus' least probable token."""
    kept, expected = torch.isfinite(out), torch.isfinite(top_p_filter(logits, p))
    probs = torch.softmax(logits, dim=-1)
    threshold = probs.masked_fill(~expected, float("inf")).amin(dim=-1, keepdim=True)
    missing = expected & ~kept
    return bool(missing.any() and not (kept & ~expected).any() and (probs[missing] == threshold.expand_as(probs)[missing]).all())


def check_top_p_filter(fn) -> None:
    cases = [
        (torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])), 0.7),  # keeps 0.5 and 0.3 (0.8 >= 0.7)
        (torch.log(torch.tensor([0.05, 0.15, 0.3, 0.5])), 0.7),  # same, shuffled
        (torch.log(torch.tensor([0.6, 0.25, 0.1, 0.05])), 0.5),  # the top token alone
        (torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1])), 1.0),  # keeps everything
        (_random_logits(2, 3, 40), 0.9),
        (_random_logits(3, 5, 17, scale=1.0), 0.6),
        (_random_logits(4, 2, 3, 11), 0.3),  # [batch, seq, vocab]: the docstring promises [..., vocab]
        (torch.tensor([[2.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 3.0, 0.0, 3.0]]), 0.6),  # ties at the boundary
        (torch.tensor([[1000.0, 999.0, 0.0, -1000.0], [-1000.5, -1000.0, -1001.0, -1003.0]]), 0.9),  # extreme logits
    ]
    hints = [
        (same_as(_drop_crossing_token), "keep the token that takes the cumulative probability past p (the nucleus "
                               "is the smallest set whose mass reaches p)."),  # fmt: skip
        (same_as(_unsorted), "sort tokens by probability (descending) before accumulating."),
        (same_as(lambda x, p: torch.softmax(top_p_filter(x, p), dim=-1)), "return filtered logits, not probabilities."),
        (_drops_a_tie, "a token tied in probability with the least probable token you keep must be kept too (the "
                       "statement's tie rule): compare probabilities with a threshold, not positions in the sorted order."),
        (lambda out, x, p: bool(x.abs().max() >= 1000), OVERFLOW),
        (lambda out, x, p: bool((torch.isinf(out) & torch.isfinite(top_p_filter(x, p))).any()),
         "you set to -inf a token of the nucleus: keep every token until the mass before it reaches p."),
    ]  # fmt: skip
    check_function(fn, top_p_filter, "top_p_filter", cases, hints)


# --- Exercise 3: log-probability of a sequence -------------------------------------------------------------


def sequence_logprob(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
    return logprobs.gather(-1, tokens[:, 1:, None]).squeeze(-1).sum(dim=-1)


def check_sequence_logprob(fn) -> None:
    def case(seed, batch, seq, vocab):
        g = torch.Generator().manual_seed(seed)
        return _random_logits(seed, batch, seq, vocab), torch.randint(vocab, (batch, seq), generator=g)

    extreme = _random_logits(7, 2, 5, 13, scale=1000.0), torch.randint(13, (2, 5), generator=torch.Generator().manual_seed(7))
    cases = [case(4, 1, 3, 5), case(5, 2, 6, 11), case(6, 4, 9, 30), case(8, 3, 2, 7), extreme]
    shift = "shift by one: the logits at position t predict the token at position t+1."
    hints = [
        (same_as(lambda lg, t: torch.log_softmax(lg, -1)[:, :-1].gather(-1, t[:, :-1, None]).squeeze(-1).sum(-1)),
         shift),
        (same_as(lambda lg, t: torch.log_softmax(lg, -1).gather(-1, t[..., None]).squeeze(-1).sum(-1)),
         shift + " The first token has no prediction."),
        (same_as(lambda lg, t: lg[:, :-1].gather(-1, t[:, 1:, None]).squeeze(-1).sum(-1)),
         "turn logits into log-probabilities with log_softmax before gathering."),
        (same_as(lambda lg, t: sequence_logprob(lg, t) / (t.shape[1] - 1)), "sum the log-probabilities, don't average them."),
    ]  # fmt: skip
    unstable = ("log(softmax(x)) is log 0 = -inf, and a log-sum-exp without the maximum subtracted overflows, for "
                "logits near ±1000: use torch.log_softmax.")  # fmt: skip
    check_function(fn, sequence_logprob, "sequence_logprob", cases, hints, nonfinite_hint=unstable)
