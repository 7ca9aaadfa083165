"""The hf profile's code paths (loading, chat template, residual hooks) on randomly initialised tiny GPT-2, Qwen2
and Gemma2 models, so they are exercised without downloads."""

import pytest
import torch
from transformers import AutoTokenizer, Gemma2Config, GPT2Config, Qwen2Config

from utils import hooks
from utils.models import load_model
from utils.paths import MODELS

TOKENIZER = MODELS / "tinyworld-chat"
CONFIGS = {
    "gpt2": lambda v: GPT2Config(vocab_size=v, n_positions=64, n_embd=32, n_layer=2, n_head=2),
    "qwen2": lambda v: Qwen2Config(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64),
    "gemma2": lambda v: Gemma2Config(vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                     max_position_embeddings=64, final_logit_softcapping=30.0),
}  # fmt: skip


@pytest.fixture(scope="module", params=list(CONFIGS))
def random_model(request, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[request.param](len(tokenizer)))
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return load_model(str(folder))


def test_loads_from_safetensors_in_eval_mode(random_model):
    model, tokenizer = random_model
    assert not model.training and model.config.vocab_size == len(tokenizer)


def test_chat_template_renders_a_generation_prompt(random_model):
    model, tokenizer = random_model
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|assistant|>") and "Hi" in text
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 3


def test_residual_stream_and_unembed_reproduce_the_logits(random_model):
    model, tokenizer = random_model
    ids = tokenizer("<|bos|>The capital of", return_tensors="pt", add_special_tokens=False).input_ids
    resid = hooks.residual_stream(model, ids)
    assert resid.shape == (len(hooks.blocks(model)) + 1, 1, ids.shape[1], model.config.hidden_size)
    with torch.no_grad():
        logits = model(ids).logits
        assert torch.allclose(hooks.unembed(model, resid[-1]), logits, atol=1e-4)


def test_add_to_residual_steers_and_then_detaches(random_model):
    model, tokenizer = random_model
    ids = tokenizer("<|bos|>The capital of", return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        before = model(ids).logits
        with hooks.add_to_residual(model, 0, torch.zeros(model.config.hidden_size)):
            assert torch.allclose(model(ids).logits, before)
        with hooks.add_to_residual(model, 0, 10 * torch.randn(model.config.hidden_size), positions=-1):
            steered = model(ids).logits
        after = model(ids).logits
    assert not torch.allclose(steered[:, -1], before[:, -1]) and torch.allclose(steered[:, :-1], before[:, :-1])
    assert torch.equal(after, before)
