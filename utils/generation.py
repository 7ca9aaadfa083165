"""Batched text completion for any causal LM: left padding, greedy or sampled, stop at end-of-turn."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def complete(model, tokenizer, prompts: list[str], max_new_tokens: int = 32, temperature: float = 0.0,
             batch_size: int = 64, progress: bool = False, logprobs: bool = False):  # fmt: skip
    """Continue each prompt; return the new text up to (not including) the end-of-sequence token.

    Special tokens other than end-of-sequence and padding are kept, so tool calls stay visible.
    temperature 0 is greedy decoding; otherwise plain sampling at that temperature.
    logprobs=True returns (texts, log-probabilities of those texts under the model) instead of texts.
    """
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch: less padding
    outputs, scores = [], []
    try:
        batches = range(0, len(prompts), batch_size)
        for i in tqdm(batches, desc="generating", disable=not progress or len(batches) < 2):
            chunk = [prompts[j] for j in order[i : i + batch_size]]
            batch = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            generated = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                       eos_token_id=tokenizer.eos_token_id, output_logits=logprobs,
                                       return_dict_in_generate=True, **sampling)  # fmt: skip
            new_tokens = generated.sequences[:, batch.input_ids.shape[1] :]
            if logprobs:
                steps = torch.stack(generated.logits, dim=1).float().log_softmax(-1)
                token_logprobs = steps.gather(-1, new_tokens[..., None])[..., 0]
            for i, row in enumerate(new_tokens.tolist()):
                end = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
                outputs.append(tokenizer.decode([t for t in row[:end] if t != tokenizer.pad_token_id]))
                if logprobs:
                    scores.append(token_logprobs[i, :end].sum().item())
    finally:
        tokenizer.padding_side = side
    outputs, scores = _unsort(outputs, order), _unsort(scores, order) if logprobs else []
    return (outputs, scores) if logprobs else outputs


def _unsort(values: list, order: list[int]) -> list:
    restored = [None] * len(values)
    for position, index in enumerate(order):
        restored[index] = values[position]
    return restored


@torch.no_grad()
def continuation_logprobs(model, tokenizer, prompts: list[str], continuations: list[str], batch_size: int = 64) -> list[float]:
    """log P(continuation | prompt) under the model, summed over the continuation's tokens, for each pair."""
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    scores = []
    try:
        for i in range(0, len(prompts), batch_size):
            pairs = list(zip(prompts[i : i + batch_size], continuations[i : i + batch_size], strict=True))
            starts = [len(tokenizer(p, add_special_tokens=False).input_ids) for p, _ in pairs]
            batch = tokenizer([p + c for p, c in pairs], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            logprobs = model(**batch).logits[:, :-1].float().log_softmax(-1)
            token_logprobs = logprobs.gather(-1, batch.input_ids[:, 1:, None])[..., 0]
            for row, start in enumerate(starts):
                end = int(batch.attention_mask[row].sum())
                scores.append(token_logprobs[row, start - 1 : end - 1].sum().item())
    finally:
        tokenizer.padding_side = side
    return scores
