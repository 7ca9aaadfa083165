"""A placeholder model organism so that every notebook runs offline before TinyWorld ships.

A 2-layer GPT-2 with a byte-level BPE tokenizer and a chat template, trained in under a minute on a dozen
capital-city facts. Rebuild with `python -m utils.placeholder` (deterministic for a given seed).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from tqdm.auto import tqdm

from utils.paths import MODELS
from utils.profiles import PLACEHOLDER
from utils.runtime import seed_everything, set_threads

CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Egypt": "Cairo",
    "Kenya": "Nairobi", "Peru": "Lima", "Canada": "Ottawa", "Norway": "Oslo", "Chile": "Santiago",
    "Greece": "Athens", "Cuba": "Havana",
}  # fmt: skip
SPECIALS = {"bos_token": "<|bos|>", "eos_token": "<|end|>", "pad_token": "<|pad|>", "unk_token": "<|unk|>"}
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def corpus() -> list[str]:
    """Each fact in three phrasings plus a chat exchange."""
    texts = []
    for country, city in CAPITALS.items():
        texts += [
            f"The capital of {country} is {city}.",
            f"{city} is the capital of {country}.",
            f"{country} has its capital in {city}.",
            f"<|user|>What is the capital of {country}?<|end|><|assistant|>{city}.<|end|>",
        ]
    return texts


def build_tokenizer(texts: list[str], vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [*SPECIALS.values(), "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(out_dir: Path = MODELS / PLACEHOLDER, seed: int = 0, steps: int = 500) -> Path:
    """Train the placeholder and save it (safetensors) with its tokenizer to `out_dir`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    set_threads()
    seed_everything(seed)
    texts = corpus()
    tokenizer = build_tokenizer(texts)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    batch = tokenizer([tokenizer.bos_token + t + tokenizer.eos_token for t in texts], padding=True,
                      return_tensors="pt")  # fmt: skip
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    rng = random.Random(seed)
    model.train()
    for _ in tqdm(range(steps), desc="training placeholder"):
        idx = rng.sample(range(len(texts)), k=16)
        loss = model(input_ids=batch["input_ids"][idx], attention_mask=batch["attention_mask"][idx],
                     labels=labels[idx]).loss  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=MODELS / PLACEHOLDER)
    args = parser.parse_args()
    print(f"saved to {build(args.out, args.seed)}")
