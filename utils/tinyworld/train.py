"""Build TinyWorld from its seed: the world file, the tokenizer and every checkpoint in data/models/.

    python -m utils.tinyworld.train               # every checkpoint whose recipe changed (`make tinyworld`)
    python -m utils.tinyworld.train --only math   # one checkpoint, if its recipe changed
    python -m utils.tinyworld.train --force       # rebuild even what is up to date

Deterministic for a given seed and thread count. Each checkpoint folder gets a training_log.json (loss curve,
tokens seen, seconds) beside its safetensors weights; data/models/recipes.json keeps each recipe's fingerprint (its
hyper-parameters, training examples, tokenizer and starting weights) from when it was built, so that only changed
recipes are trained again (and those that start from a retrained checkpoint). A change to the training loop itself
is not seen: use --force.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from utils.paths import MODELS
from utils.rl import GRPOSettings, grpo, right_answer
from utils.runtime import seed_everything, set_threads
from utils.tinyworld import reasoning, tasks
from utils.tinyworld.world import World, generate

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = {"bos_token": tasks.BOS, "eos_token": tasks.END, "pad_token": "<|pad|>", "unk_token": "<|unk|>"}
ROW = 256  # tokens per packed training row


@dataclass(frozen=True)
class Recipe:
    name: str
    epoch: Callable[[World, int], list[tasks.Example]]
    epochs: int
    n_embd: int
    n_layer: int
    n_head: int
    lr: float = 1e-3
    batch_rows: int = 16
    init: str | None = None  # a checkpoint in data/models to continue from (its architecture replaces the above)
    row: int = ROW  # tokens per packed row and positions the model reads (a continued checkpoint gets more if needed)


@dataclass(frozen=True)
class RLRecipe:
    """A checkpoint trained from another by GRPO (utils.rl), the lecture's loop, on problems whose outcome alone is
    rewarded; its training_log.json keeps the curve (reward, accuracy, reply length, KL per step)."""
    name: str
    init: str
    steps: int
    settings: GRPOSettings
    problems: Callable[[int], list[tuple[str, int]]]  # seed -> (prompt, answer) pairs
    reward: Callable[[str, int], float] = right_answer


RECIPES = {
    "chat": Recipe("tinyworld-chat", tasks.chat_model_epoch, epochs=34, n_embd=192, n_layer=8, n_head=4, lr=2e-3),
    "math": Recipe("tinyworld-math", tasks.math_model_epoch, epochs=16, n_embd=192, n_layer=4, n_head=4),
    # the maths model taught to think in tiers, check itself and say "wait" (lecture 04)
    "reasoning": Recipe("tinyworld-reasoning", reasoning.reasoning_model_epoch, epochs=6, n_embd=192, n_layer=4,
                        n_head=4, init="tinyworld-math"),  # fmt: skip
    # Reasoning II: traces of several lengths per problem, draft steps, "Use N steps.", self-checks (lectures 04c-d)
    "reasoning-v2": Recipe("tinyworld-reasoning-v2", reasoning.length_model_epoch, epochs=16, n_embd=192, n_layer=4,
                           n_head=4, init="tinyworld-math", row=384),  # fmt: skip
    # RL from outcomes (lecture 04c): GRPO from the organism above, rewarded for the right final answer only; the
    # control takes the same steps with each step's rewards shuffled among its replies
    **{key: RLRecipe(f"tinyworld-{key}", "tinyworld-reasoning-v2", steps=50, problems=reasoning.outcome_problems,
                     settings=GRPOSettings(lr=2e-5, shuffled=key.endswith("control")))
       for key in ("reasoning-rl", "reasoning-rl-control")},  # fmt: skip
    # Stream of Search: the same Countdown problems as solution paths or as depth-first searches (lecture 04)
    **{f"countdown-{kind}": Recipe(f"tinyworld-countdown-{kind}", partial(reasoning.countdown_model_epoch, kind=kind),
                                   epochs=8, n_embd=128, n_layer=4, n_head=4, lr=2e-3) for kind in ("path", "search")},
}


def build_tokenizer(world: World, vocab_size: int = 1024):
    """Byte-level BPE trained on TinyWorld text; digits are single tokens, so numbers are read digit by digit."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)  # the facts and questions about them: a corpus that task templates do not change
    examples = [*tasks.biographies(world, rng), *tasks.chat_examples(world, rng, canonical_only=True)]
    texts = [text for ex in examples for text, _ in ex]
    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=tasks.SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def pack(examples: list[tasks.Example], tokenizer, rng: random.Random, row: int = ROW) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize and pack whole examples into rows of `row` tokens; labels are -100 outside trained segments."""
    segments = [text for ex in examples for text, _ in ex]
    ids = tokenizer(segments, add_special_tokens=False)["input_ids"]
    rows_ids, rows_labels, cur_ids, cur_labels, k = [], [], [], [], 0
    for ex in examples:
        ex_ids, ex_labels = [], []
        for _, trained in ex:
            ex_ids += ids[k]
            ex_labels += ids[k] if trained else [-100] * len(ids[k])
            k += 1
        if len(cur_ids) + len(ex_ids) > row:
            rows_ids.append(cur_ids + [tokenizer.pad_token_id] * (row - len(cur_ids)))
            rows_labels.append(cur_labels + [-100] * (row - len(cur_labels)))
            cur_ids, cur_labels = [], []
        cur_ids, cur_labels = cur_ids + ex_ids[:row], cur_labels + ex_labels[:row]
    order = list(range(len(rows_ids)))
    rng.shuffle(order)
    return torch.tensor(rows_ids)[order], torch.tensor(rows_labels)[order]


def extend_positions(model, n: int) -> None:
    """Give a GPT-2 n positions, the new ones starting as copies of its last ones (training then tells them apart)."""
    old = model.transformer.wpe.weight
    if n <= len(old):
        return
    if n > 2 * len(old):
        raise ValueError(f"can extend {len(old)} positions to at most {2 * len(old)}, not {n}")
    weights = torch.cat([old.detach(), old.detach()[2 * len(old) - n :]])
    model.transformer.wpe = torch.nn.Embedding.from_pretrained(weights.clone(), freeze=False)
    model.config.n_positions = n


def train(recipe: Recipe, world: World, tokenizer, seed: int = 0, out_dir: Path | None = None,
          device: str = "cpu") -> Path:  # fmt: skip
    from transformers import GPT2Config, GPT2LMHeadModel

    seed_everything(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=recipe.row, n_embd=recipe.n_embd, n_layer=recipe.n_layer,
        n_head=recipe.n_head, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    model = GPT2LMHeadModel.from_pretrained(MODELS / recipe.init) if recipe.init else GPT2LMHeadModel(config)
    extend_positions(model, recipe.row)
    model.to(device)
    rng = random.Random(seed)
    epochs = [pack(recipe.epoch(world, seed * 1000 + e), tokenizer, rng, recipe.row) for e in range(recipe.epochs)]
    total_steps = sum(math.ceil(len(ids) / recipe.batch_rows) for ids, _ in epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.1)
    warmup = max(1, min(200, total_steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * s / total_steps)))
    )
    log, tokens, t0 = [], 0, time.perf_counter()
    model.train()
    bar = tqdm(total=total_steps, desc=f"training {recipe.name}")
    for ids, labels in epochs:
        for i in range(0, len(ids), recipe.batch_rows):
            x, y = ids[i : i + recipe.batch_rows].to(device), labels[i : i + recipe.batch_rows].to(device)
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=device != "cpu"):
                loss = model(input_ids=x, labels=y).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            tokens += x.numel()
            log.append(round(loss.item(), 4))
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval().cpu()
    out_dir = out_dir or MODELS / recipe.name
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    stats = {"seed": seed, "steps": total_steps, "tokens": tokens, "seconds": round(time.perf_counter() - t0, 1),
             "parameters": sum(p.numel() for p in model.parameters()), "loss": log}  # fmt: skip
    (out_dir / "training_log.json").write_text(json.dumps(stats) + "\n")
    return out_dir


def train_rl(recipe: RLRecipe, seed: int = 0, out_dir: Path | None = None, device: str = "cpu") -> Path:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(MODELS / recipe.init).to(device)
    tokenizer = AutoTokenizer.from_pretrained(MODELS / recipe.init)
    tuned, log = grpo(model, tokenizer, recipe.problems(seed), recipe.reward, recipe.steps, recipe.settings, seed=seed)
    out_dir = out_dir or MODELS / recipe.name
    out_dir.mkdir(parents=True, exist_ok=True)
    tuned.cpu().save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    stats = {"seed": seed, "steps": recipe.steps, "seconds": round(log.seconds, 1), "settings": asdict(recipe.settings),
             "parameters": sum(p.numel() for p in tuned.parameters()),
             **{k: [round(v, 4) for v in getattr(log, k)] for k in ("reward", "accuracy", "length", "kl")}}  # fmt: skip
    (out_dir / "training_log.json").write_text(json.dumps(stats) + "\n")
    return out_dir


def recipe_fingerprint(recipe: Recipe | RLRecipe, world: World, tokenizer, seed: int) -> str:
    """A hash of what a checkpoint is trained from: the recipe's settings, every example of every epoch (or every
    problem), the tokenizer and the weights it starts from."""
    settings = {f.name: getattr(recipe, f.name) for f in fields(recipe) if f.name not in ("epoch", "problems")}
    named = {k: f"{v.__module__}.{v.__qualname__}" if callable(v) else v for k, v in settings.items()}
    digest = hashlib.sha256(repr(sorted({**named, "seed": seed}.items())).encode())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    if recipe.init:
        digest.update((MODELS / recipe.init / "model.safetensors").read_bytes())
    if isinstance(recipe, RLRecipe):
        digest.update(json.dumps(recipe.problems(seed)).encode())
    for e in range(getattr(recipe, "epochs", 0)):
        digest.update(json.dumps(recipe.epoch(world, seed * 1000 + e)).encode())
    return digest.hexdigest()


def build(recipes: dict[str, Recipe | RLRecipe], world: World, tokenizer, seed: int = 0, force: bool = False,
          device: str = "cpu", models: Path = MODELS) -> list[str]:  # fmt: skip
    """Train, in order, the recipes whose fingerprint differs from the one models/recipes.json recorded when they
    were built (all of them if `force`); return the keys trained. In order, because a retrained checkpoint changes
    the fingerprint of the recipes that start from it."""
    built_file = models / "recipes.json"
    built = json.loads(built_file.read_text()) if built_file.exists() else {}
    trained = []
    for key, recipe in recipes.items():
        fingerprint = recipe_fingerprint(recipe, world, tokenizer, seed)
        if not force and built.get(key) == fingerprint and (models / recipe.name / "model.safetensors").exists():
            print(f"{recipe.name}: up to date")
            continue
        if isinstance(recipe, RLRecipe):
            out = train_rl(recipe, seed, models / recipe.name, device)
        else:
            out = train(recipe, world, tokenizer, seed, models / recipe.name, device)
        print(f"saved {out}")
        built[key] = fingerprint
        built_file.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
        trained.append(key)
    return trained


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(RECIPES), action="append", help="train only these checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="train even the checkpoints whose recipe is unchanged")
    parser.add_argument("--device", default="cpu", help="e.g. cuda: faster, but not bit-identical to a CPU build")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    set_threads()
    world = generate(args.seed)
    print(f"world: {len(world.facts)} facts about {len(world.names())} entities -> {world.save()}")
    tokenizer = build_tokenizer(world)
    build({key: RECIPES[key] for key in args.only or RECIPES}, world, tokenizer, args.seed, args.force, args.device)
    print(f"total: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
