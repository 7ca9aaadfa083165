"""Profile choice, the model registry, offline loading and fast failure for hub models."""

import time

import pytest
import torch

from utils import models, profiles
from utils.paths import MODELS


def test_default_is_tiny(monkeypatch):
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    profile = profiles.get_profile()
    assert (profile.name, profile.chosen_by) == ("tiny", "default")


def test_environment_overrides_default_and_argument_overrides_environment(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "HF")
    assert (profiles.get_profile().name, profiles.get_profile().chosen_by) == ("hf", "$WORKBOOK_PROFILE")
    assert profiles.get_profile("tiny").chosen_by == "argument"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "large")
    with pytest.raises(ValueError, match=r"'large' \(from \$WORKBOOK_PROFILE\).*tiny, hf"):
        profiles.get_profile()


@pytest.mark.parametrize("profile", profiles.PROFILES.values(), ids=lambda p: p.name)
def test_every_profile_fills_every_role(profile):
    assert set(profile.models) == set(profiles.ROLES)


def test_tiny_models_are_shipped_as_safetensors():
    for name in set(profiles.PROFILES["tiny"].models.values()):
        folder = MODELS / name
        assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file(), folder
        assert not list(folder.glob("*.bin")), "weights must be safetensors, never pickles"


def test_hf_ids_are_in_the_offline_registries():
    """TransformerLens lists the models it supports and sae-lens its SAEs: an unknown id fails here, offline."""
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    from transformer_lens.loading_from_pretrained import get_official_model_name

    hf = profiles.PROFILES["hf"]
    for role in ("chat", "reasoning", "interp", "editing"):
        get_official_model_name(hf.models[role])  # raises ValueError on an unknown id
    with pytest.raises(ValueError):
        get_official_model_name("gpt2-nonexistent")
    directory = get_pretrained_saes_directory()
    release = directory[hf.sae["release"]]
    assert hf.sae["sae_id"] in release.saes_map
    assert get_official_model_name(release.model) == get_official_model_name(hf.models["interp"])


def test_tiny_model_loads_offline_and_answers(monkeypatch):
    from utils.tinyworld.world import load_world

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = models.load_model(profiles.PROFILES["tiny"].models["chat"])
    assert not model.training
    country, attrs = next(iter(load_world().countries.items()))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": f"What is the capital of {country}?"}], add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert attrs["capital"] in tokenizer.decode(out[0, inputs.input_ids.shape[1]:])


def test_unreachable_hub_fails_fast_with_advice(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    t0 = time.perf_counter()
    with pytest.raises(models.ModelUnavailableError, match="tiny profile"):
        models.load_model("openai-community/gpt2")
    assert time.perf_counter() - t0 < 5


def test_offline_flag_fails_fast_without_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelUnavailableError, match="HF_HUB_OFFLINE"):
        models.load_model("Qwen/Qwen2.5-0.5B-Instruct")


def test_loading_refuses_remote_code_and_pickles(monkeypatch, tmp_path):
    """from_pretrained is called with trust_remote_code=False and use_safetensors=True."""
    seen = {}

    class Recorder:
        @classmethod
        def from_pretrained(cls, source, **kwargs):
            seen.update(kwargs)
            raise RuntimeError("stop here")

    import transformers

    monkeypatch.setattr(transformers, "AutoModelForCausalLM", Recorder)
    with pytest.raises(RuntimeError, match="stop here"):
        models.load_model(profiles.PROFILES["tiny"].models["chat"])
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True
