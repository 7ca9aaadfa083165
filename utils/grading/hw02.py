"""Graders for homework 02 (inside a language model): logit-lens ranks from Hugging Face hidden states, the L1
sparse-autoencoder objective, a linear relational model fitted by ridge regression, neuron ablation through a
forward hook, and the shape of the student's study (fit and evaluation apart, a control, an interval).

Every check draws its inputs at run time over the statement's whole domain (Hypothesis, seeded by the check's
name: `core.holds`, `core.check_property`): hidden states, norms and unembeddings with ties; tensors of any
leading shape, float32 and float64; regressions with fewer examples than dimensions; prompts of random models
whose real tokens may carry the pad id. Shapes repeat with other contents, so that a cache keyed on shapes fails.
The student's function runs through `core.call` (copies handed over; hooks, weights, mode and methods of a model
guarded, submodules swapped and a module class's forward replaced included).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Hashable

import numpy as np
import torch
from hypothesis import strategies as st

from utils.grading import draws
from utils.grading.core import (
    GradingError,
    call,
    check_property,
    compare,
    confirmed,
    copies,
    describe,
    graded,
    holds,
    matches,
    same_as,
    show,
)
from utils.hooks import blocks, position_ids
from utils.interp import edit_input, mlp_out_proj

EPS32 = torch.finfo(torch.float32).eps


def _randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _values(dtype: torch.dtype = torch.float32, low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[float]:
    """Floats in [low, high], often exactly 0, 1 or -1 (ties, dead units, zero rows)."""
    return st.one_of(st.sampled_from([0.0, 1.0, -1.0]), draws.floats(low, high, 32 if dtype == torch.float32 else 64))


# --- random models built inside the graders ----------------------------------------------------------------


def gpt2(seed: int, n_layer: int = 3, d: int = 32, vocab: int = 64, d_mlp: int = 96, logit_scale: float = 1.0):
    """A random GPT-2 (LayerNorm, Conv1D projections, untied unembedding), in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_embd=d, n_layer=n_layer, n_head=4, n_inner=d_mlp, n_positions=64,
                        tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, pad_token_id=2)  # fmt: skip
    model = GPT2LMHeadModel(config).eval()
    _perturb_norms(model, seed)
    with torch.no_grad():
        model.lm_head.weight.mul_(logit_scale)
    return model


def llama_like(seed: int, n_layer: int = 2, d: int = 32, vocab: int = 64, d_mlp: int = 80):
    """A random Qwen2 (RMSNorm, gated MLP with down_proj, Linear projections), in eval mode."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=vocab, hidden_size=d, intermediate_size=d_mlp, num_hidden_layers=n_layer,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)  # fmt: skip
    model = Qwen2ForCausalLM(config).eval()
    _perturb_norms(model, seed)
    return model


def _perturb_norms(model, seed: int) -> None:
    """Norm weights away from 1 (and biases away from 0), so that a norm applied twice or skipped shows."""
    with torch.no_grad():
        for i, m in enumerate(model.modules()):
            if "Norm" in type(m).__name__:
                m.weight.copy_(1 + _randn(seed + i, *m.weight.shape, scale=0.5))
                if getattr(m, "bias", None) is not None:
                    m.bias.copy_(_randn(seed + 100 + i, *m.bias.shape, scale=0.3))


# --- Exercise 1: the answer's rank under the logit lens, from Hugging Face hidden states --------------------


def answer_ranks(hidden_states: tuple[torch.Tensor, ...], final_norm: torch.nn.Module, unembedding: torch.Tensor,
                 answer_ids: torch.Tensor, position: int) -> torch.Tensor:  # fmt: skip
    states = [final_norm(h[:, position]) for h in hidden_states[:-1]] + [hidden_states[-1][:, position]]
    logits = torch.stack(states) @ unembedding.T  # [layers + 1, batch, vocab]
    answer = logits.gather(-1, answer_ids.expand(len(states), -1)[..., None])
    return 1 + (logits > answer).sum(-1)


def _ranks_from_logits(logits: torch.Tensor, answer_ids: torch.Tensor) -> torch.Tensor:
    return 1 + (logits > logits.gather(-1, answer_ids.expand(len(logits), -1)[..., None])).sum(-1)


def _ranks_variant(norm_last: bool = False, norm_rest: bool = True, probabilities: bool = False,
                   argsort: bool = False, ties_count: bool = False, last_position: bool = False):  # fmt: skip
    def ranks(hs, norm, U, answers, position):
        position = -1 if last_position else position
        states = [norm(h[:, position]) if norm_rest else h[:, position] for h in hs[:-1]]
        states.append(norm(hs[-1][:, position]) if norm_last else hs[-1][:, position])
        logits = torch.stack(states) @ U.T
        if probabilities:
            logits = logits.softmax(-1)
        if argsort:
            order = logits.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1) + 1
            return order.gather(-1, answers.expand(len(states), -1)[..., None])[..., 0]
        if ties_count:
            return (logits >= logits.gather(-1, answers.expand(len(states), -1)[..., None])).sum(-1)
        return _ranks_from_logits(logits, answers)

    return ranks


def _norm(kind: str, weight: torch.Tensor, bias: torch.Tensor) -> torch.nn.Module:
    """A final norm of the kind Hugging Face models use, with the given weight (and bias for a LayerNorm)."""
    norm = torch.nn.LayerNorm(len(weight)) if kind == "LayerNorm" else torch.nn.RMSNorm(len(weight), eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(weight)
        if kind == "LayerNorm":
            norm.bias.copy_(bias)
    return norm.eval()


NEAR = (1 + 2**-12, 1 - 2**-12)  # a row scaled by these: its logit is 0.024% off the answer's, exactly in float32


def _lens_case(states: torch.Tensor, norm: torch.nn.Module, U: torch.Tensor, answers: torch.Tensor, position: int,
               last: torch.Tensor | None = None, tied: list[tuple[int, int]] = (), scale: float = 1.0,
               near: list[tuple[int, int, float]] = ()):  # fmt: skip
    """Hidden states as Hugging Face returns them: states[:-1], then states[-1] through the final norm (or `last`,
    whole numbers, so that every way of computing its logits ties exactly where the rule says). The unembedding
    gives each (row, token) in `tied` the row of that prompt's answer, each (row, token, factor) in `near` that row
    times factor (NEAR: a logit close to the answer's but not equal, decided exactly in float32, where float16 or
    bfloat16 ties them), and is scaled by `scale`."""
    U = U.clone()
    for row, token in tied:
        U[token] = U[answers[row]]
    for row, token, factor in near:
        if token != answers[row]:
            U[token] = U[answers[row]] * factor
    with torch.no_grad():
        hidden = (*(s.clone() for s in states[:-1]), norm(states[-1]) if last is None else last)
    return hidden, norm, U * scale, answers, position


@st.composite
def _lens_inputs(draw):
    n_layers, batch, seq = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    d, vocab = draw(st.sampled_from([4, 6])), draw(st.integers(1, 9))
    states = draw(draws.tensors((n_layers + 1, batch, seq, d), _values(low=-4, high=4)))
    norm = _norm(draw(st.sampled_from(["LayerNorm", "RMSNorm"])), draw(draws.tensors((d,), _values(low=-2, high=2))),
                 draw(draws.tensors((d,), _values(low=-1, high=1))))  # fmt: skip
    whole = draw(st.booleans())  # whole numbers: the last layer's logits are exact, and often tie
    values = st.integers(-3, 3).map(float) if whole else _values()
    U = draw(draws.tensors((vocab, d), values))
    last = draw(draws.tensors((batch, seq, d), values)) if whole else None
    answers = draw(draws.tensors((batch,), st.integers(0, vocab - 1), torch.int64))
    tied = draw(st.lists(st.tuples(st.integers(0, batch - 1), st.integers(0, vocab - 1)), max_size=4))
    near = draw(st.lists(st.tuples(st.integers(0, batch - 1), st.integers(0, vocab - 1), st.sampled_from(NEAR)),
                         min_size=1 if whole else 0, max_size=4 if whole else 0))  # fmt: skip
    scale = draw(st.sampled_from([1.0, 1.0, 1024.0]))  # 1024: softmax underflows to 0 for most tokens
    return _lens_case(states, norm, U, answers, draw(st.integers(-seq, seq - 1)), last, tied, scale, near)


def _lens_example(seed: int, n_layers: int, batch: int, seq: int, vocab: int, position: int, kind: str = "LayerNorm",
                  tied: bool = False, scale: float = 1.0):  # fmt: skip
    """With `tied` (at most 4 prompts, 9 tokens), a last layer in whole numbers where the i-th prompt's answer,
    token 4 + i, shares its unembedding row with token i before it and token 8 - i after it."""
    d, g = 6, torch.Generator().manual_seed(seed)
    norm = _norm(kind, 1 + _randn(seed + 1, d, scale=0.5), _randn(seed + 2, d, scale=0.3))
    states = _randn(seed + 3, n_layers + 1, batch, seq, d, scale=2.0)
    if not tied:
        answers = torch.randint(0, vocab, (batch,), generator=g)
        return _lens_case(states, norm, _randn(seed + 4, vocab, d), answers, position, scale=scale)
    answers, whole = 4 + torch.arange(batch), lambda *shape: torch.randint(-3, 4, shape, generator=g).float()
    ties = [(i, token) for i in range(batch) for token in (i, 8 - i)]
    return _lens_case(states, norm, whole(vocab, d), answers, position, whole(batch, seq, d), ties, scale)


def _near_example():
    """One prompt whose last state is e_0 at position 1 of 3, and unembedding column 0 = [1, 1.0002, 1.0005, 0]: in
    the last layer the answer, token 0, has rank 3 (logits 0.02% and 0.05% above it count); float16 logits tie it
    with 1.0002, bfloat16 with both, a margin of 1e-3 with both."""
    norm = _norm("LayerNorm", 1 + _randn(51, 4, scale=0.5), _randn(52, 4, scale=0.3))
    last = torch.zeros(1, 3, 4)
    last[0, 1, 0], last[0, 2] = 1.0, torch.tensor([0.0, 1.0, -1.0, 2.0])  # position 2: what the last position reads
    U = torch.cat([torch.tensor([[1.0], [1.0002], [1.0005], [0.0]]), _randn(53, 4, 3)], 1)
    return _lens_case(_randn(54, 3, 1, 3, 4, scale=2.0), norm, U, torch.tensor([0]), 1, last)


def _dyadic_bits(x: torch.Tensor) -> torch.Tensor:
    """Per row (last dimension): the least k <= 24 for which every entry times 2^k is a whole number, else 99."""
    x, bits = x.double(), torch.full(x.shape[:-1], 99)
    for k in range(24, -1, -1):
        bits = torch.where((x * 2.0**k == (x * 2.0**k).round()).all(-1), k, bits)
    return bits


def _lens_logits(hidden_states, norm, U, position) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The lens' logits in float64; the size of each [layer, prompt] row (the largest sum of |products|, keepdim);
    and whether the row is exact in float32: states and unembedding on a grid of 2^-k whose products sum to less
    than 2^20 steps of it (whole numbers, and rows scaled by NEAR), so that every float32 computation, a
    log-softmax's included, keeps their order and their ties."""
    with torch.no_grad():
        states = torch.stack([norm(h[:, position]) for h in hidden_states[:-1]] + [hidden_states[-1][:, position]])
    states, U = states.double(), U.double()
    sizes = (states.abs() @ U.abs().T).amax(-1)  # [layers + 1, batch]
    grid = _dyadic_bits(states) + _dyadic_bits(U.reshape(1, -1))[0]
    exact = (grid <= 48) & (sizes * 2.0 ** grid.clamp(max=48).double() < 2.0**20)
    return states @ U.T, sizes[..., None], exact[..., None]


def _ranks_within(logits, answers, slack) -> tuple[torch.Tensor, torch.Tensor]:
    """The least and the largest rank that logits allow when tokens within `slack` of the answer may go either way."""
    answer = logits.gather(-1, answers.expand(len(logits), -1)[..., None])
    others = torch.ones_like(logits, dtype=torch.bool).scatter(-1, answers.expand(len(logits), -1)[..., None], False)
    return 1 + ((logits > answer + slack) & others).sum(-1), 1 + ((logits > answer - slack) & others).sum(-1)


def _ranks_up_to_rounding(out, hidden_states, norm, U, answers, position) -> bool:
    """Ranks that differ from the exact ones only by tokens whose logit is within float32 rounding of the answer's
    (where states and unembedding are exact in float32, such as whole numbers, nothing is ambiguous: ties are
    ties, and a logit 0.024% above the answer's is above it)."""
    if not isinstance(out, torch.Tensor) or out.is_floating_point() or out.shape != (len(hidden_states), len(answers)):
        return False
    logits, sizes, exact = _lens_logits(hidden_states, norm, U, position)
    slack = torch.where(exact, 0.0, 1e-5 * (1 + sizes))  # log-softmax: rounding of the log-sum
    low, high = _ranks_within(logits, answers, slack)
    return bool(((low <= out) & (out <= high)).all())


def _low_precision(out, hidden_states, norm, U, answers, position) -> bool:
    """Wrong ranks only where tokens lie within 1% of the logits' size of the answer's without being tied with it
    (exactly): what float16 or bfloat16 logits, or a margin, do."""
    if not isinstance(out, torch.Tensor) or out.shape != (len(hidden_states), len(answers)):
        return False
    logits, sizes, _ = _lens_logits(hidden_states, norm, U, position)
    band = 1e-2 * sizes
    want = _ranks_from_logits(logits, answers)
    answer = logits.gather(-1, answers.expand(len(logits), -1)[..., None])
    close = ((logits - answer).abs() <= band) & (logits != answer)
    low, high = _ranks_within(logits, answers, band)
    wrong = out != want
    return bool(wrong.any() and (close.any(-1) | ~wrong).all() and ((low <= out) & (out <= high)).all())


_low_precision.exact = True  # tried before the same_as hints: on a small input they can explain it by chance


@graded("answer_ranks")
def check_answer_ranks(fn) -> None:
    examples = [
        _lens_example(0, 2, 3, 5, 9, -1, tied=True),  # ties before and after the answer
        _near_example(),  # logits 0.02% and 0.05% above the answer's: above it, as float32 and float64 say
        _lens_example(1, 2, 3, 5, 9, -1),  # the same shapes, other contents: a cache keyed on shapes fails
        _lens_example(2, 3, 2, 4, 8, 0, kind="RMSNorm"),  # the first position
        _lens_example(3, 2, 2, 4, 8, -2, scale=1024.0),  # huge logits: probabilities underflow to 0 and tie
        _lens_example(4, 1, 1, 1, 1, 0),  # one block, one prompt of one token, a vocabulary of one
    ]
    hints = [
        (_low_precision, "a token whose logit is above the answer's by a little (0.05%) counts: compute the logits "
         "(or log-probabilities) in float32 or float64 and compare them with >, with no margin; float16 and bfloat16 "
         "(or a cast to integers) round close logits to one value, and then they tie."),
        (same_as(_ranks_variant(norm_last=True)), "the last entry of hidden_states has already been through the "
         "final norm (Hugging Face applies it before returning it): don't normalise it a second time."),
        (same_as(_ranks_variant(norm_rest=False)), "apply the final norm to every entry except the last before the "
         "unembedding: the lens decodes a state the way the model decodes its last one."),
        (same_as(_ranks_variant(last_position=True)), "read the states at `position`, not always at the last one."),
        (same_as(lambda *a: answer_ranks(*a) - 1), "ranks start at 1: the top token has rank 1."),
        (same_as(_ranks_variant(argsort=True)), "a token tied with the answer must not push it down: rank = 1 + the "
         "number of tokens with a strictly larger logit (a sort puts tied tokens in an arbitrary order)."),
        (same_as(_ranks_variant(ties_count=True)), "a token tied with the answer must not push it down: count the "
         "tokens with a strictly larger logit (>), not those with a larger or equal one (>=), then add 1."),
        (same_as(_ranks_variant(probabilities=True)), "compare logits (or log-probabilities), not probabilities: for "
         "large logits softmax underflows to 0 and unrelated tokens tie."),
    ]  # fmt: skip
    check_property(fn, answer_ranks, "answer_ranks", _lens_inputs(), examples, hints, max_examples=50,
                   tol={"atol": 0, "rtol": 0}, accept=_ranks_up_to_rounding)  # fmt: skip


# --- Exercise 2: the sparse-autoencoder objective with an L1 penalty ----------------------------------------


def sae_objective(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                  lam: float) -> torch.Tensor:  # fmt: skip
    f = torch.relu((x - b_dec) @ W_enc + b_enc)
    x_hat = f @ W_dec + b_dec
    return ((x - x_hat) ** 2).sum(-1).mean() + lam * (f * W_dec.norm(dim=-1)).sum(-1).mean()


def _sae_variant(center=True, relu=True, dec_norm=True, token_mean=True, dim_sum=True, dec_bias=True, pre_abs=False):
    def objective(x, W_enc, b_enc, W_dec, b_dec, lam):
        pre = ((x - b_dec) if center else x) @ W_enc + b_enc
        f = torch.relu(pre) if relu else pre
        x_hat = f @ W_dec + (b_dec if dec_bias else 0)
        err = (x - x_hat) ** 2
        err = err.sum(-1) if dim_sum else err.mean(-1)
        penalty = ((pre.abs() if pre_abs else f.abs()) * (W_dec.norm(dim=-1) if dec_norm else 1)).sum(-1)
        reduce = torch.mean if token_mean else torch.sum
        return reduce(err) + lam * reduce(penalty)

    return objective


def _sae_inputs(smooth: bool = False):
    """(x, W_enc, b_enc, W_dec, b_dec, lam): x of any leading shape (none, one token, [batch, seq]), float32 or
    float64. `smooth`: no value exactly at a kink (a pre-activation of 0, a decoder row of 0), for gradients."""

    @st.composite
    def inputs(draw):
        dtype = draw(st.sampled_from([torch.float32, torch.float64]))
        lead = draw(draws.shapes(min_dims=0, max_dims=2, max_side=3))
        d, d_sae = draw(st.integers(1, 4)), draw(st.integers(1, 5))
        values = draws.floats(-3, 3, 32 if dtype == torch.float32 else 64) if smooth else _values(dtype)
        x, W_enc, b_enc, W_dec, b_dec = (draw(draws.tensors(shape, values, dtype))
                                         for shape in ((*lead, d), (d, d_sae), (d_sae,), (d_sae, d), (d,)))  # fmt: skip
        lam = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.5]), draws.floats(0.0, 5.0)))
        return x, W_enc, b_enc, W_dec, b_dec, lam

    def away_from_kinks(args) -> bool:
        x, W_enc, b_enc, W_dec, b_dec, _ = args
        return bool(((x - b_dec) @ W_enc + b_enc).abs().min() > 1e-3 and W_dec.norm(dim=-1).min() > 1e-3)

    return inputs().filter(away_from_kinks) if smooth else inputs()


def _sae_scale(x, W_enc, b_enc, W_dec, b_dec, lam) -> float:
    """A bound on the size of x and x_hat: float32 rounding of the squared error grows with its square."""
    pre = ((x - b_dec).abs() @ W_enc.abs() + b_enc.abs()).max()
    return float(x.abs().max() + b_dec.abs().max() + pre * W_dec.abs().sum(0).max())


def _sae_tolerance(*args) -> dict:
    return {"atol": 1e-5 + 16 * EPS32 * (_sae_scale(*args) ** 2 + args[-1] * _sae_scale(*args)), "rtol": 1e-4}


def _sae_example(seed: int, lead: tuple[int, ...], d: int, d_sae: int, lam: float, dtype=torch.float32):
    row_norms = 0.3 + torch.rand(d_sae, 1, generator=torch.Generator().manual_seed(seed))  # decoder rows not unit
    args = (_randn(seed, *lead, d, scale=2.0) + 1, _randn(seed + 2, d, d_sae), _randn(seed + 3, d_sae) - 0.5,
            _randn(seed + 1, d_sae, d) * row_norms, _randn(seed + 4, d, scale=0.5))  # fmt: skip
    return (*(a.to(dtype) for a in args), lam)


@graded("sae_objective")
def check_sae_objective(fn) -> None:
    name = "sae_objective"
    examples = [
        _sae_example(0, (6,), 4, 10, 0.5),
        _sae_example(1, (6,), 4, 10, 0.5),  # the same shapes, other contents: a cache keyed on shapes fails
        _sae_example(10, (2, 3), 8, 24, 2.0, torch.float64),  # [batch, seq, d]: average over every token
        _sae_example(20, (), 8, 16, 0.3),  # a single token [d]
        _sae_example(30, (20,), 16, 64, 0.0),  # no penalty: reconstruction only
    ]
    hints = [
        (same_as(_sae_variant(center=False)), "subtract the decoder bias b_dec from x before encoding."),
        (same_as(_sae_variant(relu=False)), "apply a ReLU to the pre-activations: feature activations are never "
         "negative."),
        (same_as(_sae_variant(dec_norm=False)), "weight each feature's |f| by the norm of its decoder row "
         "||W_dec[k]||; otherwise the SAE escapes the penalty by shrinking f and growing W_dec."),
        (same_as(_sae_variant(token_mean=False)), "average over tokens (every leading dimension), don't sum: the "
         "loss must not grow with the batch size."),
        (same_as(_sae_variant(dim_sum=False)), "||x - x_hat||^2 sums the squared error over the d_model "
         "dimensions; don't average over them."),
        (same_as(_sae_variant(dec_bias=False)), "add the decoder bias b_dec back in the reconstruction."),
        (same_as(_sae_variant(pre_abs=True)), "penalise the feature activations f (after the ReLU), not the "
         "pre-activations."),
    ]  # fmt: skip
    check_property(fn, sae_objective, name, _sae_inputs(), examples, hints, max_examples=60, tol=_sae_tolerance,
                   nonfinite_hint="check the norms and the means.")  # fmt: skip

    # The training loop backpropagates through the loss: its gradients must be the reference's.
    def gradients_match(args):
        x, *params, lam = args
        mine = [p.clone().requires_grad_(True) for p in params]
        sae_objective(x, *mine, lam).backward()
        theirs = [p.clone().requires_grad_(True) for p in params]
        out = call(fn, (x, *theirs, lam), name, mutable=(1, 2, 3, 4))
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise GradingError(f"{name} returned a loss that does not carry gradients ({describe(out)}): don't use "
                               ".item(), .detach() or torch.no_grad() inside the objective.")  # fmt: skip
        grads = torch.autograd.grad(out, theirs, allow_unused=True)
        atol = 1e-5 + 16 * EPS32 * _sae_scale(*args) ** 2
        for label, ref, got in zip(("W_enc", "b_enc", "W_dec", "b_dec"), mine, grads, strict=True):
            if got is None or not matches(got, ref.grad, atol, 1e-3):
                raise GradingError(f"{name}: the gradient with respect to {label} differs from the reference; "
                                   "compute the loss from the parameters you are given, with torch operations only.")

    tried = holds(name, _sae_inputs(smooth=True), gradients_match, [_sae_example(40, (5,), 8, 32, 1.5)],
                  max_examples=10, reference=sae_objective)  # fmt: skip
    print(f"✓ {name}: the loss backpropagates to every parameter as the reference does ({tried} inputs).")


# --- Exercise 3: a linear relational model by ridge regression ----------------------------------------------


def fit_linear_relation(X: torch.Tensor, Y: torch.Tensor, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
    Xd, Yd = X.double(), Y.double()
    mean_x, mean_y = Xd.mean(0), Yd.mean(0)
    Xc, Yc = Xd - mean_x, Yd - mean_y
    W = torch.linalg.solve(Xc.T @ Xc + ridge * torch.eye(X.shape[1], dtype=torch.double), Xc.T @ Yc).T
    return W.to(X.dtype), (mean_y - W @ mean_x).to(X.dtype)


def _augmented_ridge(X, Y, ridge):  # a ones column inside the penalty: the bias is shrunk too
    A = torch.cat([X.double(), torch.ones(len(X), 1, dtype=torch.double)], 1)
    theta = torch.linalg.solve(A.T @ A + ridge * torch.eye(A.shape[1], dtype=torch.double), A.T @ Y.double())
    return theta[:-1].T.to(X.dtype), theta[-1].to(X.dtype)


def _no_bias(X, Y, ridge):
    Xd = X.double()
    W = torch.linalg.solve(Xd.T @ Xd + ridge * torch.eye(X.shape[1], dtype=torch.double), Xd.T @ Y.double()).T
    return W.to(X.dtype), torch.zeros(Y.shape[1], dtype=X.dtype)


def _no_ridge(X, Y, ridge):  # the minimum-norm least-squares solution
    mean_x, mean_y = X.double().mean(0), Y.double().mean(0)
    W = (torch.linalg.pinv(X.double() - mean_x) @ (Y.double() - mean_y)).T
    return W.to(X.dtype), (mean_y - W @ mean_x).to(X.dtype)


def _centred_gram(X: torch.Tensor, ridge: float) -> torch.Tensor:
    Xc = X.double() - X.double().mean(0)
    return Xc.T @ Xc + ridge * torch.eye(X.shape[1], dtype=torch.double)


@st.composite
def _relation_inputs(draw):
    """(X, Y, ridge): X with an offset (its rows do not average to 0), Y linear in X plus noise or arbitrary; ridge 0
    only where X's centred Gram matrix is well conditioned (more examples than dimensions)."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    n, d_in, d_out = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    def tensor(*shape, low=-3.0, high=3.0):
        return draw(draws.tensors(shape, _values(dtype, low, high), dtype))

    X, Y = tensor(n, d_in) + tensor(d_in, low=-5, high=5), tensor(n, d_out)
    if draw(st.booleans()):  # a relation that is linear up to noise
        Y = X @ tensor(d_out, d_in).T + tensor(d_out, low=-5, high=5) + Y / 4
    ridges = [0.5, 2.0] + ([0.0] if n > d_in and torch.linalg.cond(_centred_gram(X, 0.0)) < 100 else [])
    return X, Y, draw(st.one_of(st.sampled_from(ridges), draws.floats(0.5, 10.0)))


def _relation_example(seed, n, d_in, d_out, ridge, offset=3.0, dtype=torch.float32):
    X = _randn(seed, n, d_in) + offset * _randn(seed + 1, d_in)  # the states do not average to 0
    W_true, b_true = _randn(seed + 2, d_out, d_in), _randn(seed + 3, d_out, scale=5.0)
    return X.to(dtype), (X @ W_true.T + b_true + _randn(seed + 4, n, d_out, scale=0.5)).to(dtype), ridge


def _relation_tolerance(X, Y, ridge, W) -> tuple[float, float]:
    """atol for W and for b: a float32 solution is exact only to the condition number times float32 rounding."""
    kappa = float(torch.linalg.cond(_centred_gram(X, ridge)))
    size = 1 + float(X.abs().max())
    atol_W = 1e-5 + 64 * kappa * EPS32 * size * (1 + float(W.abs().max()))
    return atol_W, atol_W * size * X.shape[1] + 1e-5 * (1 + float(Y.abs().max()))


@graded("fit_linear_relation")
def check_fit_linear_relation(fn) -> None:
    name = "fit_linear_relation"
    examples = [
        _relation_example(0, 30, 4, 6, 0.0),
        _relation_example(1, 30, 4, 6, 0.0),  # the same shapes, other contents: a cache keyed on shapes fails
        _relation_example(10, 12, 20, 8, 2.0),  # fewer examples than dimensions
        _relation_example(20, 40, 8, 8, 5.0, dtype=torch.float64),  # square W: a transposed W has the right shape
        _relation_example(30, 25, 6, 3, 0.7, offset=0.0),
        _relation_example(40, 1, 3, 2, 1.0),  # one example: W = 0, b = y
    ]
    wrong = [
        (_augmented_ridge, "don't penalise the bias: centre X and Y before solving (or keep the ones column out of "
         "the penalty); only W is shrunk."),
        (_no_bias, "fit the intercept b too: y = W x + b, with b = mean(Y) - W mean(X)."),
        (_no_ridge, "add ridge * I to Xc^T Xc: the penalty ridge * ||W||^2 is what makes the fit unique when there "
         "are fewer examples than dimensions."),
        (lambda X, Y, r: fit_linear_relation(X, Y, r * len(X)), "the objective sums the squared errors over "
         "examples: use ridge, not ridge * n."),
        (lambda X, Y, r: (fit_linear_relation(X, Y, r)[0].T, fit_linear_relation(X, Y, r)[1]),
         "W maps x to y, so it is [d_out, d_in] and the prediction is x @ W.T + b."),
    ]  # fmt: skip

    def fits(args):
        W_ref, b_ref = fit_linear_relation(*copies(args))
        out = call(fn, args, name)
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise GradingError(f"{name} should return a pair (W, b), got {describe(out)}.")
        W, b = out
        for label, got in (("W", W), ("b", b)):
            if not isinstance(got, torch.Tensor) or not got.is_floating_point():
                raise GradingError(f"{name}: {label} should be a torch.Tensor of floats, got {describe(got)}.")
        atol_W, atol_b = _relation_tolerance(*args, W_ref)
        if matches(W, W_ref, atol_W, 1e-4) and matches(b, b_ref, atol_b, 1e-4):
            return
        for wrong_fn, message in wrong:
            their_W, their_b = wrong_fn(*copies(args))
            if matches(W, their_W, atol_W, 1e-4) and matches(b, their_b, atol_b, 1e-4):
                raise GradingError(f"{name}: {message}")
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise GradingError(f"{name} returned NaN or inf: with fewer examples than dimensions Xc^T Xc is "
                               "singular, and the ridge term is what makes it invertible.")  # fmt: skip
        compare(W, W_ref, f"{name} (W)", args, atol=atol_W, rtol=1e-4)
        compare(b, b_ref, f"{name} (b)", args, atol=atol_b, rtol=1e-4)

    tried = holds(name, _relation_inputs(), fits, examples, max_examples=60, reference=fit_linear_relation)
    print(f"✓ {name}: passed on {tried} inputs drawn over the statement's domain (fewer examples than dimensions, "
          "ridge 0, one example, uncentred states).")


# --- Exercise 4: ablating MLP neurons with a forward hook --------------------------------------------------


@torch.no_grad()
def ablated_logprobs(model, layer: int, neurons: list[int], values: torch.Tensor, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor, answer_ids: torch.Tensor, where: torch.Tensor) -> torch.Tensor:  # fmt: skip
    def replace(acts):
        acts = acts.clone()
        acts[..., neurons] = torch.where(where[..., None], values.to(acts.dtype), acts[..., neurons])
        return acts

    with edit_input(mlp_out_proj(model, layer), replace):
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=position_ids(attention_mask)).logits[:, -1]  # fmt: skip
    return logits.log_softmax(-1).gather(-1, answer_ids[:, None])[:, 0]


def _ablation_variant(where="mask", zero=False, mask="given", positions=True, read=-1, probs=False, shift=0):
    @torch.no_grad()
    def wrong(model, layer, neurons, values, ids, attn, answers, at):
        def replace(acts):
            acts = acts.clone()
            new = (torch.zeros_like(values) if zero else values).to(acts.dtype)
            if where == "mask":
                acts[..., neurons] = torch.where(at[..., None], new, acts[..., neurons])
            elif where == "all":
                acts[..., neurons] = new
            else:
                acts[:, -1, neurons] = new
            return acts

        target = layer + shift
        if not -len(blocks(model)) <= target < len(blocks(model)):
            return None
        attn = {"given": attn, "none": None, "from ids": (ids != model.config.pad_token_id).long()}[mask]
        inputs = {"input_ids": ids, "attention_mask": attn, "position_ids": position_ids(attn) if positions else None}
        if where == "none":
            logits = model(**inputs).logits[:, read]
        else:
            with edit_input(mlp_out_proj(model, target), replace):
                logits = model(**inputs).logits[:, read]
        return (logits.softmax(-1) if probs else logits.log_softmax(-1)).gather(-1, answers[:, None])[:, 0]

    return wrong


def _d_mlp(model) -> int:
    return getattr(model.config, "n_inner", None) or model.config.intermediate_size


def _least_likely(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The token the model likes least after each prompt: with large logits, log(softmax) underflows to -inf there."""
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits[:, -1].argmin(-1)


def _padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A left-padded batch of token ids and its attention mask."""
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def _ablation_inputs(models: list, loud):
    """Arguments of ablated_logprobs on one of `models`: any block (negative too), distinct neurons, prompts whose
    first token may be the pad id (as GPT-2's BOS is), `where` anywhere, padding included; on the model with huge
    logits (`loud`) the answer is the least likely token."""

    @st.composite
    def inputs(draw):
        model = draw(st.sampled_from(models))
        n_blocks, vocab, pad = len(blocks(model)), model.config.vocab_size, model.config.pad_token_id
        neurons = draw(st.lists(st.integers(0, _d_mlp(model) - 1), min_size=1, max_size=6, unique=True))
        values = draw(draws.tensors((len(neurons),), st.one_of(st.sampled_from([0.0, 1.0]), draws.floats(-4, 8, 32))))
        lengths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3).filter(lambda ls: max(ls) >= 2))
        rows = [[draw(st.sampled_from([pad, 0]))] + draw(st.lists(st.integers(0, vocab - 1), min_size=n - 1,
                                                                 max_size=n - 1)) for n in lengths]  # fmt: skip
        ids, mask = _padded(rows, pad)
        where = draw(draws.tensors(tuple(ids.shape), st.booleans(), torch.bool))
        if model is loud:
            answers = _least_likely(model, ids, mask)
        else:
            answers = draw(draws.tensors((len(rows),), st.integers(0, vocab - 1), torch.int64))
        return model, draw(st.integers(-n_blocks, n_blocks - 1)), neurons, values, ids, mask, answers, where

    return inputs()


def _ablation_example(model, seed: int, layer: int, n_neurons: int, lengths: list[int], at: str = "random"):
    g = torch.Generator().manual_seed(seed)
    neurons = torch.randperm(_d_mlp(model), generator=g)[:n_neurons].tolist()
    pad, vocab = model.config.pad_token_id, model.config.vocab_size
    ids, mask = _padded([[pad] + torch.randint(3, vocab, (n - 1,), generator=g).tolist() for n in lengths], pad)
    last_two = torch.tensor([ids.shape[1] - 2, ids.shape[1] - 1])
    where = {"last two": torch.zeros_like(mask, dtype=torch.bool).index_fill(1, last_two, True),
             "all": mask.bool(),
             "random": (torch.rand(mask.shape, generator=g) < 0.5) & mask.bool()}[at]  # fmt: skip
    answers = torch.randint(3, vocab, (len(lengths),), generator=g)
    return model, layer, neurons, _randn(seed, n_neurons, scale=4.0) + 4.0, ids, mask, answers, where


def _close_logprobs(got, wrong, args) -> bool:
    return isinstance(got, torch.Tensor) and isinstance(wrong, torch.Tensor) and matches(got, wrong, 1e-4, 1e-4)


@graded("ablated_logprobs")
def check_ablated_logprobs(fn) -> None:
    name = "ablated_logprobs"
    gpt, qwen = gpt2(3, n_layer=3), llama_like(4, n_layer=2)
    loud = gpt2(5, n_layer=2, logit_scale=3000.0)
    loud_case = _ablation_example(loud, 3, 0, 10, [5, 6], at="all")
    examples = [
        _ablation_example(gpt, 0, 1, 6, [5, 3, 7, 4], at="last two"),
        _ablation_example(gpt, 1, 1, 6, [5, 3, 7, 4], at="last two"),  # the same shapes, other contents
        _ablation_example(gpt, 2, -1, 12, [6, 6, 2], at="random"),  # the last block, counted from the end
        _ablation_example(gpt, 5, 0, 9, [7, 4, 6], at="all"),
        _ablation_example(qwen, 2, 0, 8, [4, 7, 5], at="random"),  # a gated MLP: the neurons are the down projection's input
        (*loud_case[:6], _least_likely(loud, loud_case[4], loud_case[5]), loud_case[7]),  # huge logits
    ]
    mistakes = [  # (a wrong implementation, what to tell the student), confirmed on a probe before it is named
        (_ablation_variant(where="none"), "the output equals the model's without ablation: did your hook "
         "reach the input of the MLP's down projection (utils.interp.mlp_out_proj), and did it return the edited "
         "activations?"),
        (_ablation_variant(zero=True), "set the neurons to `values` (e.g. their mean), not to zero."),
        (_ablation_variant(where="all"), "replace the activations only where `where` is True, not at "
         "every position."),
        (_ablation_variant(where="last"), "replace the activations at every position where `where` is "
         "True, not only the last."),
        (_ablation_variant(mask="none"), "pass the attention_mask: the prompts are left-padded, and without "
         "it they attend to the padding."),
        (_ablation_variant(mask="from ids"), "use the attention_mask you are given: a mask rebuilt from "
         "input_ids != pad_token_id is wrong wherever a real token is the pad id (GPT-2's BOS, EOS and padding are "
         "one token)."),
        (_ablation_variant(positions=False), "pass position_ids = attention_mask.cumsum(-1) - 1 (clamped at 0):"
         " with left padding a plain forward pass numbers the padding too, so GPT-2's absolute position embeddings "
         "read every shorter prompt at shifted positions."),
        (_ablation_variant(read=0), "read the next-token distribution at the last position (-1): the "
         "prompts are left-padded, so every prompt ends there."),
        (_ablation_variant(probs=True), "return log-probabilities, not probabilities."),
        (_ablation_variant(shift=1), "ablate the neurons of block `layer` itself (a negative layer counts "
         "from the end), not of the next block."),
        (_ablation_variant(shift=-1), "ablate the neurons of block `layer` itself, not of the block "
         "before it."),
    ]  # fmt: skip
    unstable = "log(softmax(x)) underflows to -inf for large logits: use torch.log_softmax (or logits - logsumexp)."

    # a probe on which every mistake above gives its own output (on a small input several coincide: at the last
    # block only the last position matters, so ablating there, everywhere or where `where` says look alike)
    probe = _ablation_example(gpt, 7, 1, 12, [6, 3, 5], at="random")

    def same_logprobs(args):
        want = ablated_logprobs(*copies(args))
        out = call(fn, args, name)
        if isinstance(out, torch.Tensor) and out.shape == want.shape and not matches(out, want, 1e-4, 1e-4):
            found = confirmed(fn, name, mistakes, out, args, [probe], _close_logprobs)
            if found:
                raise GradingError(f"{name}: {found[0]}")
        compare(out, want, name, args, atol=1e-4, rtol=1e-4, nonfinite_hint=unstable)

    tried = holds(name, _ablation_inputs([gpt, qwen, loud], loud), same_logprobs, examples, max_examples=15,
                  reference=ablated_logprobs)  # fmt: skip
    print(f"✓ {name}: passed on {tried} batches of prompts to random GPT-2 and Qwen2 models (any block, any "
          "positions, left padding, a BOS that is the pad id, huge logits).")


# --- The study: fit and evaluation apart, a control, an interval -------------------------------------------

STUDY_KEYS = {"question": "the question your study answers (a sentence)",
              "fit_items": "the units (e.g. subjects) on which you chose anything",
              "eval_items": "the units on which you measured the result",
              "effect": "one number per evaluation unit under your intervention",
              "control": "the same measurements under the control"}  # fmt: skip
MIN_MEASUREMENTS = 10
CONTROL_ATOL, CONTROL_RTOL = 1e-4, 1e-3  # a control this close to the effect on every unit is the effect, rounded


def _plain(item) -> Hashable:
    """An item as a plain Python value: tensors and numpy values as numbers or tuples (a torch scalar hashes by
    identity), lists as tuples, names without case, extra spaces or punctuation at either end ("Person 5." is
    "person 5")."""
    if isinstance(item, torch.Tensor | np.ndarray | np.generic):
        item = item.tolist()
    if isinstance(item, list | tuple):
        return tuple(_plain(part) for part in item)
    if isinstance(item, str):
        return " ".join(item.strip(_PUNCTUATION).split()).casefold()
    return item


_PUNCTUATION = " \t\n.,;:!?'\"()[]"


def _is_name(part) -> bool:
    """A name such as a subject or a relation: a string with a letter in it ("7" is a number written as text)."""
    return isinstance(part, str) and any(c.isalpha() for c in part)


def _names(item) -> list[str]:
    return [part for part in item if _is_name(part)] if isinstance(item, tuple) else []


def _unit_position(items: list) -> int | None:
    """Which name of a side's tuples is its unit: the first (a fact's subject) where the side's tuples hold at least
    MIN_MEASUREMENTS different first names; else the second where it does and the first does not (a fact written
    (relation, subject): few relations, many subjects); else None (few names: categories, such as homework 03's
    abilities in (ability, index))."""
    tuples = [_names(item) for item in items if _names(item)]
    counts = [len({names[i] for names in tuples if len(names) > i}) for i in range(2)]
    if counts[0] >= MIN_MEASUREMENTS:
        return 0
    return 1 if counts[1] >= MIN_MEASUREMENTS else None


def _unit(item: Hashable, position: int | None) -> Hashable:
    """The unit an item belongs to: a tuple holding names counts as the name at its side's unit position (the
    subject of a fact (subject, relation, object) or (subject, relation id)); where a side's names are few, a tuple
    of names alone counts as its first name and a tuple that also holds numbers (an id (ability, index)) as itself."""
    names = _names(item)
    if position is not None and len(names) > position:
        return names[position]
    if names and len(names) == len(item) > 1:
        return names[0]
    return item


def _units(report: dict, key: str) -> tuple[set, dict]:
    """The units of report[key], and for each unit one of its items as given (for messages)."""
    items = report[key]
    if isinstance(items, str | bytes) or not hasattr(items, "__iter__"):
        raise GradingError(f"study: '{key}' should be a list of units (e.g. subject names), got {describe(items)}.")
    plain = []
    for item in items:
        try:
            plain.append((_plain(item), item))
            hash(plain[-1][0])
        except TypeError:
            raise GradingError(f"study: '{key}' should hold hashable units such as names or ids, got "
                               f"{describe(item)}.") from None  # fmt: skip
    position = _unit_position([p for p, _ in plain])
    examples = {}
    for p, item in plain:
        examples.setdefault(_unit(p, position), item)
    if not examples:
        raise GradingError(f"study: '{key}' is empty.")
    return set(examples), examples


def _number(value):
    """A one-element tensor or array, or a numpy scalar, as a Python number."""
    if not isinstance(value, torch.Tensor | np.ndarray | np.generic):
        return value
    return value.item() if (value.numel() if isinstance(value, torch.Tensor) else value.size) == 1 else value


def _numbers(report: dict, key: str) -> list[float]:
    """report[key] as floats: a list, tuple, tensor, numpy array or pandas Series of numbers (booleans as 0 and 1)."""
    value = report[key]
    value = value.tolist() if hasattr(value, "tolist") else value  # torch, numpy and pandas welcome
    if not isinstance(value, list | tuple) or not all(isinstance(_number(v), numbers.Real) for v in value):
        raise GradingError(f"study: '{key}' should be a list of numbers, one per measurement, got {describe(value)}.")
    value = [float(_number(v)) for v in value]
    if not all(math.isfinite(v) for v in value):
        raise GradingError(f"study: '{key}' contains NaN or infinite values.")
    return value


@graded("study")
def check_study(study: Callable[[], dict], model: torch.nn.Module | None = None) -> tuple[float, float, float]:
    """Run the student's study (a function without arguments) and check its report: fit and evaluation apart,
    effect and control paired. Prints both with 95% bootstrap intervals; returns (effect - control, low, high).

    Items are compared as plain values (tensors and numpy values as numbers, names without case, extra spaces or
    punctuation at either end); an item that is a tuple, such as a fact (subject, relation, object) or (subject,
    relation id), counts as its subject (`_unit_position`, `_unit`), so that a split by fact that puts one subject
    on both sides is caught; ids such as (ability, index), whose names are few, count as themselves. A control
    within CONTROL_ATOL + CONTROL_RTOL of the effect on every unit (float16 rounding, a shift by 1e-6) is a copy of
    it. `model`, if given, is guarded: hooks, weights, mode, methods replaced and submodules swapped on it are
    reported and undone.
    """
    from utils.stats import difference_ci, fmt_difference

    report = call(study, (), "study", modules=[model] if model is not None else [])
    if not isinstance(report, dict):
        raise GradingError(f"study should return a dict with the keys {', '.join(STUDY_KEYS)}; got {describe(report)}.")
    missing = [k for k in STUDY_KEYS if k not in report]
    if missing:
        raise GradingError(f"study: the report lacks {', '.join(missing)} ({'; '.join(STUDY_KEYS[k] for k in missing)}).")
    if not isinstance(report["question"], str) or not report["question"].strip():
        raise GradingError("study: 'question' should be a sentence saying what the study asks.")
    (fit, fit_examples), (evaluated, _) = _units(report, "fit_items"), _units(report, "eval_items")
    shared = sorted(fit & evaluated, key=str)
    if shared:
        item = fit_examples[shared[0]]
        whose = f", the subject of {show(item, 80)}" if _plain(item) != shared[0] else ""
        raise GradingError(f"study: fit and evaluation share {len(shared)} units (e.g. {shared[0]!r}{whose}): what you "
                           "choose on a unit cannot be measured on it; split the units themselves (e.g. subjects, not "
                           "their facts).")  # fmt: skip
    effect, control = _numbers(report, "effect"), _numbers(report, "control")
    if len(effect) != len(control):
        raise GradingError(f"study: 'effect' has {len(effect)} values and 'control' {len(control)}; measure both on "
                           "the same evaluation items, so that they can be compared pair by pair.")  # fmt: skip
    if len(effect) != len(evaluated):
        raise GradingError(f"study: {len(effect)} measurements for {len(evaluated)} evaluation units; give one number "
                           "per unit (average a subject's prompts and facts), so that the interval counts units, not "
                           "correlated prompts.")  # fmt: skip
    if len(effect) < MIN_MEASUREMENTS:
        raise GradingError(f"study: {len(effect)} measurements are too few for an interval; use at least "
                           f"{MIN_MEASUREMENTS}.")  # fmt: skip
    gap, size = np.abs(np.subtract(effect, control)), np.maximum(np.abs(effect), np.abs(control))
    if np.all(gap <= CONTROL_ATOL + CONTROL_RTOL * size):
        raise GradingError(f"study: the control equals the effect up to rounding (on every unit within "
                           f"{CONTROL_ATOL:g} + {CONTROL_RTOL:.1%} of their size, as float16 rounds); a control is a "
                           "different intervention (e.g. as many random units), measured.")  # fmt: skip
    zeros = [0.0] * len(effect)
    print(f"✓ study: {len(fit)} fit and {len(evaluated)} evaluation items, disjoint; "
          f"{len(effect)} paired measurements.\n"
          f"    effect {fmt_difference(effect, zeros)}, control {fmt_difference(control, zeros)}, "
          f"effect - control {fmt_difference(effect, control)} (95% paired bootstrap intervals)")  # fmt: skip
    return difference_ci(effect, control)
