"""The hf profile's code paths, executed offline.

Every hub model the hf profile names is replaced by a small random stand-in of the same architecture, saved in a
private Hugging Face cache; the notebooks then run with WORKBOOK_PROFILE=hf and HF_HUB_OFFLINE=1. The numbers
they print are meaningless, but a cell that only breaks on real models' configs, tokenizers or chat templates
(no BOS token, another context-length field, an encoder for embeddings) fails here.
"""

from pathlib import Path

import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
from safetensors.torch import save_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    Qwen2Config,
    Qwen2ForCausalLM,  # fmt: skip
)

from utils.notebooks import execute
from utils.paths import LECTURES, MODELS, ROOT, SOLUTIONS
from utils.profiles import PROFILES

QWEN_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")  # fmt: skip
R1_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
               "{% else %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
               "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}")  # fmt: skip
NOTEBOOKS = sorted(LECTURES.glob("*.ipynb")) + sorted(SOLUTIONS.glob("*.ipynb"))


def stand_in(model_id: str):
    """A random model of the hub model's architecture, with the TinyWorld tokenizer dressed like the real one."""
    tokenizer = AutoTokenizer.from_pretrained(MODELS / "tinyworld-chat")
    small = {"vocab_size": len(tokenizer)}
    if model_id.startswith(("Qwen/", "deepseek-ai/DeepSeek-R1-Distill-Qwen")):  # Qwen2 architecture
        if model_id.startswith("Qwen/"):  # no BOS token, ChatML template, max_position_embeddings
            tokenizer.bos_token, tokenizer.chat_template = None, QWEN_TEMPLATE
        else:  # R1's template: a BOS token, and the assistant turn opens the thinking itself
            tokenizer.chat_template = R1_TEMPLATE
        config = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, **small)  # fmt: skip
        return Qwen2ForCausalLM(config), tokenizer
    if model_id.startswith("gpt2"):  # 12 blocks, so that the SAE's layer (8) exists
        return GPT2LMHeadModel(GPT2Config(n_layer=12, n_embd=32, n_head=2, n_positions=512, **small)), tokenizer
    if "MiniLM" in model_id:
        config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, **small)
        return BertModel(config), tokenizer
    raise ValueError(f"no stand-in for {model_id}")


def cached_snapshot(home: Path, repo_id: str) -> Path:
    """The folder where the Hugging Face cache under `home` keeps the main revision of repo_id."""
    repo, revision = home / "hub" / f"models--{repo_id.replace('/', '--')}", "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("hf_home")
    for model_id in sorted(set(PROFILES["hf"].models.values())):
        torch.manual_seed(0)  # the same stand-ins in every process, so that a notebook prints the same thing
        model, tokenizer = stand_in(model_id)
        snapshot = cached_snapshot(home, model_id)
        model.save_pretrained(snapshot)
        tokenizer.save_pretrained(snapshot)
    release, sae_id = PROFILES["hf"].sae["release"], PROFILES["hf"].sae["sae_id"]
    sae_info = get_pretrained_saes_directory()[release]
    folder = cached_snapshot(home, sae_info.repo_id) / sae_info.saes_map[sae_id]
    torch.manual_seed(0)
    StandardSAE(StandardSAEConfig(d_in=32, d_sae=128)).save_model(folder)
    save_file({"sparsity": torch.full((128,), -3.0)}, folder / "sparsity.safetensors")
    return home


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_in_the_hf_profile(path, hf_cache, monkeypatch, record_property, record_notebook):
    monkeypatch.setenv("WORKBOOK_PROFILE", "hf")
    monkeypatch.setenv("HF_HOME", str(hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb, seconds, error = execute(path)
    record_property("notebook", f"{path.relative_to(ROOT)} (hf profile, random stand-ins)")
    record_notebook(f"{path.relative_to(ROOT)} (hf)", nb)
    assert error is None, str(error)[-3000:]
    assert "profile: hf" in nb.cells[1].outputs[0]["text"]
