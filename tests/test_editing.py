"""Model-editing plumbing on the TinyWorld chat organism: subject spans, keys, the key covariance, value shifts
and the edit metrics."""

import pytest
import torch

from utils import editing
from utils.generation import teacher_forced
from utils.interp import mlp_out_proj, neuron_values, record_inputs
from utils.models import load_model
from utils.tinyworld import tasks
from utils.tinyworld.world import load_world


@pytest.fixture(scope="module")
def organism():
    model, tokenizer = load_model("tinyworld-chat")
    model.requires_grad_(False)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return model, tokenizer


@pytest.fixture(scope="module")
def cases():
    return tasks.edit_cases(load_world())[:6:2]  # three subjects


def test_encode_with_subject_finds_the_subject_tokens(organism):
    _, tokenizer = organism
    text = tasks.BOS + "The employer of Ada Quill is"
    ids, start, end = editing.encode_with_subject(tokenizer, text, "Ada Quill")
    assert tokenizer.decode(ids[start:end]).strip() == "Ada Quill"
    assert ids == tokenizer(text, add_special_tokens=False).input_ids


def test_subject_keys_are_the_down_projection_inputs_at_the_last_subject_token(organism, cases):
    model, tokenizer = organism
    keys = editing.subject_keys(model, tokenizer, cases, 1, lambda c: [tasks.BOS + c["prompt"], c["prompt"]])
    assert keys.shape == (3, 2, neuron_values(model, 1).shape[0])
    ids, _, end = editing.encode_with_subject(tokenizer, tasks.BOS + cases[2]["prompt"], cases[2]["subject"])
    (alone,) = record_inputs(model, [mlp_out_proj(model, 1)], torch.tensor([ids]))
    assert torch.allclose(keys[2, 0], alone[0, end - 1], atol=1e-5)  # padding after a prompt changes nothing


def test_key_covariance_is_the_mean_outer_product_over_real_tokens(organism):
    model, tokenizer = organism
    texts = [tasks.BOS + "Tumuki is a city.", tasks.BOS + "Hi."]
    C, n = editing.key_covariance(model, tokenizer, texts, [0], batch_size=2)
    keys = [record_inputs(model, [mlp_out_proj(model, 0)], tokenizer(t, return_tensors="pt").input_ids)[0][0] for t in texts]
    keys = torch.cat(keys)
    assert n == len(keys) and torch.allclose(C[0], keys.T @ keys / n, atol=1e-5)


def test_value_shift_makes_the_new_object_likelier_and_metrics_read_it(organism, cases):
    model, tokenizer = organism
    before = editing.answers(model, tokenizer, cases, bos=tasks.BOS)
    unedited = editing.edit_metrics(before, before, cases)
    assert unedited["CounterFact reliability"] == [0.0, 0.0, 0.0]
    assert unedited["EasyEdit locality"] == [1.0] * 3  # the model compared with itself
    delta = editing.value_shifts(model, tokenizer, cases, 0, lambda c: [], bos=tasks.BOS, kl_weight=0)
    key = editing.subject_keys(model, tokenizer, cases, 0, lambda c: [tasks.BOS + c["prompt"]])[:, 0]
    after, W = {}, neuron_values(model, 0).clone()
    for i, case in enumerate(cases):  # write delta for this key alone: the minimum-norm rank-one change
        change = torch.outer(key[i] / (key[i] @ key[i]), delta[i])
        with editing.Edited(model, 0, change):
            after.update({(i, p, a): s for (_, p, a), s in editing.answers(model, tokenizer, [case], bos=tasks.BOS).items()})
    assert torch.equal(neuron_values(model, 0), W)  # every edit undone
    edited = editing.edit_metrics(after, before, cases)
    assert edited["CounterFact reliability"] == [1.0, 1.0, 1.0]


def test_without_edited_neighbours_drops_prompts_about_edited_subjects(cases):
    batch = [dict(cases[0], neighbour_prompts=[cases[1]["prompt"], "Nobody here is"]), cases[1]]
    assert editing.without_edited_neighbours(batch)[0]["neighbour_prompts"] == ["Nobody here is"]


def test_new_object_nll_at_zero_shift_is_the_teacher_forced_loss(organism, cases):
    model, tokenizer = organism
    delta = torch.zeros(len(cases), model.config.hidden_size, requires_grad=True)
    nll = editing.new_object_nll(model, tokenizer, cases, 2, delta, bos=tasks.BOS)
    scores = teacher_forced(model, tokenizer, [tasks.BOS + c["prompt"] for c in cases], [" " + c["target_new"] for c in cases])
    assert torch.isclose(nll, -torch.cat([s[0] for s in scores]).mean(), atol=1e-4)
    nll.backward()
    assert delta.grad.abs().sum() > 0  # the loss reaches the shift
