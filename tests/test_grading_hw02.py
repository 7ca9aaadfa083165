"""Homework 02 graders accept correct implementations written in other ways and reject plausible wrong ones with
the targeted hint: a wrong algorithm, an edge case of the statement's rules (ties, one example, padding that is also
a real token), a cache keyed on the inputs' shapes, an unstable log-probability, a side effect (a hook or a
replaced method left on the model, weights or inputs changed), a wrong return type, a study that measures on what
it fitted."""

import numpy as np
import pandas as pd
import pytest
import torch
from grading_helpers import memo, not_done, passes, rejects

from utils import grading
from utils.grading import ExerciseNotDone
from utils.grading import hw02 as ref
from utils.hooks import blocks, final_norm, residual_stream
from utils.interp import edit_input, mlp_out_proj

CHECKS = [
    (grading.check_answer_ranks, ref.answer_ranks),
    (grading.check_sae_objective, ref.sae_objective),
    (grading.check_fit_linear_relation, ref.fit_linear_relation),
    (grading.check_ablated_logprobs, ref.ablated_logprobs),
]


@pytest.mark.parametrize(("check", "reference"), CHECKS, ids=lambda x: getattr(x, "__name__", ""))
def test_generic_failures_are_explained(check, reference, capsys):
    passes(check, reference, capsys)
    with pytest.raises(ExerciseNotDone, match="not implemented yet"):
        check(not_done)
    rejects(check, lambda *a: 1 / 0, "ZeroDivisionError")
    rejects(check, "not a function", "Pass the function itself")
    rejects(check, lambda *a: {"answer": 1}, "dict")
    rejects(check, lambda *a: None)
    rejects(check, lambda *a: torch.zeros(7))


@pytest.mark.parametrize(("check", "reference"), CHECKS, ids=lambda x: getattr(x, "__name__", ""))
def test_a_cache_keyed_on_shapes_fails(check, reference):
    rejects(check, memo(reference))


# --- Exercise 1: answer ranks under the logit lens ---------------------------------------------------------


def ranks_in_loops(hidden_states, norm, unembedding, answer_ids, position):
    """Correct, written with loops and log-probabilities in float64."""
    out = torch.zeros(len(hidden_states), len(answer_ids), dtype=torch.long)
    for layer, h in enumerate(hidden_states):
        state = h[:, position] if layer == len(hidden_states) - 1 else norm(h[:, position])
        logprobs = (state.double() @ unembedding.double().T).log_softmax(-1)
        for row, answer in enumerate(answer_ids.tolist()):
            out[layer, row] = int((logprobs[row] > logprobs[row, answer]).sum()) + 1
    return out


def ranks_by_counting_ties(hidden_states, norm, unembedding, answer_ids, position):
    """Correct: count >=, then take back the tokens tied with the answer (the answer among them)."""
    states = torch.stack([norm(h[:, position]) for h in hidden_states[:-1]] + [hidden_states[-1][:, position]])
    logits = states @ unembedding.T
    answer = logits.gather(-1, answer_ids.expand(len(states), -1)[..., None])
    return (logits >= answer).sum(-1) - (logits == answer).sum(-1) + 1


def ranks_from_float32_log_softmax(hidden_states, norm, unembedding, answer_ids, position):
    states = torch.stack([norm(h[:, position]) for h in hidden_states[:-1]] + [hidden_states[-1][:, position]])
    logprobs = torch.einsum("lbd,vd->lbv", states, unembedding).log_softmax(-1)
    answer = logprobs.gather(-1, answer_ids.expand(len(states), -1)[..., None])
    return (logprobs > answer).sum(-1) + 1


def ranks_in_numpy_int32(hidden_states, norm, unembedding, answer_ids, position):
    """Correct: the whole stream normalised first, then numpy in float64; int32 ranks."""
    normed = [norm(h).detach().numpy() for h in hidden_states[:-1]] + [hidden_states[-1].numpy()]
    logits = np.stack([h[:, position] for h in normed]).astype(np.float64) @ unembedding.numpy().astype(np.float64).T
    answer = np.take_along_axis(logits, np.broadcast_to(answer_ids.numpy(), logits.shape[:2])[..., None], -1)
    return torch.from_numpy((logits > answer).sum(-1).astype(np.int32) + 1)


def _lens_states(hidden_states, norm, position):
    return torch.stack([norm(h[:, position]) for h in hidden_states[:-1]] + [hidden_states[-1][:, position]])


@torch.no_grad()
def ranks_by_searchsorted(hidden_states, norm, unembedding, answer_ids, position):
    """Correct: each row sorted; the tokens strictly above the answer are vocab - searchsorted(right=True)."""
    logits = _lens_states(hidden_states, norm, position) @ unembedding.T
    answer = logits.gather(-1, answer_ids.expand(len(logits), -1)[..., None]).contiguous()
    return logits.shape[-1] - torch.searchsorted(logits.sort(-1).values.contiguous(), answer, right=True)[..., 0] + 1


@torch.no_grad()
def ranks_with_isclose_ties(hidden_states, norm, unembedding, answer_ids, position):
    """Correct: logits within rounding of the answer's (isclose, rtol 1e-6) count as ties, as the statement allows."""
    logits = _lens_states(hidden_states, norm, position) @ unembedding.T
    answer = logits.gather(-1, answer_ids.expand(len(logits), -1)[..., None])
    return 1 + ((logits > answer) & ~torch.isclose(logits, answer.expand_as(logits), rtol=1e-6, atol=1e-9)).sum(-1)


@torch.no_grad()
def ranks_of_whole_streams_int16(hidden_states, norm, unembedding, answer_ids, position):
    """Correct: every state normalised first, position taken modulo the length; int16 ranks."""
    p = position % hidden_states[0].shape[1]
    full = [norm(h) for h in hidden_states[:-1]] + [hidden_states[-1]]
    logits = torch.stack([f[:, p] for f in full]) @ unembedding.T
    answer = logits[:, torch.arange(len(answer_ids)), answer_ids]
    return (1 + (logits > answer[..., None]).sum(-1)).to(torch.int16)


@torch.no_grad()
def ranks_by_linear_in_float64(hidden_states, norm, unembedding, answer_ids, position):
    logits = torch.nn.functional.linear(_lens_states(hidden_states, norm, position).double(), unembedding.double())
    answer = logits[:, torch.arange(len(answer_ids)), answer_ids][..., None]
    return (1 + torch.count_nonzero(logits > answer, dim=-1)).int()


@pytest.mark.parametrize("correct", [ranks_in_loops, ranks_by_counting_ties, ranks_from_float32_log_softmax,
                                     ranks_in_numpy_int32, ranks_by_searchsorted, ranks_with_isclose_ties,
                                     ranks_of_whole_streams_int16, ranks_by_linear_in_float64])  # fmt: skip
def test_answer_ranks_accepts_other_correct_implementations(correct, capsys):
    passes(grading.check_answer_ranks, correct, capsys)


@torch.no_grad()
def _ranks_with_a_margin(hidden_states, norm, unembedding, answer_ids, position):
    """Counts only the tokens more than 1e-3 above the answer ("robust to float noise")."""
    logits = _lens_states(hidden_states, norm, position) @ unembedding.T
    return 1 + (logits > logits.gather(-1, answer_ids.expand(len(logits), -1)[..., None]) + 1e-3).sum(-1)


@torch.no_grad()
def _ranks_in_bfloat16(hidden_states, norm, unembedding, answer_ids, position):
    logits = _lens_states(hidden_states, norm, position).bfloat16() @ unembedding.bfloat16().T
    return ref._ranks_from_logits(logits, answer_ids)


@torch.no_grad()
def _ranks_of_a_float16_log_softmax(hidden_states, norm, unembedding, answer_ids, position):
    logits = (_lens_states(hidden_states, norm, position) @ unembedding.T).half()
    return ref._ranks_from_logits(logits.float().log_softmax(-1).half(), answer_ids)


@pytest.mark.parametrize("wrong", [_ranks_with_a_margin, _ranks_in_bfloat16, _ranks_of_a_float16_log_softmax])
def test_answer_ranks_counts_logits_a_little_above_the_answer(wrong):
    """Logits 0.02% and 0.05% above the answer's are above it: no margin, no half precision (the explicit example,
    and draws whose unembedding rows are the answer's times 1 +- 2^-12, exact in float32)."""
    rejects(grading.check_answer_ranks, wrong, "above the answer's by a little", "float16 and bfloat16")


def test_answer_ranks_draws_reach_logits_a_little_above_the_answer():
    """Without the explicit example, a draw often holds a token whose logit is 0.024% above the answer's, and a
    correct float32 log-softmax is never taken for a mistake there."""
    from hypothesis import HealthCheck, given, settings

    caught = {wrong: 0 for wrong in (_ranks_with_a_margin, _ranks_in_bfloat16, _ranks_of_a_float16_log_softmax)}
    drawn = []

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(ref._lens_inputs())
    def count(args):
        drawn.append(1)
        assert ref._ranks_up_to_rounding(ranks_from_float32_log_softmax(*args), *args)
        for wrong in caught:
            caught[wrong] += not ref._ranks_up_to_rounding(wrong(*args), *args)

    count()
    assert all(n >= 0.05 * len(drawn) for n in caught.values()), caught


def _in_place_norm(hs, norm, U, answers, position):
    hs[0][:] = norm(hs[0])  # normalises an input tensor in place
    return ref.answer_ranks(hs, norm, U, answers, position)


def _ranks_of_the_first_prompt(hs, norm, U, answers, position):  # ignores every answer but the first
    return ref.answer_ranks(hs, norm, U, answers[:1].expand_as(answers), position)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._ranks_variant(norm_last=True), "don't normalise it a second time"),
        (ref._ranks_variant(norm_rest=False), "every entry except the last"),
        (ref._ranks_variant(last_position=True), "at `position`"),
        (lambda *a: ref.answer_ranks(*a) - 1, "ranks start at 1"),
        (ref._ranks_variant(argsort=True), "strictly larger logit"),
        (ref._ranks_variant(ties_count=True), "not those with a larger or equal one"),
        (ref._ranks_variant(probabilities=True), "not probabilities"),
        (lambda *a: ref.answer_ranks(*a).float(), "dtype"),
        (lambda *a: ref.answer_ranks(*a).T, "shape"),
        (lambda *a: ref.answer_ranks(*a).tolist(), "torch.Tensor"),
        (_in_place_norm, "in place"),
        (lambda hs, norm, U, a, p: torch.ones(len(hs), len(a), dtype=torch.long), "values differ"),  # a constant
        (_ranks_of_the_first_prompt, "values differ"),
        (memo(ref.answer_ranks), "Smallest failing input"),
    ],
)
def test_answer_ranks_hints(wrong, hint):
    rejects(grading.check_answer_ranks, wrong, hint)


# --- Exercise 2: the SAE objective -------------------------------------------------------------------------


def sae_with_einsum(x, W_enc, b_enc, W_dec, b_dec, lam):
    """Correct: tokens flattened, einsum, vector_norm, the penalty as a matrix product."""
    tokens = x.reshape(-1, x.shape[-1])
    f = torch.einsum("nd,dk->nk", tokens - b_dec, W_enc).add(b_enc).clamp_min(0)
    error = torch.einsum("nk,kd->nd", f, W_dec) + b_dec - tokens
    return error.pow(2).sum() / len(tokens) + lam * (f @ torch.linalg.vector_norm(W_dec, dim=1)).mean()


def sae_in_float64(x, W_enc, b_enc, W_dec, b_dec, lam):
    f = torch.relu((x.double() - b_dec.double()) @ W_enc.double() + b_enc.double())
    err = ((f @ W_dec.double() + b_dec.double() - x.double()) ** 2).sum(-1).mean()
    return (err + lam * (f.abs() * W_dec.double().norm(dim=-1)).sum(-1).mean()).float()


def sae_token_by_token(x, W_enc, b_enc, W_dec, b_dec, lam):
    """Correct: a loop over tokens, the decoder norms as sqrt of sums of squares, the mean as a sum / count."""
    norms = (W_dec**2).sum(1).sqrt()
    total, count = 0.0, 0
    for token in x.reshape(-1, x.shape[-1]):
        f = torch.nn.functional.relu((token - b_dec) @ W_enc + b_enc)
        total = total + ((token - (f @ W_dec + b_dec)) ** 2).sum() + lam * (f * norms).sum()
        count += 1
    return total / count


@pytest.mark.parametrize("correct", [sae_with_einsum, sae_in_float64, sae_token_by_token])
def test_sae_objective_accepts_other_correct_implementations(correct, capsys):
    passes(grading.check_sae_objective, correct, capsys)


def _in_place_centring(x, W_enc, b_enc, W_dec, b_dec, lam):
    x -= b_dec
    return ref.sae_objective(x + b_dec, W_enc, b_enc, W_dec, b_dec, lam)


def _in_half_precision(x, *params_and_lam):
    *params, lam = params_and_lam
    return ref.sae_objective(x.half().float(), *(p.half().float() for p in params), lam).to(x.dtype)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._sae_variant(center=False), "subtract the decoder bias"),
        (ref._sae_variant(relu=False), "ReLU"),
        (ref._sae_variant(dec_norm=False), "||W_dec[k]||"),
        (ref._sae_variant(token_mean=False), "average over tokens"),
        (ref._sae_variant(dim_sum=False), "sums the squared error"),
        (ref._sae_variant(dec_bias=False), "decoder bias b_dec back"),
        (ref._sae_variant(pre_abs=True), "not the pre-activations"),
        (lambda *a: ref.sae_objective(*a).item(), "torch.Tensor"),
        (lambda *a: ref.sae_objective(*a).reshape(1), "shape"),
        (lambda *a: ref.sae_objective(*a).detach(), "does not carry gradients"),
        (lambda x, We, be, Wd, bd, lam: ref.sae_objective(x, We, be, Wd.detach(), bd, lam), "gradient with respect to W_dec"),
        (_in_place_centring, "in place"),
        (lambda x, We, be, Wd, bd, lam: ref.sae_objective(x, We, be, Wd, bd, 1.0), "values differ"),  # lam ignored
        (lambda *a: (a[0].sum() * 0 + 1.0), "values differ"),  # a constant
        (_in_half_precision, "values differ"),
        (memo(ref.sae_objective), "Smallest failing input"),
    ],
)
def test_sae_objective_hints(wrong, hint):
    rejects(grading.check_sae_objective, wrong, hint)


# --- Exercise 3: ridge regression for a linear relational model --------------------------------------------


def ridge_by_lstsq(X, Y, ridge):
    """Correct: least squares on the centred data stacked on sqrt(ridge) * I, in float32."""
    mx, my = X.mean(0), Y.mean(0)
    A = torch.cat([X - mx, ridge**0.5 * torch.eye(X.shape[1], dtype=X.dtype)])
    B = torch.cat([Y - my, torch.zeros(X.shape[1], Y.shape[1], dtype=Y.dtype)])
    W = torch.linalg.lstsq(A, B, driver="gelsd").solution.T
    return W, my - mx @ W.T


def ridge_with_unpenalised_ones_column(X, Y, ridge):
    """Correct: a ones column for the bias, left out of the penalty, solved with numpy."""
    A = np.concatenate([X.double().numpy(), np.ones((len(X), 1))], 1)
    penalty = ridge * np.eye(A.shape[1])
    penalty[-1, -1] = 0.0
    theta = np.linalg.solve(A.T @ A + penalty, A.T @ Y.double().numpy())
    return torch.tensor(theta[:-1].T), torch.tensor(theta[-1])


def ridge_by_the_kernel_trick(X, Y, ridge):
    """Correct: W^T = Xc^T (Xc Xc^T + ridge I)^-1 Yc when ridge > 0 (the n x n system), the normal equations in
    float32 with an explicit inverse otherwise."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    if ridge > 0:
        W = (Xc.T @ torch.linalg.solve(Xc @ Xc.T + ridge * torch.eye(len(X), dtype=X.dtype), Yc)).T
    else:
        W = (torch.linalg.inv(Xc.T @ Xc) @ Xc.T @ Yc).T
    return W, Y.mean(0) - W @ X.mean(0)


@pytest.mark.parametrize("correct", [ridge_by_lstsq, ridge_with_unpenalised_ones_column, ridge_by_the_kernel_trick,
                                     ref.fit_linear_relation])  # fmt: skip
def test_fit_linear_relation_accepts_other_correct_implementations(correct, capsys):
    passes(grading.check_fit_linear_relation, correct, capsys)


def _in_place_centring_X(X, Y, ridge):
    X -= X.mean(0)
    return ref.fit_linear_relation(X, Y, ridge)


def _centres_Y_only(X, Y, ridge):
    Xd, Yd = X.double(), Y.double()
    W = torch.linalg.solve(Xd.T @ Xd + ridge * torch.eye(X.shape[1], dtype=torch.double), Xd.T @ (Yd - Yd.mean(0))).T
    return W.to(X.dtype), (Yd.mean(0) - W @ Xd.mean(0)).to(X.dtype)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._augmented_ridge, "don't penalise the bias"),
        (ref._no_bias, "fit the intercept"),
        (ref._no_ridge, "add ridge * I"),
        (lambda X, Y, r: ref.fit_linear_relation(X, Y, r * len(X)), "not ridge * n"),
        (lambda X, Y, r: (ref.fit_linear_relation(X, Y, r)[0].T, ref.fit_linear_relation(X, Y, r)[1]), "[d_out, d_in]"),
        (lambda X, Y, r: ref.fit_linear_relation(X, Y, r)[0], "pair (W, b)"),
        (lambda X, Y, r: {"W": 0, "b": 0}, "pair (W, b)"),
        (lambda X, Y, r: (ref.fit_linear_relation(X, Y, r)[0], 0.0), "b should be a torch.Tensor"),
        (lambda X, Y, r: (ref.fit_linear_relation(X, Y, r)[0], ref.fit_linear_relation(X, Y, r)[1] + 0.1), "(b)"),
        (_in_place_centring_X, "in place"),
        (_centres_Y_only, "(W)"),
        (lambda X, Y, r: ref.fit_linear_relation(X, Y, 0.0 if len(X) > X.shape[1] else r), "add ridge * I"),  # only when needed
        (lambda X, Y, r: (torch.zeros(Y.shape[1], X.shape[1]), torch.zeros(Y.shape[1])), "values differ"),  # a constant
        (memo(ref.fit_linear_relation), "Smallest failing input"),
    ],
)
def test_fit_linear_relation_hints(wrong, hint):
    rejects(grading.check_fit_linear_relation, wrong, hint)


def test_transposed_W_is_named_when_square():
    def transposed_only_when_square(X, Y, r):
        W, b = ref.fit_linear_relation(X, Y, r)
        return (W.T if W.shape[0] == W.shape[1] else W), b

    rejects(grading.check_fit_linear_relation, transposed_only_when_square, "[d_out, d_in]")


# --- Exercise 4: ablating neurons --------------------------------------------------------------------------


@torch.no_grad()
def ablate_with_manual_hook(model, layer, neurons, values, input_ids, attention_mask, answer_ids, where):
    """Correct: a hand-written pre-hook removed in `finally`, log-probabilities as logits - logsumexp in float64."""
    index = torch.tensor(neurons)

    def hook(module, args):
        replaced = args[0].index_copy(-1, index, values.to(args[0].dtype).expand(*args[0].shape[:-1], -1))
        return (torch.where(where[..., None], replaced, args[0]), *args[1:])

    handle = mlp_out_proj(model, layer).register_forward_pre_hook(hook)
    try:
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=(attention_mask.cumsum(-1) - 1).clamp_min(0)).logits[:, -1].double()
    finally:
        handle.remove()
    logprobs = logits - logits.logsumexp(-1, keepdim=True)
    return logprobs[torch.arange(len(answer_ids)), answer_ids].float()


@torch.no_grad()
def ablate_prompt_by_prompt(model, layer, neurons, values, input_ids, attention_mask, answer_ids, where):
    """Correct: each prompt without its padding, one at a time; torch.where with a neuron mask; a positive layer."""
    layer = layer % len(blocks(model))
    keep = torch.ones(mlp_out_proj(model, layer).weight.shape[0 if hasattr(model, "transformer") else 1], dtype=torch.bool)
    keep[neurons] = False
    full = torch.zeros(len(keep))
    full[neurons] = values
    out = []
    for ids, mask, answer, at in zip(input_ids, attention_mask, answer_ids, where, strict=True):
        here = at[mask.bool()][None, :, None]  # [1, seq, 1] for this prompt without its padding
        with edit_input(mlp_out_proj(model, layer), lambda acts, here=here: torch.where(keep | ~here, acts, full.to(acts.dtype))):
            logits = model(ids[mask.bool()][None]).logits[0, -1]
        out.append(torch.log_softmax(logits, dim=-1)[answer])
    return torch.stack(out)


@torch.no_grad()
def ablate_reading_hidden_states(model, layer, neurons, values, input_ids, attention_mask, answer_ids, where):
    """Correct: the logits decoded from the last hidden state (transformers registers its own hooks for that the
    first time), the neurons set through index_put on a copy."""

    def replace(acts):
        ablated = acts.clone()
        ablated[..., neurons] = values.to(acts.dtype)
        return torch.where(where[..., None], ablated, acts)

    with edit_input(mlp_out_proj(model, layer), replace):
        hidden = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                       position_ids=(attention_mask.cumsum(-1) - 1).clamp_min(0)).hidden_states[-1]  # fmt: skip
    logits = model.get_output_embeddings()(hidden[:, -1])
    return torch.log_softmax(logits.double(), -1).gather(-1, answer_ids[:, None])[:, 0]


@pytest.mark.parametrize("correct", [ablate_with_manual_hook, ablate_prompt_by_prompt, ablate_reading_hidden_states])
def test_ablated_logprobs_accepts_other_correct_implementations(correct, capsys):
    passes(grading.check_ablated_logprobs, correct, capsys)


@torch.no_grad()
def _log_of_softmax(model, layer, neurons, values, ids, mask, answers, where):
    def replace(acts):
        acts = acts.clone()
        acts[..., neurons] = torch.where(where[..., None], values, acts[..., neurons])
        return acts

    with edit_input(mlp_out_proj(model, layer), replace):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)).logits[:, -1]
    return torch.log(torch.softmax(logits, -1)).gather(1, answers[:, None])[:, 0]


@torch.no_grad()
def _hook_left_behind(model, layer, neurons, values, ids, mask, answers, where):
    def hook(module, args):
        acts = args[0].clone()
        acts[..., neurons] = torch.where(where[..., None], values, acts[..., neurons])
        return (acts,)

    mlp_out_proj(model, layer).register_forward_pre_hook(hook)  # never removed
    return model(input_ids=ids, attention_mask=mask).logits[:, -1].log_softmax(-1).gather(1, answers[:, None])[:, 0]


@torch.no_grad()
def _forward_replaced(model, layer, neurons, values, ids, mask, answers, where):
    """Ablation by replacing the down projection's forward, never put back."""
    proj = mlp_out_proj(model, layer)
    original = type(proj).forward.__get__(proj)

    def forward(acts):
        acts = acts.clone()
        acts[..., neurons] = torch.where(where[..., None], values.to(acts.dtype), acts[..., neurons])
        return original(acts)

    proj.forward = forward
    logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)).logits[:, -1]
    return logits.log_softmax(-1).gather(1, answers[:, None])[:, 0]


@torch.no_grad()
def _zeroed_weights(model, layer, neurons, values, ids, mask, answers, where):
    """Zero ablation by deleting the neurons' value vectors, never restored."""
    proj = mlp_out_proj(model, layer)
    if hasattr(model, "transformer"):
        proj.weight[neurons] = 0
    else:
        proj.weight[:, neurons] = 0
    return model(input_ids=ids, attention_mask=mask).logits[:, -1].log_softmax(-1).gather(1, answers[:, None])[:, 0]


def _sorts_neurons(model, layer, neurons, *rest):
    neurons.sort()
    return ref.ablated_logprobs(model, layer, neurons, *rest)


def _train_mode(model, *args):
    model.train()
    return ref.ablated_logprobs(model, *args)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._ablation_variant(where="none"), "without ablation"),
        (ref._ablation_variant(zero=True), "not to zero"),
        (ref._ablation_variant(where="all"), "only where `where` is True"),
        (ref._ablation_variant(where="last"), "not only the last"),
        (ref._ablation_variant(mask="none"), "pass the attention_mask"),
        (ref._ablation_variant(mask="from ids"), "use the attention_mask you are given"),
        (ref._ablation_variant(positions=False), "position_ids"),
        (ref._ablation_variant(read=0), "last position (-1)"),
        (ref._ablation_variant(probs=True), "not probabilities"),
        (ref._ablation_variant(shift=1), "not of the next block"),
        (ref._ablation_variant(shift=-1), "not of the block before"),
        (_log_of_softmax, "log_softmax"),
        (_hook_left_behind, "left a hook"),
        (_forward_replaced, "replaced `forward` on `transformer.h.1.mlp.c_proj`"),
        (_zeroed_weights, "changed the model's weights"),
        (_sorts_neurons, "in place"),
        (_train_mode, "training mode"),
        (lambda *a: ref.ablated_logprobs(*a).tolist(), "torch.Tensor"),
        (lambda *a: ref.ablated_logprobs(*a)[None], "shape"),
        (lambda model, *a: torch.full((len(a[-2]),), -4.0), "values differ"),  # a constant
        (memo(ref.ablated_logprobs), "Smallest failing input"),
    ],
)
def test_ablated_logprobs_hints(wrong, hint):
    rejects(grading.check_ablated_logprobs, wrong, hint)


@torch.no_grad()
def _where_shifted(model, layer, neurons, values, ids, mask, answers, where):
    """Shifts `where` one position to the right ("the token at t is predicted at t - 1")."""
    shifted = torch.zeros_like(where)
    shifted[:, 1:] = where[:, :-1]
    return ref.ablated_logprobs(model, layer, neurons, values, ids, mask, answers, shifted)


def test_ablated_logprobs_names_a_mistake_only_where_a_probe_confirms_it():
    """On a small input a shifted `where` gives what ablating only the last position gives; the hint must not
    name that mistake, which the probe (every mistake with its own output) rules out."""
    message = rejects(grading.check_ablated_logprobs, _where_shifted, "values differ")
    assert "not only the last" not in message


def _hook_ids(model):
    return {name: (set(m._forward_hooks), set(m._forward_pre_hooks)) for name, m in model.named_modules()}


def test_a_failed_ablation_check_leaves_the_model_clean():
    seen = []

    def leaks(model, *args):
        seen.append((model, _hook_ids(model)))
        return _forward_replaced(model, *args) if len(seen) == 1 else _hook_left_behind(model, *args)

    rejects(grading.check_ablated_logprobs, leaks, "replaced")
    rejects(grading.check_ablated_logprobs, leaks, "left a hook")
    for model, before in seen:
        assert _hook_ids(model) == before
        assert all("forward" not in vars(m) for m in model.modules())


def test_graders_build_models_with_norms_that_matter():
    """A norm applied twice must change the decoded ranks, or the double-norm hint could never fire."""
    model = ref.gpt2(0)
    norm = final_norm(model)
    x = torch.randn(3, 32)
    assert not torch.allclose(norm(norm(x)), norm(x), atol=1e-3)


@pytest.mark.parametrize("build", [ref.gpt2, ref.llama_like])
def test_hugging_face_normalises_only_the_last_hidden_state(build):
    """Exercise 1 rests on this: hidden_states[-1] is the last block's output after the final norm, the others not."""
    model = build(0)
    ids = torch.randint(3, 64, (2, 5))
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states
        stream = residual_stream(model, ids)
        assert torch.allclose(final_norm(model)(stream[-1]), hidden[-1], atol=1e-5)
        assert all(torch.allclose(stream[i], hidden[i], atol=1e-5) for i in range(len(hidden) - 1))


# --- The study ---------------------------------------------------------------------------------------------


def report(**changes):
    rng = np.random.default_rng(0)
    base = {"question": "Do the top neurons matter more than random ones?", "fit_items": [f"p{i}" for i in range(30)],
            "eval_items": [f"p{i}" for i in range(30, 60)], "effect": (rng.normal(-1, 0.3, 30)).tolist(),
            "control": rng.normal(0, 0.3, 30).tolist()}  # fmt: skip
    return lambda: {**base, **changes}


def test_study_reports_the_difference_with_an_interval(capsys):
    diff, low, high = grading.check_study(report())
    out = capsys.readouterr().out
    assert "✓ study: 30 fit and 30 evaluation items" in out and "effect - control" in out and "[" in out
    assert low < diff < high < 0


EFFECT = np.random.default_rng(1).normal(-1, 0.3, 30)
SUBJECTS = [f"Person {i}" for i in range(60)]
RELATIONS = ["birthplace", "employer", "profession"]


@pytest.mark.parametrize(
    ("study", "hint"),
    [
        (lambda: [1, 2], "should return a dict"),
        (lambda: {"question": "q"}, "lacks"),
        (report(question=""), "'question'"),
        (report(question="   "), "'question'"),
        (report(eval_items=[f"p{i}" for i in range(25, 55)]), "share 5 units"),
        (report(fit_items="p1 p2"), "list of units"),
        (report(fit_items=[]), "is empty"),
        (report(eval_items=[{1}, {2}]), "hashable"),
        (report(control=[0.0] * 29), "compared pair by pair"),
        (report(effect=[0.1] * 5, control=[0.0] * 5, eval_items=[f"p{i}" for i in range(30, 35)]), "too few"),
        (report(effect=[-1.0, -0.5] * 30, control=[0.0] * 60), "one number per unit"),
        (report(effect=[0.5] * 30, control=[0.5] * 30), "equals the effect"),
        # the control is the effect, once rounded to float32: equal up to rounding, not a different intervention
        (report(effect=EFFECT.tolist(), control=EFFECT.astype(np.float32).tolist()), "equals the effect"),
        (report(effect=[float("nan")] * 30), "NaN"),
        (report(effect="big"), "list of numbers"),
        (report(effect=["1"] * 30), "list of numbers"),
        # units given as tensors: torch scalars hash by identity, so a set of them never overlaps
        (report(fit_items=torch.arange(30), eval_items=torch.arange(25, 55)), "share 5 units"),
        (report(fit_items=np.arange(30), eval_items=[torch.tensor(i) for i in range(25, 55)]), "share 5 units"),
        # the same names written with other case or spacing
        (report(eval_items=[f" P{i}" for i in range(25, 55)]), "share 5 units"),
        # a split by fact: every subject's facts on both sides
        (report(fit_items=[(s, r) for s in SUBJECTS[:30] for r in RELATIONS[:2]],
                eval_items=[(s, RELATIONS[2]) for s in SUBJECTS[:30]]), "subjects, not their facts"),
        (report(fit_items=[(s, r, "x") for s in SUBJECTS[:40] for r in RELATIONS[:2]],
                eval_items=[(s, r, "y") for s in SUBJECTS[30:60] for r in RELATIONS]), "the subject of"),
        # split by subject, but one number per fact: the interval would count correlated facts
        (report(fit_items=SUBJECTS[:30], eval_items=[(s, r) for s in SUBJECTS[30:40] for r in RELATIONS]),
         "10 evaluation units"),
        # facts as (subject, relation id): the subject is the unit all the same
        (report(fit_items=[(s, r) for s in SUBJECTS[:30] for r in (0, 1)], eval_items=[(s, 2) for s in SUBJECTS[:30]]),
         "the subject of ('Person 0', 0)"),
        # facts as (relation, subject) on one side, names on the other: the subject is the unit, not the relation
        (report(fit_items=[(r, s) for s in SUBJECTS for r in RELATIONS[:2]], eval_items=SUBJECTS[30:]),
         "share 30 units"),
        # the same names with a full stop
        (report(fit_items=SUBJECTS[:30], eval_items=[s + "." for s in SUBJECTS[20:50]]), "share 10 units"),
        # a control that is the effect rounded to float16, or shifted by 1e-6 (effects near 0 included)
        (report(effect=EFFECT.tolist(), control=EFFECT.astype(np.float16).astype(float).tolist()), "equals the effect"),
        (report(effect=(EFFECT - EFFECT[0]).tolist(), control=(EFFECT - EFFECT[0] + 1e-6).tolist()),
         "equals the effect"),
    ],
)  # fmt: skip
def test_study_hints(study, hint):
    rejects(grading.check_study, study, hint)


@pytest.mark.parametrize(
    "study",
    [
        report(effect=np.array(EFFECT), control=torch.zeros(30)),  # arrays and tensors
        report(effect=pd.Series(EFFECT), control=pd.Series(np.zeros(30)), fit_items=pd.Series([f"p{i}" for i in range(30)])),
        report(effect=[torch.tensor(v) for v in EFFECT], control=[np.float32(0.1)] * 30),  # scalars
        report(effect=np.arange(30) % 3 == 0, control=[False] * 29 + [True]),  # 0/1 outcomes as (numpy) booleans
        # homework 03: (ability, index) items share their ability across the split, and are distinct items
        report(fit_items=[("arithmetic", i) for i in range(0, 60, 2)], eval_items=[("arithmetic", i) for i in range(1, 60, 2)]),
        report(eval_items=[["arithmetic", i] for i in range(30)]),  # lists as items
        # facts split by subject, one number per subject
        report(fit_items=[(s, r) for s in SUBJECTS[:30] for r in RELATIONS], eval_items=[(s, r) for s in SUBJECTS[30:] for r in RELATIONS]),
        report(fit_items=[f"seed {s}" for s in range(200)], eval_items=[f"seed {s}" for s in range(10_000, 10_030)]),
        # facts as (relation, subject), split by subject: the relations are shared by design
        report(fit_items=[(r, s) for s in SUBJECTS[:30] for r in RELATIONS], eval_items=[(r, s) for s in SUBJECTS[30:] for r in RELATIONS]),
        # homework 03's master: (ability, index) ids of seven abilities, every other item on each side
        report(fit_items=[(f"ability {a}", i) for a in range(7) for i in range(0, 10, 2)],
               eval_items=[(f"ability {a}", i) for a in range(7) for i in range(1, 11, 2)][:30]),
        # the outside try's: numpy float32 arrays, a tuple and a pandas Index; tensors of float64; 0/1 outcomes
        report(fit_items=tuple(SUBJECTS[:30]), eval_items=pd.Index(SUBJECTS[30:]), effect=EFFECT.astype(np.float32),
               control=np.random.default_rng(2).normal(0, 0.3, 30).astype(np.float32)),
        report(eval_items=SUBJECTS[30:42], effect=torch.tensor(EFFECT[:12]), control=torch.tensor(EFFECT[12:24])),
        report(fit_items=[("arith", i) for i in range(0, 60, 2)], eval_items=[("arith", i) for i in range(1, 60, 2)],
               effect=(np.arange(30) % 3 == 0).astype(int).tolist(), control=(np.arange(30) % 4 == 0).astype(int).tolist()),
        # a real control close to the effect, but not within rounding of it on every unit
        report(effect=(EFFECT * 1e-3).tolist(), control=(EFFECT * 1e-3 + np.linspace(0, 3e-4, 30)).tolist()),
    ],
)  # fmt: skip
def test_study_accepts_the_reports_the_statements_allow(study, capsys):
    diff, low, high = grading.check_study(study)
    assert low <= diff <= high
    assert "✓ study" in capsys.readouterr().out


def test_study_not_done_and_side_effects():
    with pytest.raises(ExerciseNotDone):
        grading.check_study(not_done)
    model = ref.gpt2(0)
    before = _hook_ids(model)

    def leaves_a_hook():
        blocks(model)[0].register_forward_hook(lambda *a: None)
        return report()()

    rejects(lambda fn: grading.check_study(fn, model), leaves_a_hook, "left a hook")
    assert _hook_ids(model) == before
    rejects(grading.check_study, lambda: report()()["effect"][1000], "IndexError")


def test_study_restores_a_replaced_forward_and_keeps_transformers_hooks(capsys):
    model = ref.llama_like(7)
    ids = torch.randint(3, 64, (2, 4))
    with torch.no_grad():
        clean = model(ids).logits

    def patches_forward():
        blocks(model)[0].mlp.forward = lambda x: torch.zeros_like(x)
        return report()()

    rejects(lambda fn: grading.check_study(fn, model), patches_forward, "replaced `forward` on `model.layers.0.mlp`")
    with torch.no_grad():
        assert torch.equal(model(ids).logits, clean)

    def reads_hidden_states():  # the first request for hidden states: transformers registers hooks of its own
        with torch.no_grad():
            model(ids, output_hidden_states=True)
        return report()()

    model = ref.llama_like(8)  # a model that never returned hidden states
    grading.check_study(reads_hidden_states, model)
    assert "✓ study" in capsys.readouterr().out
    with torch.no_grad():
        assert len(model(ids, output_hidden_states=True).hidden_states) == 3


def test_study_restores_a_swapped_submodule_and_a_patched_class():
    model = ref.llama_like(9)
    mlp, proj = blocks(model)[0].mlp, blocks(model)[0].mlp.down_proj
    forward = type(mlp).forward

    def swaps_the_down_projection():
        mlp.down_proj = torch.nn.Identity()
        return report()()

    def patches_the_class():
        type(mlp).forward = lambda self, x: x
        return report()()

    rejects(lambda fn: grading.check_study(fn, model), swaps_the_down_projection, "the submodules of `model.layers.0.mlp`")
    assert mlp.down_proj is proj
    rejects(lambda fn: grading.check_study(fn, model), patches_the_class, "`Qwen2MLP.forward`")
    assert type(mlp).forward is forward
