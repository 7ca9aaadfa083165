"""The one fine-tuning helper: label-masked SFT on chat examples, full or LoRA (peft), returning a new model.

An example is a list of (text, trained) segments, as in `utils.tinyworld.tasks`: the loss is taken only on the
segments marked True (the assistant's reply), never on the prompt. The base model is never modified.

    tuned, log = finetune(model, tok, [chat_example(tok, "Hi", "Hello.")], steps=50, lr=1e-3)
    tuned, log = finetune(model, tok, examples, steps=50, lr=1e-3, lora_rank=4)   # LoRA, merged back
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from utils.runtime import seed_everything

Example = list[tuple[str, bool]]


def chat_example(tokenizer, user: str, assistant: str) -> Example:
    """One chat turn rendered with the tokenizer's chat template: the prompt untrained, the reply trained."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
                                         tokenize=False)  # fmt: skip
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently inside a whole conversation")
    return [(prompt, False), (full[len(prompt) :], True)]


def tokenize_example(tokenizer, example: Example | tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
    """(input ids, labels): each segment tokenized on its own; labels are -100 on untrained segments.
    An example given as (ids, labels) already, to train some tokens of a segment and not others, is kept."""
    if isinstance(example, tuple):
        ids, labels = example
        if len(ids) != len(labels):
            raise ValueError(f"an (ids, labels) example needs one label per id, got {len(ids)} and {len(labels)}")
        return list(ids), list(labels)
    ids, labels = [], []
    for text, trained in example:
        segment = tokenizer(text, add_special_tokens=False).input_ids
        ids += segment
        labels += segment if trained else [-100] * len(segment)
    return ids, labels


@dataclass
class TrainingLog:
    loss: list[float] = field(default_factory=list)  # per step
    evals: list[tuple[int, object]] = field(default_factory=list)  # (steps done, evaluate(model))
    seconds: float = 0.0


def batches(encoded: Sequence[tuple[list[int], list[int]]], batch_size: int, rng: random.Random, pad_id: int):
    """Endless length-bucketed batches: shuffle, sort each window of 8 batches by length, shuffle the batches."""
    while True:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        window = 8 * batch_size
        chunks = []
        for start in range(0, len(order), window):
            by_length = sorted(order[start : start + window], key=lambda i: len(encoded[i][0]))
            chunks += [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            width = max(len(encoded[i][0]) for i in chunk)
            ids = torch.full((len(chunk), width), pad_id)
            labels = torch.full((len(chunk), width), -100)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                x, y = encoded[i]
                ids[row, : len(x)], labels[row, : len(y)], mask[row, : len(x)] = torch.tensor(x), torch.tensor(y), 1
            yield ids, labels, mask


Tokenized = tuple[list[int], list[int]]  # (ids, labels)


def bf16_is_native(device: torch.device) -> bool:
    """Whether the device computes in bfloat16 itself: a GPU that supports it, or a CPU with bf16 instructions.
    Elsewhere (AVX2-only CPUs, most laptops) bfloat16 is emulated and trains about ten times slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def finetune(model, tokenizer, examples: Sequence[Example | Tokenized], steps: int, lr: float, batch_size: int = 16,
             lora_rank: int | None = None, lora_alpha: float | None = None, dropout: float = 0.0,
             weight_decay: float = 0.0, seed: int = 0, evaluate: Callable | None = None, eval_every: int = 0,
             progress: bool = True, max_tokens: int = 256, train_only: Sequence[str] | None = None):  # fmt: skip
    """Fine-tune a copy of `model` on `examples` for `steps` optimizer steps; return (tuned model, TrainingLog).

    lora_rank: None trains every weight; an int trains LoRA adapters of that rank on every linear layer (peft),
    merged into the returned model. lora_alpha defaults to 2 * rank. dropout: the probability set on the model's
    dropout layers (and LoRA's) while training. evaluate(model) is called every eval_every steps and at the end
    (never before the first step: measure the base model once, yourself), its results kept in log.evals.
    examples: lists of (text, trained) segments, or (ids, labels) pairs. Deterministic for a seed.
    train_only: names of the parameters to train (e.g. ["transformer.h.2.mlp.c_proj.weight"]); the rest stay frozen.
    """
    if not examples:
        raise ValueError("no training examples")
    if steps < 1 or lr <= 0:
        raise ValueError(f"steps must be >= 1 and lr > 0, got steps={steps}, lr={lr}")
    seed_everything(seed)
    tuned = copy.deepcopy(model).requires_grad_(True)  # a model merged from LoRA comes back frozen
    if train_only is not None:
        if lora_rank is not None:
            raise ValueError("train_only selects weights to train in full; it cannot be combined with lora_rank")
        named = dict(tuned.named_parameters())
        if missing := set(train_only) - set(named):
            raise ValueError(f"no parameters named {sorted(missing)}; e.g. {list(named)[:3]}")
        for name, param in named.items():
            param.requires_grad_(name in train_only)
    if lora_rank is not None:
        from peft import LoraConfig, get_peft_model
        from transformers.pytorch_utils import Conv1D

        conv1d = any(isinstance(m, Conv1D) for m in tuned.modules())  # GPT-2 stores its linear layers transposed
        config = LoraConfig(r=lora_rank, lora_alpha=lora_alpha or 2 * lora_rank, lora_dropout=dropout,
                            target_modules="all-linear", fan_in_fan_out=conv1d)  # fmt: skip
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing to act on
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            tuned = get_peft_model(tuned, config)
    for module in tuned.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = dropout
    encoded = [tokenize_example(tokenizer, ex) for ex in examples]
    encoded = [(x[:max_tokens], y[:max_tokens]) for x, y in encoded]
    if not any(label != -100 for _, y in encoded for label in y):
        raise ValueError("no example has a trained segment: nothing to learn")
    stream = batches(encoded, batch_size, random.Random(seed), tokenizer.pad_token_id)
    params = [p for p in tuned.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    warmup = max(1, min(10, steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    device = next(tuned.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16_is_native(device))
    log = TrainingLog()
    t0 = time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc="fine-tuning", disable=not progress, leave=False):
        tuned.train()
        ids, labels, mask = (t.to(device) for t in next(stream))
        with autocast:
            loss = tuned(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        log.loss.append(loss.item())
        if evaluate is not None and (step == steps or (eval_every and step % eval_every == 0)):
            tuned.eval()
            log.evals.append((step, evaluate(tuned)))
    tuned.eval()
    if lora_rank is not None:
        tuned = tuned.merge_and_unload().requires_grad_(True)
    log.seconds = time.perf_counter() - t0
    if not all(math.isfinite(x) for x in log.loss):
        raise FloatingPointError(f"the loss diverged (lr={lr}): {log.loss[-5:]}")
    return tuned, log
