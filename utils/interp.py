"""Reading and rewriting MLP neurons, attention heads and single residual positions, whatever the architecture.

GPT-2 projects neurons back with `mlp.c_proj` and heads with `attn.c_proj` (Conv1D, weight [in, out]); Llama,
Qwen2 and Gemma2 with `mlp.down_proj` and `self_attn.o_proj` (Linear, weight [out, in]). The input of each
projection is what interpretability calls the neuron activations ([batch, seq, d_mlp]) and the concatenated head
outputs ([batch, seq, n_heads * d_head]).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch

from utils.hooks import blocks, position_ids, rewrite_residual


def mlp_out_proj(model, layer: int) -> torch.nn.Module:
    """The MLP's down projection in block `layer`; its input is the neuron activations."""
    mlp = blocks(model)[layer].mlp
    return mlp.c_proj if hasattr(mlp, "c_proj") else mlp.down_proj


def attn_out_proj(model, layer: int) -> torch.nn.Module:
    """The attention output projection in block `layer`; its input is the heads' outputs side by side."""
    block = blocks(model)[layer]
    return block.attn.c_proj if hasattr(block, "attn") else block.self_attn.o_proj


def neuron_values(model, layer: int) -> torch.Tensor:
    """The MLP's value vectors in block `layer`: [d_mlp, d_model], a view, so writing to it edits the model."""
    proj = mlp_out_proj(model, layer)
    return proj.weight if type(proj).__name__ == "Conv1D" else proj.weight.T


@contextmanager
def edit_input(module: torch.nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]):
    """Within the block, `module` sees fn(x) instead of its input x."""

    def hook(mod, args, kwargs):
        return (fn(args[0]), *args[1:]), kwargs

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def record_inputs(model, modules: list[torch.nn.Module], input_ids: torch.Tensor,
                  attention_mask: torch.Tensor | None = None) -> list[torch.Tensor]:  # fmt: skip
    """Run the model once; return the input each module received (e.g. neuron activations per layer)."""
    seen: dict[int, torch.Tensor] = {}
    handles = [
        m.register_forward_pre_hook(lambda mod, args, i=i: seen.__setitem__(i, args[0]))
        for i, m in enumerate(modules)
    ]
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask))
    finally:
        for handle in handles:
            handle.remove()
    return [seen[i] for i in range(len(modules))]


def set_residual(model, layer: int, position: int, values: torch.Tensor):
    """Within the block, overwrite the residual stream after block `layer` at `position` with values [batch, d_model].

    Only a forward pass over the prompt is patched: a cached generation step (one new token) passes unchanged,
    and later tokens read the patched position through the cache. Count `position` from the end (-1 is the last
    prompt token) when prompts are left-padded.
    """

    def overwrite(hidden):
        if hidden.shape[1] == 1:
            return None
        hidden = hidden.clone()
        hidden[:, position] = values.to(hidden.dtype)
        return hidden

    return rewrite_residual(model, layer, overwrite)
