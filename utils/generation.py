"""Batched text completion for any causal LM: left padding, greedy or sampled, stop at end-of-turn.

GPT-2-style models (the tiny profile's) are decoded by `decode_gpt2`, a loop over a preallocated KV cache that drops
finished rows from the batch; other models, and any model with forward hooks, by `model.generate`, which also
applies their generation config.
`python -m utils.generation` prints both speeds side by side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@torch.no_grad()
def complete(model, tokenizer, prompts: list[str], max_new_tokens: int = 32, temperature: float = 0.0,
             batch_size: int = 64, progress: bool = False, logprobs: bool = False):  # fmt: skip
    """Continue each prompt; return the new text up to (not including) the end-of-sequence token.

    Special tokens other than end-of-sequence and padding are kept, so tool calls stay visible.
    temperature 0 is greedy decoding; otherwise plain sampling at that temperature.
    logprobs=True returns (texts, each text's token log-probabilities under the model, a 1-D tensor per text).
    Either path gives the same tokens for a seed (greedy or sampled), up to float rounding at a near-tie.
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
            if type(model).__name__ == "GPT2LMHeadModel" and not _hooked(model):
                new_tokens, token_logprobs = decode_gpt2(model, batch.input_ids, batch.attention_mask, max_new_tokens,
                                                         temperature, tokenizer.eos_token_id, tokenizer.pad_token_id)  # fmt: skip
            else:
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
                    scores.append(token_logprobs[i, :end].float().cpu())
    finally:
        tokenizer.padding_side = side
    outputs, scores = _unsort(outputs, order), _unsort(scores, order) if logprobs else []
    return (outputs, scores) if logprobs else outputs


@torch.inference_mode()
def decode_gpt2(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                temperature: float, eos_id: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Decode a left-padded batch with a GPT-2 model: ([batch, steps] new tokens, pad after the end-of-sequence
    token; [batch, steps] their log-probabilities, before the temperature).

    What makes it faster than `model.generate` on a CPU: keys and values go into tensors allocated once (generate
    concatenates a growing cache at every step), the blocks are called directly, and once a quarter of the rows
    have ended they leave the batch. Sampling still draws one token for every row of the original batch (rows that
    left draw from a dummy distribution), so a seed gives the same samples as `model.generate` (up to float
    rounding at a tie).
    """
    body, n_head, width = model.transformer, model.config.n_head, model.config.n_embd
    rows, prompt_len = input_ids.shape
    mask = attention_mask.bool()
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens only
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True)
    total = prompt_len + max_new_tokens
    keys, values = [], []
    cache = out["cache"] if "cache" in out else out["past_key_values"]  # renamed in transformers 5.2x
    for layer in cache.layers:
        keys.append(layer.keys.new_zeros(rows, n_head, total, layer.keys.shape[-1]))
        values.append(torch.zeros_like(keys[-1]))
        keys[-1][:, :, :prompt_len], values[-1][:, :, :prompt_len] = layer.keys, layer.values
    seen = torch.zeros(rows, 1, 1, total, dtype=torch.bool, device=input_ids.device)
    seen[:, 0, 0, :prompt_len] = mask
    position, logits = positions[:, -1] + 1, out.logits[:, -1].float()
    row = torch.arange(rows, device=input_ids.device)  # which row of the output each live row is
    done = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
    tokens = torch.full((rows, max_new_tokens), pad_id, device=input_ids.device)
    token_logprobs = torch.zeros(rows, max_new_tokens, device=input_ids.device)
    steps = 0
    for step in range(max_new_tokens):
        if temperature > 0:  # one draw per row of the whole batch, as generate makes them: the same random numbers
            probs = torch.full((rows, logits.shape[-1]), 1.0 / logits.shape[-1], device=logits.device)
            probs[row] = (logits / temperature).softmax(-1)
            token = torch.multinomial(probs, num_samples=1)[row, 0]
        else:
            token = logits.argmax(-1)
        live = ~done
        tokens[row[live], step] = token[live]
        token_logprobs[row[live], step] = logits.log_softmax(-1).gather(-1, token[:, None])[live, 0]
        done |= token == eos_id
        steps = step + 1
        if done.all() or steps == max_new_tokens:
            break
        if done.sum() * 4 >= len(done):  # drop the finished rows and their cache
            keep = (~done).nonzero()[:, 0]
            row, token, position, seen, done = row[keep], token[keep], position[keep], seen[keep], done[keep]
            keys, values = [k[keep] for k in keys], [v[keep] for v in values]
        n, t = len(token), prompt_len + step
        seen[:, 0, 0, t] = True
        x = (body.wte(token) + body.wpe(position))[:, None]
        for i, block in enumerate(body.h):
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(width, dim=2)
            q, k, v = (z.view(n, 1, n_head, -1).transpose(1, 2) for z in (q, k, v))
            keys[i][:, :, t : t + 1], values[i][:, :, t : t + 1] = k, v
            attended = F.scaled_dot_product_attention(q, keys[i][:, :, : t + 1], values[i][:, :, : t + 1],
                                                      attn_mask=seen[..., : t + 1])  # fmt: skip
            x = x + block.attn.c_proj(attended.transpose(1, 2).reshape(n, 1, width))
            x = x + block.mlp(block.ln_2(x))
        logits = model.lm_head(body.ln_f(x))[:, 0].float()
        position = position + 1
    return tokens[:, :steps], token_logprobs[:, :steps]


def _hooked(model) -> bool:
    """Whether forward hooks could change the model's computation (steering, ablation): `decode_gpt2` calls the
    blocks' parts directly and would skip them, so such a model is decoded by `model.generate`."""
    from torch.nn.modules import module

    return bool(module._global_forward_hooks or module._global_forward_pre_hooks) or any(
        m._forward_hooks or m._forward_pre_hooks for m in model.modules())  # fmt: skip


def _unsort(values: list, order: list[int]) -> list:
    restored = [None] * len(values)
    for position, index in enumerate(order):
        restored[index] = values[position]
    return restored


@torch.no_grad()
def teacher_forced(model, tokenizer, prompts: list[str], continuations: list[str], batch_size: int = 64
                   ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:  # fmt: skip
    """Each continuation read after its prompt (teacher forcing): per pair, three 1-D tensors over the
    continuation's tokens: log P(token | everything before it), the token itself, and the model's top-1 guess there.
    A prompt of "" scores the continuation from its second token on."""
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    scores = []
    try:
        for i in range(0, len(prompts), batch_size):
            pairs = list(zip(prompts[i : i + batch_size], continuations[i : i + batch_size], strict=True))
            starts = [max(1, len(tokenizer(p, add_special_tokens=False).input_ids)) for p, _ in pairs]
            batch = tokenizer([p + c for p, c in pairs], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            logits = model(**batch).logits
            for row, start in enumerate(starts):  # normalise only where the continuation is read
                span = slice(start - 1, int(batch.attention_mask[row].sum()) - 1)
                logprobs, tokens = logits[row, span].float().log_softmax(-1), batch.input_ids[row, 1:][span]
                scores.append((logprobs.gather(-1, tokens[:, None])[:, 0].cpu(), tokens.cpu(), logprobs.argmax(-1).cpu()))
    finally:
        tokenizer.padding_side = side
    return scores


def token_logprobs(model, tokenizer, prompts: list[str], continuations: list[str], batch_size: int = 64) -> list[torch.Tensor]:
    """log P(token | everything before it) for each token of each continuation after its prompt (teacher forcing):
    one 1-D tensor per pair. A prompt of "" scores the continuation from its second token on."""
    return [logprobs for logprobs, _, _ in teacher_forced(model, tokenizer, prompts, continuations, batch_size)]


def continuation_logprobs(model, tokenizer, prompts: list[str], continuations: list[str], batch_size: int = 64) -> list[float]:
    """log P(continuation | prompt) under the model, summed over the continuation's tokens, for each pair."""
    return [t.sum().item() for t in token_logprobs(model, tokenizer, prompts, continuations, batch_size)]


def benchmark(name: str = "tinyworld-reasoning", n_problems: int = 100, samples: int = 8, batch_size: int = 400,
              max_new_tokens: int = 160) -> dict[str, float]:  # fmt: skip
    """New tokens per second on the lecture 04 workload (hard-tier problems, 8 samples each at temperature 1):
    `model.generate` against `decode_gpt2`, in the same process, same batches."""
    import random
    import time

    from utils.models import load_model
    from utils.tinyworld import reasoning, tasks

    model, tokenizer = load_model(name)
    tokenizer.padding_side = "left"
    rng = random.Random(0)
    prompts = [tasks.chat_prompt(reasoning.chain_problem(rng, "hard").question) for _ in range(n_problems)] * samples
    batches = [tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
               for i in range(0, len(prompts), batch_size)]  # fmt: skip

    def generate(batch):
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=True, top_k=0, temperature=1.0,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
        return out[:, batch.input_ids.shape[1] :]

    def decode(batch):
        return decode_gpt2(model, batch.input_ids, batch.attention_mask, max_new_tokens, 1.0, tokenizer.eos_token_id,
                           tokenizer.pad_token_id)[0]  # fmt: skip

    speed = {}
    for label, run in (("model.generate", generate), ("decode_gpt2", decode)):
        torch.manual_seed(0)
        start, new = time.perf_counter(), 0
        for batch in batches:
            new += int((run(batch) != tokenizer.pad_token_id).sum())  # up to and including the end-of-turn token
        speed[label] = new / (time.perf_counter() - start)
        print(f"{label:>15}: {speed[label]:7,.0f} new tokens/s ({new:,} tokens; {name}, {len(prompts)} samples, "
              f"batch {batch_size}, {torch.get_num_threads()} threads)")
    print(f"decode_gpt2 is {speed['decode_gpt2'] / speed['model.generate']:.1f}x as fast as model.generate")
    return speed


if __name__ == "__main__":
    from utils.runtime import set_threads

    set_threads()
    benchmark()
