"""Plumbing for lecture 01 and homework 01 (agents): the memory database, the task stream and its runner.

The lesson itself (how to read, write and reflect on memories, how to call tools) is written out in the
notebooks; this module holds what they plug into.
"""

from __future__ import annotations

import inspect
import json
import math
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from utils.generation import complete
from utils.paths import DATA
from utils.tinyworld.world import World

REAL_WORLD_FILE = DATA / "agents" / "real_world.json"
TOOLBOX_FILE = DATA / "agents" / "toolbox.json"

# --- memory ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """One row of an agent's long-term memory: an experience (key, answer, feedback) or a reflected note."""

    id: int
    step: int
    key: str  # what the agent saw, e.g. "language: Brelos"
    answer: str  # what it answered (a note's text for kind "note")
    correct: bool | None  # the feedback, None when it was not stored
    kind: str = "experience"


class MemoryStore:
    """An agent's memory in SQLite: persisted to a file, so it survives a kernel restart.

    Every write is one transaction: it is committed whole or, if interrupted, rolled back whole.
    """

    SCHEMA = """CREATE TABLE IF NOT EXISTS memories (
        id INTEGER PRIMARY KEY, step INTEGER NOT NULL, key TEXT NOT NULL, answer TEXT NOT NULL,
        correct INTEGER, kind TEXT NOT NULL DEFAULT 'experience')"""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        self.db = sqlite3.connect(self.path)
        with self.db:
            self.db.execute(self.SCHEMA)

    def add(self, step: int, key: str, answer: str, correct: bool | None = None, kind: str = "experience") -> Memory:
        return self.add_many([(step, key, answer, correct, kind)])[0]

    def add_many(self, rows: Sequence[tuple], delete_ids: Sequence[int] = ()) -> list[Memory]:
        """Insert rows (step, key, answer, correct, kind) and delete `delete_ids`, all in one transaction."""
        added = []
        with self.db:
            self.db.executemany("DELETE FROM memories WHERE id = ?", [(i,) for i in delete_ids])
            for step, key, answer, correct, kind in rows:
                if not key or answer is None:
                    raise ValueError(f"a memory needs a key and an answer, got key={key!r}, answer={answer!r}")
                flag = None if correct is None else int(bool(correct))
                cursor = self.db.execute("INSERT INTO memories (step, key, answer, correct, kind) VALUES (?, ?, ?, ?, ?)",
                                         (step, key, answer, flag, kind))  # fmt: skip
                added.append(Memory(cursor.lastrowid, step, key, answer, None if flag is None else bool(flag), kind))
        return added

    def all(self) -> list[Memory]:
        rows = self.db.execute("SELECT id, step, key, answer, correct, kind FROM memories ORDER BY id").fetchall()
        return [Memory(i, s, k, a, None if c is None else bool(c), kind) for i, s, k, a, c, kind in rows]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]

    def close(self) -> None:
        self.db.close()


# --- the task stream -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One question of the stream: the agent sees `key`, the environment knows `answer`."""

    label: str  # which task, e.g. "language"
    query: str  # e.g. a country name
    answer: str

    @property
    def key(self) -> str:
        return f"{self.label}: {self.query}"


def tinyworld_tasks(world: World, labels: Sequence[str] = ("capital", "language", "birthplace", "profession", "employer")):
    """label -> [(query, answer)] from TinyWorld's facts."""
    return {label: [(f.subject, f.object) for f in world.facts if f.relation == label] for label in labels}


def real_world_tasks() -> dict[str, list[tuple[str, str]]]:
    """label -> [(query, answer)] from a small table of real facts, for the hf profile."""
    return {label: [tuple(pair) for pair in pairs] for label, pairs in json.loads(REAL_WORLD_FILE.read_text()).items()}


def task_stream(source: dict[str, list[tuple[str, str]]], n: int, seed: int = 0) -> list[Task]:
    """n tasks, labels drawn uniformly, each query drawn from its label's pairs (queries may repeat)."""
    rng = random.Random(seed)
    labels = sorted(source)
    return [Task(label, *rng.choice(source[label])) for label in (rng.choice(labels) for _ in range(n))]


def demo_prompt(tokenizer, examples: Sequence[tuple[str, str]], query: str) -> str:
    """Worked examples "x -> y", one a line, then the query: the format TinyWorld models learned in context."""
    lines = "".join(f"{x} -> {y}\n" for x, y in examples)
    return f"{tokenizer.bos_token or ''}{lines}{query} ->"


def first_line(output: str) -> str:
    return output.strip().split("\n")[0].strip()


class MemoryAgent:
    """An agent whose prompt is built by a read function and whose memory is filled by a write function.

    read(store, task) -> examples [(x, y)] for the prompt; write(store, step, task, answer, correct, confidence)
    stores what it decides to. Either may be None (no reading, or no writing).
    parse(output) -> the answer that is scored, from what the model wrote (default: its first line).
    outputs: what the model wrote at each step of the stream, unparsed.
    """

    def __init__(self, name: str, read: Callable | None = None, write: Callable | None = None,
                 store: MemoryStore | None = None, parse: Callable[[str], str] | None = None):  # fmt: skip
        self.name, self.read, self.write = name, read, write
        self.store = store if store is not None else MemoryStore()
        self.parse = parse or first_line
        self.outputs: list[str] = []

    def examples(self, task: Task) -> list[tuple[str, str]]:
        return self.read(self.store, task) if self.read else []


def run_stream(model, tokenizer, agents: Sequence[MemoryAgent], tasks: Sequence[Task], max_context: int | None = None,
               hooks: Sequence[Callable] = (), batch_size: int = 4, progress: bool = True) -> dict[str, list[bool]]:  # fmt: skip
    """Play the stream: at each step every agent answers (one batch), gets feedback and may write to memory.

    Prompts longer than `max_context` tokens keep their most recent lines (the query always stays); agents whose
    prompts are identical at a step share one completion. The scored answer is `agent.parse(output)`.
    hooks: functions hook(step, agents) called after every step (reflection, for instance).
    batch_size: prompts per forward pass; small batches waste less padding when one agent's prompt is long.
    Returns agent name -> correctness at each step.
    """
    limit = max_context or getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    results = {agent.name: [] for agent in agents}
    for step, task in enumerate(tqdm(tasks, desc="stream", disable=not progress)):
        prompts = [fit_prompt(tokenizer, agent.examples(task), task.query, limit - 8) for agent in agents]
        unique = list(dict.fromkeys(prompts))
        texts, logprobs = complete(model, tokenizer, unique, max_new_tokens=8, batch_size=batch_size, logprobs=True)
        completions = dict(zip(unique, zip(texts, logprobs, strict=True), strict=True))
        for agent, prompt in zip(agents, prompts, strict=True):
            output, logprob = completions[prompt]
            agent.outputs.append(output)
            answer, confidence = agent.parse(output), math.exp(logprob.sum().item())
            correct = answer == task.answer
            results[agent.name].append(correct)
            if agent.write:
                agent.write(agent.store, step, task, answer, correct, confidence)
        for hook in hooks:
            hook(step, agents)
    return results


def fit_prompt(tokenizer, examples: Sequence[tuple[str, str]], query: str, max_tokens: int) -> str:
    """The demo prompt with as many of the last examples as fit in max_tokens."""
    kept = list(examples)
    while kept and len(tokenizer(demo_prompt(tokenizer, kept, query), add_special_tokens=False).input_ids) > max_tokens:
        kept = kept[max(1, len(kept) // 8) :]  # drop the oldest eighth
    return demo_prompt(tokenizer, kept, query)


def running_accuracy(correct: Sequence[bool]) -> list[float]:
    """Average accuracy over the stream so far, after each step (the StreamBench metric)."""
    total, curve = 0, []
    for i, c in enumerate(correct, 1):
        total += c
        curve.append(total / i)
    return curve


# --- tools -------------------------------------------------------------------------------------------------


def toolbox(world: World, seed: int = 0) -> tuple[list[dict], list[tuple[str, str]]]:
    """(tools, questions): tools [{name, description}], questions [(question, right tool name)]."""
    rng = random.Random(seed)
    spec = json.loads(TOOLBOX_FILE.read_text())
    fill = {"person": list(world.people), "city": list(world.cities), "country": list(world.countries),
            "org": list(world.organisations)}  # fmt: skip
    tools, questions = [], []
    for tool in spec:
        tools.append({"name": tool["name"], "description": tool["description"]})
        for template in tool["questions"]:
            values = {kind: rng.choice(names) for kind, names in fill.items()}
            questions.append((template.format(**values), tool["name"]))
    return tools, questions


@torch.no_grad()
def option_logprobs(model, tokenizer, prompt: str, options: Sequence[str]) -> list[float]:
    """log P(option | prompt) for each option: the prompt runs once, the options as one batch on its cached states.

    The same numbers as `continuation_logprobs` with the prompt repeated, for a fraction of the compute when the
    prompt is long (a tool listing) and the options are short (tool names).
    """
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(model.device)
    head = model(ids, use_cache=True)
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"  # transformers 5 vs 4
    cache = getattr(head, name)
    cache.batch_repeat_interleave(len(options))
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        batch = tokenizer(list(options), return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    finally:
        tokenizer.padding_side = side
    mask = torch.cat([batch.attention_mask.new_ones(len(options), ids.shape[1]), batch.attention_mask], dim=1)
    tail = model(batch.input_ids, attention_mask=mask, **{name: cache}).logits
    logits = torch.cat([head.logits[:, -1:].expand(len(options), -1, -1), tail[:, :-1]], dim=1).float()
    token_logprobs = logits.log_softmax(-1).gather(-1, batch.input_ids[..., None])[..., 0]
    return (token_logprobs * batch.attention_mask).sum(1).tolist()
