"""Reading and writing the residual stream of Hugging Face causal LMs, whatever the architecture.

GPT-2 keeps its blocks in `transformer.h` and its final norm in `transformer.ln_f`; Llama, Qwen2 and Gemma2 in
`model.layers` and `model.norm`. These helpers hide that difference so that a lecture's code runs unchanged
on TinyWorld models and on real ones.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def _body(model):
    return model.transformer if hasattr(model, "transformer") else model.model


def blocks(model) -> torch.nn.ModuleList:
    """The transformer blocks (decoder layers), in order."""
    body = _body(model)
    return body.h if hasattr(body, "h") else body.layers


def final_norm(model) -> torch.nn.Module:
    body = _body(model)
    return body.ln_f if hasattr(body, "ln_f") else body.norm


def unembed(model, resid: torch.Tensor) -> torch.Tensor:
    """Logits the model would output if `resid` were its last residual stream (final norm, then unembedding)."""
    logits = model.get_output_embeddings()(final_norm(model)(resid))
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


def position_ids(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Positions counted from each row's first real token, so that left padding changes nothing.

    Hugging Face's forward (unlike `generate`) numbers positions 0..seq-1 whatever the mask: with absolute
    position embeddings (GPT-2) a left-padded prompt would then be read at the wrong positions.
    """
    return None if attention_mask is None else (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


@torch.no_grad()
def residual_stream(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Residual stream before block 0 and after every block: [n_layers + 1, batch, seq, d_model]."""
    states, handles = [], []
    layers = blocks(model)
    handles.append(layers[0].register_forward_pre_hook(
        lambda module, args, kwargs: states.append(_hidden(args[0] if args else kwargs["hidden_states"])),
        with_kwargs=True))  # fmt: skip
    for layer in layers:
        handles.append(layer.register_forward_hook(lambda module, args, output: states.append(_hidden(output))))
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(states)


@contextmanager
def rewrite_residual(model, layer: int, fn):
    """Within the block, the residual stream after block `layer` becomes fn(hidden) ([batch, seq, d_model]).

    fn may return None to leave a forward pass unchanged.
    """

    def hook(module, args, output):
        hidden = fn(_hidden(output))
        if hidden is None:
            return output
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = blocks(model)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def add_to_residual(model, layer: int, vector: torch.Tensor, positions: slice | int = slice(None)):
    """Within the block, add `vector` to the residual stream after block `layer` at `positions`.

    The default, every position, also steers each generated token. A single position (e.g. -1, the prompt's last
    token) is a prompt position: cached generation steps (one new token) pass unchanged.
    """

    def add(hidden):
        if isinstance(positions, int) and hidden.shape[1] == 1:
            return None
        hidden = hidden.clone()
        hidden[:, positions] += vector.to(hidden.dtype)
        return hidden

    return rewrite_residual(model, layer, add)
