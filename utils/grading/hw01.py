"""Graders for homework 01 (agents): BM25 scoring, top-k, a write policy, reflection and tool selection."""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict

import torch

from utils.agents import Memory, MemoryStore, Task
from utils.grading.core import GradingError, _describe, call, compare


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _as_list(out, name: str, length: int | None = None) -> list:
    if isinstance(out, torch.Tensor):
        out = out.tolist()
    if not isinstance(out, (list, tuple)):
        raise GradingError(f"{name} should return a list, got {_describe(out)}.")
    if length is not None and len(out) != length:
        raise GradingError(f"{name} returned {len(out)} items, expected {length} (one per document).")
    return list(out)


# --- Exercise 1: BM25 --------------------------------------------------------------------------------------


def bm25_scores(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    counts = [Counter(d) for d in docs]
    scores = [0.0] * n
    for word in dict.fromkeys(query):
        df = sum(word in c for c in counts)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, c in enumerate(counts):
            f = c[word]
            scores[i] += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(docs[i]) / avgdl))
    return scores


def _bm25_variant(idf=None, length_norm=True, distinct=True):
    def score(query, docs, k1=1.5, b=0.75):
        n, avgdl, counts = len(docs), sum(len(d) for d in docs) / len(docs), [Counter(d) for d in docs]
        out = [0.0] * n
        for word in dict.fromkeys(query) if distinct else query:
            df = sum(word in c for c in counts)
            weight = idf(n, df) if idf else math.log(1 + (n - df + 0.5) / (df + 0.5))
            for i, c in enumerate(counts):
                f = c[word]
                norm = (1 - b + b * len(docs[i]) / avgdl) if length_norm else 1.0
                out[i] += weight * f * (k1 + 1) / (f + k1 * norm)
        return out

    return score


def _random_docs(seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(12)]
    docs = [[rng.choice(vocab) for _ in range(rng.randint(1, 9))] for _ in range(8)]
    return [rng.choice(vocab) for _ in range(3)], docs


def check_bm25_scores(fn) -> None:
    docs = [["language", "brelos"], ["capital", "brelos"], ["language", "tumuki"], ["language", "language", "vos", "kel", "ra"]]
    cases = [(["language", "tumuki"], docs, 1.5, 0.75), (["capital", "brelos"], docs, 1.2, 0.75),
             (["language", "language"], docs, 1.5, 0.75), (["language"], docs, 1.5, 0.0)]  # fmt: skip
    cases += [(*_random_docs(seed), 1.5, 0.75) for seed in range(3)]
    hints = [
        (_bm25_variant(idf=lambda n, df: 1.0), "every word counts the same: weight each by its IDF (rare words matter more)."),
        (_bm25_variant(idf=lambda n, df: math.log((n - df + 0.5) / (df + 0.5))), "use ln(1 + (N - n + 0.5) / (n + 0.5)): without the 1 +, common words get negative weight."),
        (_bm25_variant(length_norm=False), "long documents must be discounted: divide |d| by the average length, weighted by b."),
        (_bm25_variant(distinct=False), "sum over the *distinct* words of the query; a repeated query word counts once."),
    ]  # fmt: skip
    for args in cases:
        out = _as_list(call(fn, args, "bm25_scores"), "bm25_scores", len(args[1]))
        try:
            out = torch.tensor(out, dtype=torch.float64)
        except (TypeError, ValueError):
            raise GradingError(f"bm25_scores should return numbers, got {out!r}"[:200]) from None
        expected = torch.tensor(bm25_scores(*args), dtype=torch.float64)
        wrong = [(lambda o, *a, w=w: torch.allclose(o, torch.tensor(w(*a), dtype=torch.float64), atol=1e-6), m) for w, m in hints]
        compare(out, expected, "bm25_scores", args, wrong, atol=1e-6)
    print(f"✓ bm25_scores: passed {len(cases)} checks on fixed and random inputs.")


# --- Exercise 2: top-k -------------------------------------------------------------------------------------


def top_k(scores: list[float], k: int) -> list[int]:
    return sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (scores[i], i), reverse=True)[:k]


def check_top_k(fn) -> None:
    cases = [([0.0, 2.5, 1.0, 2.5, 0.3], 2), ([0.0, 2.5, 1.0, 2.5, 0.3], 10), ([1.0, 0.0, 3.0], 1), ([0.0, 0.0], 3),
             ([0.5, 0.5, 0.5, 0.1], 3)]  # fmt: skip
    rng = random.Random(0)
    cases += [([rng.choice([0.0, 0.5, 1.0, 2.0, rng.random()]) for _ in range(12)], 4) for _ in range(3)]
    hints = [
        (lambda s, k: sorted(range(len(s)), key=lambda i: (s[i], i), reverse=True)[:k], "leave out documents that score 0: they share no word with the query."),
        (lambda s, k: sorted((i for i, x in enumerate(s) if x > 0), key=lambda i: (s[i], -i), reverse=True)[:k], "on a tie, prefer the more recent memory (the larger index)."),
        (lambda s, k: sorted((i for i, x in enumerate(s) if x > 0), key=lambda i: (s[i], i))[:k], "best first: sort by score in descending order."),
        (lambda s, k: sorted((x for x in s if x > 0), reverse=True)[:k], "return the documents' indices, not their scores."),
    ]  # fmt: skip
    for scores, k in cases:
        out = _as_list(call(fn, (scores, k), "top_k"), "top_k")
        expected = top_k(scores, k)
        if out == expected:
            continue
        for wrong, message in hints:
            if out == wrong(scores, k):
                raise GradingError(f"top_k: {message}")
        raise GradingError(f"top_k(scores={scores}, k={k}) returned {out}, expected {expected}.")
    print(f"✓ top_k: passed {len(cases)} checks on fixed and random inputs.")


# --- Exercise 3: a write policy ----------------------------------------------------------------------------


def write_new_successes(store: MemoryStore, step: int, task: Task, answer: str, correct: bool, confidence: float) -> None:
    if correct and all(m.key != task.key for m in store.all()):
        store.add(step, task.key, answer, True)


def _events(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    labels, queries = ["capital", "language"], ["Brelos", "Tumuki", "Vos"]
    events = []
    for step in range(14):
        task = Task(rng.choice(labels), rng.choice(queries), rng.choice(["A", "B"]))
        correct = rng.random() < 0.6
        events.append((step, task, task.answer if correct else "C", correct, rng.random()))
    return events


def _replay(policy, events: list[tuple], name: str) -> list[tuple]:
    """Feed the experiences to a write policy with a fresh store; return what it stored."""
    store = MemoryStore()
    for step, task, answer, correct, confidence in events:
        call(policy, (store, step, task, answer, correct, confidence), name)
    return [(m.step, m.key, m.answer, m.correct) for m in store.all()]


def check_write_policy(fn) -> None:
    """Replay a fixed sequence of experiences into two fresh stores, the student's and the reference's."""
    wrong_policies = [
        (lambda s, st, t, a, c, p: s.add(st, t.key, a, c), "store only the experiences that succeeded (correct is True)."),
        (lambda s, st, t, a, c, p: c and s.add(st, t.key, a, True), "don't store a key that is already in memory: a second copy adds nothing."),
        (lambda s, st, t, a, c, p: c and all(m.key != t.key for m in s.all()) and s.add(st, t.key, a),
         "record the feedback: store correct=True with the experience."),
    ]  # fmt: skip
    for seed in range(3):
        events = _events(seed)
        out, expected = _replay(fn, events, "write_policy"), _replay(write_new_successes, events, "reference")
        if out == expected:
            continue
        for policy, message in wrong_policies:
            if out == _replay(policy, events, "hint"):
                raise GradingError(f"write_policy: {message}")
        raise GradingError(f"write_policy stored {len(out)} memories where {len(expected)} were expected "
                           f"(step, key, answer, correct): yours {out[:4]}..., expected {expected[:4]}...")  # fmt: skip
    print("✓ write_policy: passed 3 replays of 14 experiences.")


# --- Exercise 4: reflection --------------------------------------------------------------------------------


def reflect(memories: list[Memory], per_note: int) -> list[tuple[str, list[tuple[str, str]]]]:
    return notes_in_given_order(sorted(memories, key=lambda m: m.step), per_note)


def notes_in_given_order(memories: list[Memory], per_note: int) -> list[tuple[str, list[tuple[str, str]]]]:
    examples = defaultdict(dict)  # label -> {query: latest answer}, in order of last success
    for m in memories:
        if m.correct:
            label, query = m.key.split(": ", 1)
            examples[label].pop(query, None)
            examples[label][query] = m.answer
    return [(label, list(examples[label].items())[-per_note:]) for label in sorted(examples)]


def _memories(seed: int) -> list[Memory]:
    rng = random.Random(seed)
    rows = []
    for i in range(16):
        key = f"{rng.choice(['capital', 'language', 'employer'])}: {rng.choice(['Brelos', 'Tumuki', 'Vos', 'Kel', 'Ra'])}"
        rows.append(Memory(i + 1, i, key, rng.choice(["A", "B", "C"]), rng.random() < 0.7))
    rng.shuffle(rows)  # the store may return them in any order: sort by step
    return rows


def check_reflect(fn) -> None:
    def first_n(memories, per_note):
        return [(lab, ex[:per_note]) for lab, ex in _reflect_unbounded(memories)]

    def _reflect_unbounded(memories):
        return reflect(memories, 10**6)

    hints = [
        (lambda ms, n: reflect([Memory(m.id, m.step, m.key, m.answer, True) for m in ms], n), "leave out the failed experiences (correct is False): a note must hold verified examples only."),
        (first_n, "keep the *most recent* per_note examples of each task, not the oldest."),
        (notes_in_given_order, "order the experiences by step before reflecting: the store may list them in any order."),
    ]  # fmt: skip
    cases = [(_memories(seed), per_note) for seed, per_note in [(0, 2), (1, 3), (2, 4), (3, 1)]]
    for memories, per_note in cases:
        out = call(fn, (list(memories), per_note), "reflect")
        expected = reflect(memories, per_note)
        normalised = [(lab, [tuple(e) for e in ex]) for lab, ex in out] if isinstance(out, list) else out
        if normalised == expected:
            continue
        for wrong, message in hints:
            if normalised == wrong(memories, per_note):
                raise GradingError(f"reflect: {message}")
        raise GradingError(f"reflect returned {out!r}"[:160] + f" but expected {expected!r}"[:160])
    print(f"✓ reflect: passed {len(cases)} checks.")


# --- Exercise 5: tool selection ----------------------------------------------------------------------------


def check_select_tools(fn, tools: list[dict], questions: list[tuple[str, str]], k: int = 3, bar: float = 0.8) -> float:
    """Behavioural check: k distinct known names per question, and the right tool among them often enough."""
    names = {t["name"] for t in tools}
    hits, firsts = 0, set()
    for question, right in questions:
        out = _as_list(call(fn, (question, tools, k), "select_tools"), "select_tools")
        if len(out) != k or len(set(out)) != k:
            raise GradingError(f"select_tools should return {k} distinct tool names, got {out!r}.")
        if not set(out) <= names:
            raise GradingError(f"select_tools returned names that are not tools: {sorted(set(out) - names)}.")
        hits += right in out
        firsts.add(out[0])
    recall = hits / len(questions)
    if len(firsts) == 1:
        raise GradingError("select_tools returns the same first tool for every question: score the tools against the question.")
    if recall < bar:
        raise GradingError(f"select_tools: the right tool is among your {k} for {recall:.0%} of the questions; the bar is {bar:.0%}. "
                           "Score each tool's name and description against the question (BM25 from exercise 1?).")  # fmt: skip
    print(f"✓ select_tools: the right tool is among the {k} selected for {recall:.0%} of {len(questions)} questions.")
    return recall
