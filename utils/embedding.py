"""Sentence embeddings from any encoder or decoder: mean of the last hidden states, unit length."""

from __future__ import annotations

import torch


@torch.no_grad()
def embed(model, tokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """[len(texts), hidden] unit vectors; cosine similarity is then a dot product."""
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    vectors = []
    try:
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True).to(model.device)
            hidden = model(**batch).last_hidden_state.float()
            mask = batch.attention_mask[..., None].float()
            vectors.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).cpu())
    finally:
        tokenizer.padding_side = side
    return torch.cat(vectors) if vectors else torch.empty(0, model.config.hidden_size)
