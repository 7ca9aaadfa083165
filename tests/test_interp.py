"""Neuron, head and single-position hooks on randomly initialised GPT-2, Qwen2 and Gemma2 models."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.test_architectures import CONFIGS
from utils import interp
from utils.hooks import residual_stream


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(CONFIGS[request.param](64)).eval()


def test_record_inputs_and_neuron_values_reproduce_the_mlp_output(model):
    ids = torch.randint(64, (2, 5))
    proj = interp.mlp_out_proj(model, 1)
    outputs = []
    handle = proj.register_forward_hook(lambda m, a, out: outputs.append(out))
    (acts,) = interp.record_inputs(model, [proj], ids)
    handle.remove()
    bias = proj.bias if proj.bias is not None else 0
    assert torch.allclose(acts @ interp.neuron_values(model, 1) + bias, outputs[0], atol=1e-5)


def test_edit_input_zeroing_all_heads_equals_removing_attention_output(model):
    ids = torch.randint(64, (1, 6))
    with torch.no_grad():
        before = model(ids).logits
        with interp.edit_input(interp.attn_out_proj(model, 0), torch.zeros_like):
            ablated = model(ids).logits
        assert not torch.allclose(before, ablated)
        assert torch.equal(model(ids).logits, before)


def test_set_residual_overwrites_one_position_and_spares_cached_steps(model):
    ids = torch.randint(64, (2, 6))
    values = torch.randn(2, model.config.hidden_size)
    with interp.set_residual(model, 0, 2, values):
        stream = residual_stream(model, ids)
        generated = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert torch.allclose(stream[1, :, 2], values)
    assert torch.equal(stream[0], residual_stream(model, ids)[0])
    assert generated.shape == (2, 9)


def test_left_padding_changes_no_state(model):
    """A left-padded prompt must give the states it gives alone (GPT-2's absolute positions included)."""
    ids = torch.randint(1, 64, (1, 5))
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), ids], 1)
    mask = torch.cat([torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 5, dtype=torch.long)], 1)
    alone, with_pads = residual_stream(model, ids), residual_stream(model, padded, mask)
    assert torch.allclose(alone[:, 0], with_pads[:, 0, 2:], atol=1e-4)
    (acts,) = interp.record_inputs(model, [interp.mlp_out_proj(model, 1)], padded, mask)
    (acts_alone,) = interp.record_inputs(model, [interp.mlp_out_proj(model, 1)], ids)
    assert torch.allclose(acts[0, 2:], acts_alone[0], atol=1e-4)
