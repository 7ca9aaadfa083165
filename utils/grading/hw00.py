"""Graders for homework 00 (warm-up): temperature, top-p filtering, sequence log-probability."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from utils.grading import draws
from utils.grading.core import check_property, same_as

OVERFLOW = ("exp() overflows for logits near 1000 (and 0/0 appears when every logit is near -1000): subtract each "
            "row's maximum first, or use torch.softmax / torch.log_softmax.")  # fmt: skip

# logits of any shape [..., vocab], ties and ±1000 included
LOGITS = draws.logits(draws.shapes(min_dims=1, max_dims=3, max_side=6))


# --- Exercise 1: softmax with temperature ------------------------------------------------------------------


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits.double() / temperature, dim=-1).to(logits.dtype)


def _rounding_of(logits: torch.Tensor, temperature: float) -> dict:
    """logits / T is exact only to a float32 rounding of its size: near 1000 / 0.05, that moves the probabilities."""
    return {"atol": 1e-5 + 4 * torch.finfo(logits.dtype).eps * float(logits.abs().max()) / temperature, "rtol": 1e-4}


def check_softmax_with_temperature(fn) -> None:
    temperatures = st.one_of(st.sampled_from([1.0, 0.5, 2.0, 0.05, 20.0]), draws.floats(0.05, 20.0))
    examples = [
        (torch.tensor([2.0, 1.0, 0.0]), 0.5),
        (torch.tensor([[1000.0, 999.0, 0.0], [0.0, 0.0, 0.0], [-1000.0, -1001.0, -1002.0]]), 2.0),  # a naive exp fails
        (torch.tensor([1000.0, -1000.0, 0.0]), 1.0),  # a row's mean or minimum is no safe shift
        (torch.tensor([0.0, -200.0]), 20.0),  # softmax(x) ** (1 / T) underflows
        (torch.tensor([1.0, 0.9]), 0.05),  # the smallest temperature allowed
        (torch.tensor([3.0]), 0.1),  # a vocabulary of one
    ]
    hints = [
        (same_as(lambda x, t: torch.softmax(x, dim=-1)), "the temperature has no effect: divide the logits by it."),
        (same_as(lambda x, t: torch.softmax(x * t, dim=-1)), "divide the logits by the temperature, don't multiply."),
        (same_as(lambda x, t: torch.softmax(x / t, dim=0)), "normalise over the last dimension (the vocabulary)."),
        (same_as(lambda x, t: x / t), "return probabilities: apply a softmax to the scaled logits."),
        (lambda out, x, t: not torch.allclose(out.sum(-1), torch.ones(())), "each row must sum to 1: normalise."),
    ]
    check_property(fn, softmax_with_temperature, "softmax_with_temperature", st.tuples(LOGITS, temperatures),
                   examples, hints, nonfinite_hint=OVERFLOW, tol=_rounding_of)


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


BOUNDARY = 1e-6  # a nucleus whose mass equals p within this is a cut up to rounding: either side passes


def _at_either_side_of_p(out, logits, p):
    """Each row equals the reference's row for p a hair lower or a hair higher (the mass equals p up to rounding)."""
    rows, low, high = out.reshape(-1, out.shape[-1]), top_p_filter(logits, p - BOUNDARY), top_p_filter(logits, p + BOUNDARY)
    low, high = low.reshape(rows.shape), high.reshape(rows.shape)
    return all(torch.equal(r, a) or torch.equal(r, b) for r, a, b in zip(rows, low, high, strict=True))


def _p_at_a_cut(logits: torch.Tensor, data) -> float:
    """p equal to the mass of a row's j most probable tokens (the cut the nucleus rule is about), or a hair off it
    (5e-5, 1e-5: then the rule decides, not rounding)."""
    probs = torch.softmax(logits.reshape(-1, logits.shape[-1])[0].double(), dim=-1).sort(descending=True).values
    mass = float(probs[: data.draw(st.integers(1, len(probs)))].sum())
    return min(1.0, mass + data.draw(st.sampled_from([0.0, 0.0, 5e-5, -5e-5, 1e-5, -1e-5])))


def _top_p_inputs():
    p_values = st.one_of(st.sampled_from([1.0, 0.5, 0.995, 0.999]), draws.floats(0.01, 1.0))
    drawn = st.tuples(LOGITS, p_values)
    at_cut = st.tuples(LOGITS, st.data()).map(lambda ld: (ld[0], _p_at_a_cut(ld[0], ld[1])))
    return st.one_of(drawn, at_cut.filter(lambda lp: lp[1] > 0))


def check_top_p_filter(fn) -> None:
    examples = [
        (torch.log(torch.tensor([0.3, 0.05, 0.5, 0.15])), 0.7),  # keeps 0.5 and 0.3 (0.8 >= 0.7), not sorted
        (torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1])), 1.0),  # keeps everything
        (torch.tensor([[2.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 3.0, 0.0, 3.0]]), 0.6),  # ties at the boundary
        (torch.tensor([[1000.0, 999.0, 0.0, -1000.0], [-1000.5, -1000.0, -1001.0, -1003.0]]), 0.9),  # extreme logits
        (torch.tensor([10.0, 0.0]), 0.995),  # p close to 1 still cuts
        (torch.tensor([2.0, 1.0005, 1.0, 0.0]), float(torch.softmax(torch.tensor([2.0, 1.0005, 1.0, 0.0]).double(), -1)[0])
         + 1e-3),  # 1.0005 is kept, 1.0 is not: nearly as probable is not tied
    ]
    hints = [
        (same_as(_drop_crossing_token), "keep the token that takes the cumulative probability past p (the nucleus "
                               "is the smallest set whose mass reaches p)."),  # fmt: skip
        (same_as(lambda x, p: x), "no token was filtered: the tokens outside the nucleus must become infinite (-inf)."),
        (same_as(_unsorted), "sort tokens by probability (descending) before accumulating."),
        (same_as(lambda x, p: torch.softmax(top_p_filter(x, p), dim=-1)), "return filtered logits, not probabilities."),
        (_drops_a_tie, "a token tied in probability with the least probable token you keep must be kept too (the "
                       "statement's tie rule): compare probabilities with a threshold, not positions in the sorted order."),
        (lambda out, x, p: bool(x.abs().max() >= 1000), OVERFLOW),
        (lambda out, x, p: bool((torch.isinf(out) & torch.isfinite(top_p_filter(x, p))).any()),
         "you set to -inf a token of the nucleus: keep every token until the mass before it reaches p."),
    ]  # fmt: skip
    check_property(fn, top_p_filter, "top_p_filter", _top_p_inputs(), examples, hints, accept=_at_either_side_of_p)


# --- Exercise 3: log-probability of a sequence -------------------------------------------------------------


def sequence_logprob(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
    return logprobs.gather(-1, tokens[:, 1:, None]).squeeze(-1).sum(dim=-1)


def _sequence_inputs(batch: int, seq: int, vocab: int):
    tokens = draws.tensors((batch, seq), st.integers(0, vocab - 1), torch.int64)
    return st.tuples(draws.logits((batch, seq, vocab)), tokens)


def _float32_error(logits, tokens) -> dict:
    """A float32 log-softmax at logits near ±1000 is exact only to about 1e-4 per token: the sum's tolerance grows."""
    return {"atol": 1e-5 + 2e-7 * float(logits.abs().max()) * tokens.shape[1], "rtol": 1e-4}


def check_sequence_logprob(fn) -> None:
    sizes = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 8))
    spread = torch.tensor([[[0.0, 1000.0, -1000.0], [5.0, -995.0, 1000.0], [0.0, 0.0, 0.0]]])  # log(softmax) is -inf
    scales = torch.tensor([[[1000.0, 999.0], [0.0, -1.0], [0.0, 0.0]]])  # one maximum for all positions overflows
    examples = [(spread, torch.tensor([[0, 2, 1]])), (scales, torch.tensor([[0, 1, 0]])),
                (torch.zeros(2, 1, 3), torch.tensor([[0], [2]]))]  # one token: 0
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
    check_property(fn, sequence_logprob, "sequence_logprob", sizes.flatmap(lambda s: _sequence_inputs(*s)), examples,
                   hints, nonfinite_hint=unstable, tol=_float32_error)
