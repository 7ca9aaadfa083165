"""Graders for homework 02 (inside a language model): a difference-of-means direction, steering, the logit lens,
a TopK SAE encoder, scoring SAE features against ground truth, and a patchscope."""

from __future__ import annotations

from functools import cache

import torch

from utils.grading.core import check_function, same_as
from utils.hooks import blocks, residual_stream
from utils.interp import set_residual


def _randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# --- Exercise 1: difference of means -----------------------------------------------------------------------


def difference_of_means(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    return positive.mean(dim=0) - negative.mean(dim=0)


def check_difference_of_means(fn) -> None:
    cases = [
        (torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 1.0]])),
        (_randn(0, 5, 8) + 2, _randn(1, 7, 8)),
        (_randn(2, 30, 16, scale=3.0), _randn(3, 11, 16)),
    ]
    hints = [
        (same_as(lambda p, n: n.mean(0) - p.mean(0)), "the sign is reversed: positive minus negative."),
        (same_as(lambda p, n: p.sum(0) - n.sum(0)), "take the mean of each group, not the sum (the groups differ in size)."),
        (same_as(lambda p, n: torch.cat([p, n]).mean(0)), "subtract the negative mean; don't pool the two groups."),
        (same_as(lambda p, n: difference_of_means(p, n) / difference_of_means(p, n).norm()),
         "return the raw difference; its length is part of the measurement (normalise where you steer)."),
    ]  # fmt: skip
    check_function(fn, difference_of_means, "difference_of_means", cases, hints)


# --- Exercise 2: adding a direction to the residual stream -------------------------------------------------


def add_direction(resid: torch.Tensor, direction: torch.Tensor, alpha: float) -> torch.Tensor:
    return resid + alpha * direction / direction.norm()


def check_add_direction(fn) -> None:
    cases = [
        (torch.zeros(1, 2, 3), torch.tensor([3.0, 0.0, 4.0]), 1.0),
        (_randn(4, 2, 5, 8), _randn(5, 8, scale=4.0), 2.5),
        (_randn(6, 3, 7, 16), _randn(7, 16, scale=0.3), -4.0),
    ]
    hints = [
        (same_as(lambda r, d, a: r + a * d), "normalise the direction to unit length before scaling it by alpha."),
        (same_as(lambda r, d, a: r - a * d / d.norm()), "add alpha times the direction; the caller passes a negative "
                                                         "alpha to subtract."),  # fmt: skip
        (same_as(lambda r, d, a: torch.cat([r[:, :-1], (r[:, -1:] + a * d / d.norm())], 1)),
         "add the direction at every position, not only the last one."),
        (same_as(lambda r, d, a: r + d / d.norm()), "scale the unit direction by alpha."),
    ]  # fmt: skip
    check_function(fn, add_direction, "add_direction", cases, hints)


# --- Exercise 3: the logit lens ----------------------------------------------------------------------------


def logit_lens(resid: torch.Tensor, final_norm: torch.nn.Module, unembedding: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(final_norm(resid) @ unembedding.T, dim=-1)


def _lens_case(seed: int, layers: int, seq: int, d_model: int, vocab: int):
    norm = torch.nn.LayerNorm(d_model)
    with torch.no_grad():
        norm.weight.copy_(1 + _randn(seed + 1, d_model, scale=0.2))
        norm.bias.copy_(_randn(seed + 2, d_model, scale=0.1))
    return _randn(seed, layers, seq, d_model, scale=5.0) + 3, norm, _randn(seed + 3, vocab, d_model)


def check_logit_lens(fn) -> None:
    cases = [_lens_case(0, 2, 3, 4, 6), _lens_case(10, 5, 4, 16, 30), _lens_case(20, 3, 6, 32, 50)]
    hints = [
        (same_as(lambda r, n, u: torch.log_softmax(r @ u.T, dim=-1)),
         "apply the final norm before the unembedding: the last layer's stream is normalised before it is decoded."),
        (same_as(lambda r, n, u: n(r) @ u.T), "return log-probabilities: apply log_softmax to the logits."),
        (same_as(lambda r, n, u: torch.softmax(n(r) @ u.T, dim=-1)), "return log-probabilities, not probabilities."),
        (same_as(lambda r, n, u: torch.log_softmax(n(r) @ u.T, dim=0)), "normalise over the vocabulary (last dimension)."),
    ]  # fmt: skip
    check_function(fn, logit_lens, "logit_lens", cases, hints, atol=1e-4)


# --- Exercise 4: the TopK SAE encoder ----------------------------------------------------------------------


def topk_encode(
    x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor, k: int
) -> torch.Tensor:
    pre = (x - b_dec) @ W_enc + b_enc
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())


def _sae_case(seed: int, n: int, d: int, f: int, k: int):
    return _randn(seed, n, d, scale=2.0), _randn(seed + 1, d, f), _randn(seed + 2, f), _randn(seed + 3, d), k


def _no_relu(x, W, be, bd, k):
    pre = (x - bd) @ W + be
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values)


def _top_abs(x, W, be, bd, k):
    pre = (x - bd) @ W + be
    idx = pre.abs().topk(k, dim=-1).indices
    return torch.zeros_like(pre).scatter(-1, idx, pre.gather(-1, idx).relu())


def check_topk_encode(fn) -> None:
    cases = [
        (torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0]]),
         torch.zeros(3), torch.zeros(2), 1),
        _sae_case(0, 4, 8, 32, 4),
        _sae_case(10, 16, 16, 64, 8),
        (_randn(20, 6, 8), _randn(21, 8, 40), _randn(22, 40) - 8, _randn(23, 8), 12),  # few positive pre-activations
    ]  # fmt: skip
    hints = [
        (
            same_as(lambda x, W, be, bd, k: topk_encode(x + bd, W, be, bd, k)),
            "subtract the decoder bias b_dec from x before encoding.",
        ),
        (same_as(_no_relu), "apply a ReLU to the kept values: a feature's activation is never negative."),
        (same_as(_top_abs), "keep the k largest pre-activations, not the k largest in absolute value."),
        (
            same_as(lambda x, W, be, bd, k: ((x - bd) @ W + be).relu()),
            "keep only the top k features per row; set the rest to zero.",
        ),  # fmt: skip
    ]
    check_function(fn, topk_encode, "topk_encode", cases, hints, atol=1e-4)


# --- Exercise 5: scoring a feature against ground truth ----------------------------------------------------


def feature_f1(active: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    active, labels = active.float(), labels.float()
    hits = labels @ active
    precision = hits / active.sum(0).clamp_min(1)
    recall = hits / labels.sum().clamp_min(1)
    return torch.where(hits > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12), 0.0)


def _bools(seed: int, *shape: int, p: float) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p


def _precision(active, labels):
    return (labels.float() @ active.float()) / active.float().sum(0).clamp_min(1)


def _recall(active, labels):
    return (labels.float() @ active.float()) / labels.float().sum().clamp_min(1)


def check_feature_f1(fn) -> None:
    labels = _bools(1, 200, p=0.2)
    faithful = labels[:, None] | _bools(
        2, 200, 1, p=0.05
    )  # a good feature: fires on the concept, rarely elsewhere
    cases = [
        (torch.tensor([[True, False, True], [True, False, False], [False, False, True], [False, False, True]]),
         torch.tensor([True, True, False, False])),
        (torch.cat([faithful, _bools(3, 200, 20, p=0.1), labels[:, None] & _bools(4, 200, 1, p=0.5)], 1), labels),
        (_bools(5, 300, 50, p=0.3), _bools(6, 300, p=0.4)),
    ]  # fmt: skip
    hints = [
        (
            same_as(_precision),
            "that is the precision (how often the feature is right when it fires); F1 combines it "
            "with the recall.",
        ),  # fmt: skip
        (
            same_as(_recall),
            "that is the recall (how much of the concept the feature covers); F1 combines it with the "
            "precision.",
        ),  # fmt: skip
        (
            same_as(lambda a, y: (_precision(a, y) + _recall(a, y)) / 2),
            "F1 is the harmonic mean 2PR/(P+R), not the arithmetic mean.",
        ),  # fmt: skip
        (
            lambda out, a, y: bool(torch.isnan(out).any()),
            "a feature that never fires has F1 0, not NaN: guard the divisions.",
        ),  # fmt: skip
    ]
    check_function(fn, feature_f1, "feature_f1", cases, hints)


# --- Exercise 6: a patchscope ------------------------------------------------------------------------------


@torch.no_grad()
def patchscope(model, source_ids: torch.Tensor, source_pos: int, target_ids: torch.Tensor, target_pos: int,
               layer: int) -> torch.Tensor:  # fmt: skip
    state = residual_stream(model, source_ids)[layer + 1, :, source_pos]
    with set_residual(model, layer, target_pos, state):
        return model(target_ids).logits[0, -1]


@cache
def _tiny_model():
    from utils.models import load_model

    return load_model("tinyworld-chat")


def check_patchscope(fn) -> None:
    model, tokenizer = _tiny_model()
    n_layers = len(blocks(model))

    def ids(text):
        return tokenizer("<|bos|>" + text, return_tensors="pt", add_special_tokens=False).input_ids

    from utils.tinyworld.world import load_world

    world = load_world()
    rng = torch.Generator().manual_seed(0)
    people, countries = list(world.people), list(world.countries)
    cases = [(model, ids(f"The capital of {countries[0]} is"), 4, ids("Xo was born in"), 1, 0)]
    for _ in range(3):
        person = people[torch.randint(len(people), (1,), generator=rng).item()]
        source = ids(f"{person} works as a")
        last_name_token = source.shape[1] - 4
        cases.append((model, source, last_name_token, ids("Xo works for"), 1,
                      torch.randint(1, n_layers - 1, (1,), generator=rng).item()))  # fmt: skip

    def at_layer(shift):
        return lambda m, s, sp, t, tp, layer: patchscope(
            m, s, sp, t, tp, min(max(layer + shift, 0), n_layers - 1)
        )

    hints = [
        (same_as(lambda m, s, sp, t, tp, layer: model(t).logits[0, -1]),
         "the output equals the unpatched target's: did the patch reach the forward pass (and the target position)?"),
        (same_as(lambda m, s, sp, t, tp, layer: patchscope(m, s, -1, t, tp, layer)),
         "take the source state at source_pos, not at the source's last token."),
        (same_as(at_layer(-1)), "patch the residual stream after block `layer` (residual_stream index layer + 1)."),
        (same_as(at_layer(1)), "patch the residual stream after block `layer`, not after the next block."),
        (same_as(lambda *a: patchscope(*a).softmax(-1)), "return the logits, not probabilities."),
    ]  # fmt: skip
    with torch.no_grad():
        check_function(fn, patchscope, "patchscope", cases, hints, atol=1e-3)
