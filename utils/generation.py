"""Batched text completion for any causal LM: left padding, greedy or sampled, stop at end-of-turn."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def complete(model, tokenizer, prompts: list[str], max_new_tokens: int = 32, temperature: float = 0.0,
             batch_size: int = 64, progress: bool = False) -> list[str]:  # fmt: skip
    """Continue each prompt; return the new text up to (not including) the end-of-sequence token.

    Special tokens other than end-of-sequence and padding are kept, so tool calls stay visible.
    temperature 0 is greedy decoding; otherwise plain sampling at that temperature.
    """
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
    outputs = []
    try:
        batches = range(0, len(prompts), batch_size)
        for i in tqdm(batches, desc="generating", disable=not progress or len(batches) < 2):
            batch = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            generated = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                       eos_token_id=tokenizer.eos_token_id, **sampling)  # fmt: skip
            for row in generated[:, batch.input_ids.shape[1] :].tolist():
                if tokenizer.eos_token_id in row:
                    row = row[: row.index(tokenizer.eos_token_id)]
                outputs.append(tokenizer.decode([t for t in row if t != tokenizer.pad_token_id]))
    finally:
        tokenizer.padding_side = side
    return outputs
