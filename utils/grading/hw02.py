"""Graders for homework 02 (inside a language model): logit-lens ranks from Hugging Face hidden states, the L1
sparse-autoencoder objective, a linear relational model fitted by ridge regression, neuron ablation through a
forward hook, and the shape of the student's study (fit and evaluation apart, a control, an interval).

Every check builds its inputs itself (random models and tensors the student has never seen) and runs the student's
function through `core.call`: expected values first, deep copies handed over, in-place edits, hooks left on a
model and changed weights reported.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence

import torch

from utils.grading.core import (
    GradingError,
    call,
    check_function,
    compare,
    copies,
    describe,
    graded,
    matches,
    same_as,
)
from utils.hooks import blocks, final_norm, position_ids
from utils.interp import edit_input, mlp_out_proj


def _randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


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


def left_padded(seed: int, lengths: Sequence[int], vocab: int, pad: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A left-padded batch of random token ids (never the pad id) and its attention mask."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids, mask = torch.full((len(lengths), width), pad), torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, width - n :] = torch.randint(3, vocab, (n,), generator=g)
        mask[row, width - n :] = 1
    return ids, mask


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
                   argsort: bool = False, last_position: bool = False):  # fmt: skip
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
        return _ranks_from_logits(logits, answers)

    return ranks


def _lens_case(model, seed: int, batch: int, seq: int, position: int):
    ids = torch.randint(3, model.config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        hidden = tuple(h.detach() for h in model(ids, output_hidden_states=True).hidden_states)
    U = model.get_output_embeddings().weight.detach().clone()
    answers = torch.randint(3, U.shape[0], (batch,), generator=torch.Generator().manual_seed(seed + 1))
    return hidden, copy.deepcopy(final_norm(model)), U, answers, position


def _tie_case():
    """The answer's unembedding row is duplicated before and after it: ties must not push it down."""
    hidden, norm, U, _, _ = _lens_case(gpt2(7, n_layer=2), 7, 3, 5, -1)
    answers = torch.tensor([20, 30, 40])
    U[[10, 25, 35]] = U[answers]
    U[[50, 55, 60]] = U[answers]
    return hidden, norm, U, answers, -1


@graded("answer_ranks")
def check_answer_ranks(fn) -> None:
    gpt, qwen = gpt2(0), llama_like(1)
    hidden, norm, U, answers, _ = _lens_case(gpt2(2, n_layer=2), 2, 4, 6, -1)
    cases = [
        _lens_case(gpt, 10, 2, 5, -1),
        _lens_case(gpt, 11, 3, 7, 2),  # a position that is not the last
        _lens_case(qwen, 12, 5, 6, -3),  # RMSNorm, a negative position
        _tie_case(),
        (hidden, norm, U * 1e4, answers, -2),  # huge logits: probabilities underflow to 0 and tie
    ]
    hints = [
        (same_as(_ranks_variant(norm_last=True)), "the last entry of hidden_states has already been through the "
         "final norm (Hugging Face applies it before returning it): don't normalise it a second time."),
        (same_as(_ranks_variant(norm_rest=False)), "apply the final norm to every entry except the last before the "
         "unembedding: the lens decodes a state the way the model decodes its last one."),
        (same_as(_ranks_variant(last_position=True)), "read the states at `position`, not always at the last one."),
        (same_as(lambda *a: answer_ranks(*a) - 1), "ranks start at 1: the top token has rank 1."),
        (same_as(_ranks_variant(argsort=True)), "a token tied with the answer must not push it down: rank = 1 + the "
         "number of tokens with a strictly larger logit (a sort puts tied tokens in an arbitrary order)."),
        (same_as(_ranks_variant(probabilities=True)), "compare logits (or log-probabilities), not probabilities: for "
         "large logits softmax underflows to 0 and unrelated tokens tie."),
    ]  # fmt: skip
    check_function(fn, answer_ranks, "answer_ranks", cases, hints, atol=0, rtol=0)


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


def _sae_case(seed: int, lead: tuple[int, ...], d: int, d_sae: int, lam: float):
    row_norms = 0.3 + torch.rand(d_sae, 1, generator=torch.Generator().manual_seed(seed))  # decoder rows not unit
    return (_randn(seed, *lead, d, scale=2.0) + 1, _randn(seed + 2, d, d_sae), _randn(seed + 3, d_sae) - 0.5,
            _randn(seed + 1, d_sae, d) * row_norms, _randn(seed + 4, d, scale=0.5), lam)  # fmt: skip


@graded("sae_objective")
def check_sae_objective(fn) -> None:
    name = "sae_objective"
    cases = [
        _sae_case(0, (6,), 4, 10, 0.5),
        _sae_case(10, (2, 3), 8, 24, 2.0),  # [batch, seq, d]: average over every token
        _sae_case(20, (), 8, 16, 0.3),  # a single token [d]
        _sae_case(30, (20,), 16, 64, 0.0),  # no penalty: reconstruction only
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
    check_function(fn, sae_objective, name, cases, hints, nonfinite_hint="check the norms and the means.",
                   atol=1e-4, rtol=1e-4)  # fmt: skip
    # The training loop backpropagates through the loss: its gradients must be the reference's.
    x, *params, lam = _sae_case(40, (5,), 8, 32, 1.5)
    mine = [p.clone().requires_grad_(True) for p in params]
    sae_objective(x, *mine, lam).backward()
    theirs = [p.clone().requires_grad_(True) for p in params]
    out = call(fn, (x, *theirs, lam), name, mutable=(1, 2, 3, 4))
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise GradingError(f"{name} returned a loss that does not carry gradients ({describe(out)}): don't use "
                           ".item(), .detach() or torch.no_grad() inside the objective.")  # fmt: skip
    grads = torch.autograd.grad(out, theirs, allow_unused=True)
    for label, ref, got in zip(("W_enc", "b_enc", "W_dec", "b_dec"), mine, grads, strict=True):
        if got is None or not matches(got, ref.grad, 1e-4, 1e-3):
            raise GradingError(f"{name}: the gradient with respect to {label} differs from the reference; compute "
                               "the loss from the parameters you are given, with torch operations only.")  # fmt: skip
    print(f"✓ {name}: the loss backpropagates to every parameter as the reference does.")


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


def _relation_case(seed, n, d_in, d_out, ridge, offset=3.0):
    X = _randn(seed, n, d_in) + offset * _randn(seed + 1, d_in)  # the states do not average to 0
    W_true, b_true = _randn(seed + 2, d_out, d_in), _randn(seed + 3, d_out, scale=5.0)
    return X, X @ W_true.T + b_true + _randn(seed + 4, n, d_out, scale=0.5), ridge


@graded("fit_linear_relation")
def check_fit_linear_relation(fn) -> None:
    name = "fit_linear_relation"
    cases = [_relation_case(0, 30, 4, 6, 0.0), _relation_case(10, 12, 20, 8, 2.0),  # fewer examples than dimensions
             _relation_case(20, 40, 8, 8, 5.0), _relation_case(30, 25, 6, 3, 0.7, offset=0.0)]  # fmt: skip
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
    expected = [fit_linear_relation(*copies(args)) for args in cases]
    for args, (W_ref, b_ref) in zip(cases, expected, strict=True):
        out = call(fn, args, name)
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise GradingError(f"{name} should return a pair (W, b), got {describe(out)}.")
        W, b = out
        for label, got in (("W", W), ("b", b)):
            if not isinstance(got, torch.Tensor):
                raise GradingError(f"{name}: {label} should be a torch.Tensor, got {describe(got)}.")
        if matches(W, W_ref, 1e-3, 1e-3) and matches(b, b_ref, 1e-3, 1e-3):
            continue
        for wrong_fn, message in wrong:
            their_W, their_b = wrong_fn(*copies(args))
            if matches(W, their_W, 1e-3, 1e-3) and matches(b, their_b, 1e-3, 1e-3):
                raise GradingError(f"{name}: {message}")
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise GradingError(f"{name} returned NaN or inf: with fewer examples than dimensions Xc^T Xc is "
                               "singular, and the ridge term is what makes it invertible.")  # fmt: skip
        compare(W, W_ref, f"{name} (W)", args, atol=1e-3, rtol=1e-3)
        compare(b, b_ref, f"{name} (b)", args, atol=1e-3, rtol=1e-3)
    print(f"✓ {name}: passed {len(cases)} checks (fewer examples than dimensions, ridge 0, uncentred states).")


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


def _ablation_variant(where="mask", zero=False, mask=True, positions=True, read=-1, probs=False, shift=0):
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
        inputs = {"input_ids": ids, "attention_mask": attn if mask else None,
                  "position_ids": position_ids(attn) if positions else None}  # fmt: skip
        if where == "none":
            logits = model(**inputs).logits[:, read]
        else:
            with edit_input(mlp_out_proj(model, target), replace):
                logits = model(**inputs).logits[:, read]
        return (logits.softmax(-1) if probs else logits.log_softmax(-1)).gather(-1, answers[:, None])[:, 0]

    return wrong


def _d_mlp(model) -> int:
    return getattr(model.config, "n_inner", None) or model.config.intermediate_size


def _ablation_case(model, seed: int, layer: int, n_neurons: int, lengths: Sequence[int], at: str = "random",
                   least_likely: bool = False):  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    neurons = torch.randperm(_d_mlp(model), generator=g)[:n_neurons].tolist()
    ids, mask = left_padded(seed, lengths, model.config.vocab_size)
    where = {"last two": torch.zeros_like(mask, dtype=torch.bool).index_fill(1, torch.tensor([-2 % mask.shape[1], mask.shape[1] - 1]), True),
             "all": mask.bool(),
             "random": (torch.rand(mask.shape, generator=g) < 0.5) & mask.bool()}[at]  # fmt: skip
    if least_likely:  # the token the model likes least: log(softmax) underflows to -inf there
        with torch.no_grad():
            answers = model(input_ids=ids, attention_mask=mask).logits[:, -1].argmin(-1)
    else:
        answers = torch.randint(3, model.config.vocab_size, (len(lengths),), generator=g)
    return model, layer, neurons, _randn(seed, n_neurons, scale=4.0) + 4.0, ids, mask, answers, where


@graded("ablated_logprobs")
def check_ablated_logprobs(fn) -> None:
    gpt, qwen = gpt2(3, n_layer=3), llama_like(4, n_layer=2)
    loud = gpt2(5, n_layer=2, logit_scale=3000.0)
    cases = [
        _ablation_case(gpt, 0, 1, 6, [5, 3, 7, 4], at="last two"),
        _ablation_case(gpt, 1, -1, 12, [6, 6, 2], at="random"),  # the last block, counted from the end
        _ablation_case(gpt, 5, 0, 9, [7, 4, 6], at="all"),
        _ablation_case(qwen, 2, 0, 8, [4, 7, 5], at="random"),  # a gated MLP: the neurons are the down projection's input
        _ablation_case(loud, 3, 0, 10, [5, 6], at="all", least_likely=True),  # huge logits
    ]
    hints = [
        (same_as(_ablation_variant(where="none")), "the output equals the model's without ablation: did your hook "
         "reach the input of the MLP's down projection (utils.interp.mlp_out_proj), and did it return the edited "
         "activations?"),
        (same_as(_ablation_variant(zero=True)), "set the neurons to `values` (e.g. their mean), not to zero."),
        (same_as(_ablation_variant(where="all")), "replace the activations only where `where` is True, not at "
         "every position."),
        (same_as(_ablation_variant(where="last")), "replace the activations at every position where `where` is "
         "True, not only the last."),
        (same_as(_ablation_variant(mask=False)), "pass the attention_mask: the prompts are left-padded, and without "
         "it they attend to the padding."),
        (same_as(_ablation_variant(positions=False)), "pass position_ids = attention_mask.cumsum(-1) - 1 (clamped at 0):"
         " with left padding a plain forward pass numbers the padding too, so GPT-2's absolute position embeddings "
         "read every shorter prompt at shifted positions."),
        (same_as(_ablation_variant(read=0)), "read the next-token distribution at the last position (-1): the "
         "prompts are left-padded, so every prompt ends there."),
        (same_as(_ablation_variant(probs=True)), "return log-probabilities, not probabilities."),
        (same_as(_ablation_variant(shift=1)), "ablate the neurons of block `layer` itself (a negative layer counts "
         "from the end), not of the next block."),
        (same_as(_ablation_variant(shift=-1)), "ablate the neurons of block `layer` itself, not of the block "
         "before it."),
    ]  # fmt: skip
    check_function(fn, ablated_logprobs, "ablated_logprobs", cases, hints, atol=1e-4, rtol=1e-4,
                   nonfinite_hint="log(softmax(x)) underflows to -inf for large logits: use torch.log_softmax "
                   "(or logits - logsumexp).")  # fmt: skip


# --- The study: fit and evaluation apart, a control, an interval -------------------------------------------

STUDY_KEYS = {"question": "the question your study answers (a sentence)",
              "fit_items": "the units (e.g. subjects) on which you chose anything",
              "eval_items": "the units on which you measured the result",
              "effect": "one number per evaluation measurement under your intervention",
              "control": "the same measurements under the control"}  # fmt: skip
MIN_MEASUREMENTS = 10


def _numbers(report: dict, key: str) -> list[float]:
    value = report[key]
    value = value.tolist() if hasattr(value, "tolist") else value  # torch, numpy and pandas welcome
    if not isinstance(value, list | tuple) or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                                       for v in value):  # fmt: skip
        raise GradingError(f"study: '{key}' should be a list of numbers, one per measurement, got {describe(value)}.")
    if not all(math.isfinite(v) for v in value):
        raise GradingError(f"study: '{key}' contains NaN or infinite values.")
    return [float(v) for v in value]


@graded("study")
def check_study(study: Callable[[], dict], model: torch.nn.Module | None = None) -> tuple[float, float, float]:
    """Run the student's study (a function without arguments) and check its report: fit and evaluation apart,
    effect and control paired. Prints both with 95% bootstrap intervals; returns (effect - control, low, high).
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
    units = {}
    for key in ("fit_items", "eval_items"):
        if isinstance(report[key], str | bytes) or not hasattr(report[key], "__iter__"):
            raise GradingError(f"study: '{key}' should be a list of units (e.g. subject names), got "
                               f"{describe(report[key])}.")  # fmt: skip
        try:
            units[key] = set(report[key])
        except TypeError:
            raise GradingError(f"study: '{key}' should hold hashable units such as names or ids.") from None
        if not units[key]:
            raise GradingError(f"study: '{key}' is empty.")
    shared = units["fit_items"] & units["eval_items"]
    if shared:
        raise GradingError(f"study: fit and evaluation share {len(shared)} items (e.g. {sorted(map(str, shared))[0]!r}):"
                           " what you choose on an item cannot be measured on it.")  # fmt: skip
    effect, control = _numbers(report, "effect"), _numbers(report, "control")
    if len(effect) != len(control):
        raise GradingError(f"study: 'effect' has {len(effect)} values and 'control' {len(control)}; measure both on "
                           "the same evaluation items, so that they can be compared pair by pair.")  # fmt: skip
    if len(effect) != len(units["eval_items"]):
        raise GradingError(f"study: {len(effect)} measurements for {len(units['eval_items'])} evaluation items; give one "
                           "number per item (average an item's prompts), so that the interval counts items, not "
                           "correlated prompts.")  # fmt: skip
    if len(effect) < MIN_MEASUREMENTS:
        raise GradingError(f"study: {len(effect)} measurements are too few for an interval; use at least "
                           f"{MIN_MEASUREMENTS}.")  # fmt: skip
    if effect == control:
        raise GradingError("study: the control is identical to the effect; a control is a different intervention "
                           "(e.g. as many random units).")  # fmt: skip
    zeros = [0.0] * len(effect)
    print(f"✓ study: {len(units['fit_items'])} fit and {len(units['eval_items'])} evaluation items, disjoint; "
          f"{len(effect)} paired measurements.\n"
          f"    effect {fmt_difference(effect, zeros)}, control {fmt_difference(control, zeros)}, "
          f"effect - control {fmt_difference(effect, control)} (95% paired bootstrap intervals)")  # fmt: skip
    return difference_ci(effect, control)
