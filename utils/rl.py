"""Reinforcement learning from outcomes: GRPO, the loop of the R1 recipe, in one place for the lecture and the build.

Each step samples a group of replies per problem, scores each reply (for example 1 if its final answer is right),
and pushes up the replies that scored above their group's mean and down those below, with PPO's clipped ratio over
a few passes on the batch and a KL penalty that holds the policy near the model it started from:

    tuned, log = grpo(model, tok, problems, reward=right_answer, steps=100, settings=GRPOSettings(lr=1e-5))

`problems` are (prompt, answer) pairs; `reward(reply, answer)` returns a float. The start model is never modified.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from utils.generation import complete
from utils.runtime import seed_everything
from utils.tinyworld.tasks import parse_answer

LOSSES = ("grpo", "dr_grpo", "token_mean")  # how token terms become one loss (see `policy_loss`)


@dataclass(frozen=True)
class GRPOSettings:
    problems: int = 16  # problems per step
    group: int = 8  # replies sampled per problem
    temperature: float = 1.0
    lr: float = 1e-5
    passes: int = 2  # optimiser steps on each sampled batch (the ratio moves away from 1 after the first)
    clip: float = 0.2  # PPO's epsilon: the ratio new/old policy is clipped to 1 ± clip
    kl: float = 0.04  # weight of the KL estimate to the start model
    loss: str = "grpo"
    scale: bool = True  # divide advantages by the group's standard deviation (Dr. GRPO does not)
    max_new_tokens: int = 300
    shuffled: bool = False  # the control: each step's rewards permuted among its replies before the update


@dataclass
class GRPOLog:
    reward: list[float] = field(default_factory=list)  # mean reward of each step's samples
    accuracy: list[float] = field(default_factory=list)  # share of samples whose answer is right
    length: list[float] = field(default_factory=list)  # mean reply tokens
    kl: list[float] = field(default_factory=list)
    evals: list[tuple[int, object]] = field(default_factory=list)  # (steps done, evaluate(model))
    seconds: float = 0.0


def right_answer(reply: str, answer: int) -> float:
    """The outcome reward: 1 if the reply's final answer (`parse_answer`) is the right one, else 0."""
    return float(parse_answer(reply) == answer)


def group_advantages(rewards: torch.Tensor, scale: bool = True) -> torch.Tensor:
    """Rewards (problems, group) -> each reply's reward minus its group's mean, divided by the group's standard
    deviation (+ 1e-4) if `scale`. A group that scored all alike gets 0: it says nothing about which reply is better."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return centred / (rewards.std(dim=1, keepdim=True) + 1e-4) if scale else centred


def reply_logprobs(model, tokenizer, prompts: Sequence[str], replies: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(token | before) of each reply's tokens, the end-of-turn token included, after its prompt: ([n, T]
    log-probabilities, [n, T] mask of real tokens), right-padded; gradients flow if enabled."""
    end = tokenizer.eos_token
    prompt_ids = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    reply_ids = [tokenizer(r + end, add_special_tokens=False).input_ids for r in replies]
    width = max(len(p) + len(r) for p, r in zip(prompt_ids, reply_ids, strict=True))
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
    real = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.bool)  # which positions predict a reply token
    for i, (p, r) in enumerate(zip(prompt_ids, reply_ids, strict=True)):
        ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        real[i, : len(p) + len(r)] = 1
        mask[i, len(p) - 1 : len(p) + len(r) - 1] = True
    ids = ids.to(model.device)
    logits = model(input_ids=ids, attention_mask=real.to(ids.device)).logits
    logprobs = logits[:, :-1].float().log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
    mask = mask[:, :-1].to(logprobs.device)
    return logprobs * mask, mask


def policy_loss(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, settings: GRPOSettings) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(loss, mean KL per token). Per token: −min(ρA, clip(ρ, 1 ± ε)A) + β·KL, with ρ = exp(logp − logp_old) and
    KL estimated as exp(r) − r − 1, r = logp_ref − logp. Tokens become one number by `settings.loss`: "grpo", the
    mean over each reply's tokens then over replies (a long reply's tokens count less); "dr_grpo", each reply's sum
    divided by the longest reply allowed (no length bias); "token_mean" (DAPO), the mean over every token of the batch."""
    ratio = torch.exp(logp - logp_old)
    a = advantages[:, None]
    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - settings.clip, 1 + settings.clip) * a)
    r = logp_ref - logp
    kl = torch.exp(r) - r - 1
    per_token = (-surrogate + settings.kl * kl) * mask
    if settings.loss == "grpo":
        loss = (per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()
    elif settings.loss == "dr_grpo":
        loss = (per_token.sum(1) / settings.max_new_tokens).mean()
    elif settings.loss == "token_mean":
        loss = per_token.sum() / mask.sum().clamp(min=1)
    else:
        raise ValueError(f"loss must be one of {LOSSES}, not {settings.loss!r}")
    return loss, (kl * mask).sum() / mask.sum().clamp(min=1)


def grpo(model, tokenizer, problems: Sequence[tuple[str, int]], reward: Callable[[str, int], float] = right_answer,
         steps: int = 50, settings: GRPOSettings = GRPOSettings(), seed: int = 0,
         evaluate: Callable | None = None, eval_every: int = 0, progress: bool = True):  # fmt: skip
    """Train a copy of `model` with GRPO on `problems` for `steps` steps; return (the copy in eval mode, GRPOLog).
    `evaluate(model)` is called before the first step and every `eval_every` steps (and after the last)."""
    if settings.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, not {settings.loss!r}")
    if not problems or steps < 0:
        raise ValueError("grpo needs at least one problem and steps >= 0")
    seed_everything(seed)
    rng = random.Random(seed)
    reference = model.eval()
    policy = copy.deepcopy(model)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr)
    log, t0 = GRPOLog(), time.perf_counter()
    if evaluate and eval_every:
        log.evals.append((0, evaluate(policy.eval())))
    bar = tqdm(range(steps), desc="GRPO", disable=not progress)
    for step in bar:
        batch = rng.sample(list(problems), min(settings.problems, len(problems)))
        prompts = [p for p, _ in batch for _ in range(settings.group)]
        answers = [a for _, a in batch for _ in range(settings.group)]
        replies = complete(policy.eval(), tokenizer, prompts, max_new_tokens=settings.max_new_tokens,
                           temperature=settings.temperature, batch_size=len(prompts))  # fmt: skip
        rewards = torch.tensor([reward(r, a) for r, a in zip(replies, answers, strict=True)])
        if settings.shuffled:  # same samples, same number of updates, no information on which reply earned what
            rewards = rewards[rng.sample(range(len(rewards)), len(rewards))]
        advantages = group_advantages(rewards.view(len(batch), settings.group), settings.scale).flatten()
        log.reward.append(rewards.mean().item())
        log.accuracy.append(sum(map(right_answer, replies, answers)) / len(replies))
        log.length.append(sum(len(tokenizer(r).input_ids) for r in replies) / len(replies))
        keep = advantages.abs() > 0  # groups that scored all alike add nothing but their KL term
        kl_value = 0.0
        if keep.any():
            chosen = [i for i in range(len(replies)) if keep[i]]
            p, r, adv = [prompts[i] for i in chosen], [replies[i] for i in chosen], advantages[keep]
            with torch.no_grad():
                logp_old, mask = reply_logprobs(policy.eval(), tokenizer, p, r)
                logp_ref, _ = reply_logprobs(reference, tokenizer, p, r)
            policy.train()
            for _ in range(settings.passes):
                logp, _ = reply_logprobs(policy, tokenizer, p, r)
                loss, kl = policy_loss(logp, logp_old, logp_ref, adv.to(logp.device), mask, settings)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
                optimizer.step()
                kl_value = kl.item()
        log.kl.append(kl_value)
        bar.set_postfix(reward=f"{log.reward[-1]:.2f}", tokens=f"{log.length[-1]:.0f}")
        if evaluate and eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            log.evals.append((step + 1, evaluate(policy.eval())))
    log.seconds = time.perf_counter() - t0
    return policy.eval(), log
