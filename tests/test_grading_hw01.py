"""Homework 01 graders accept their references and reject deliberately wrong implementations with the right hint."""

import math
from collections import Counter

import pytest

from utils import grading
from utils.agents import toolbox
from utils.grading import ExerciseNotDone, GradingError
from utils.grading import hw01 as ref
from utils.tinyworld.world import load_world


def passes(check, fn, capsys, *args):
    check(fn, *args)
    assert "✓" in capsys.readouterr().out


def rejects(check, fn, fragment="", *args):
    with pytest.raises(GradingError) as info:
        check(fn, *args)
    assert fragment in str(info.value), f"expected {fragment!r} in {str(info.value)!r}"


def not_done(*args):
    raise NotImplementedError


def test_bm25(capsys):
    passes(grading.check_bm25_scores, ref.bm25_scores, capsys)

    def unweighted(query, docs, k1=1.5, b=0.75):
        avgdl = sum(map(len, docs)) / len(docs)
        return [sum(Counter(d)[w] * (k1 + 1) / (Counter(d)[w] + k1 * (1 - b + b * len(d) / avgdl)) for w in set(query))
                for d in docs]  # fmt: skip

    def raw_counts(query, docs, k1=1.5, b=0.75):
        return [float(sum(Counter(d)[w] for w in set(query))) for d in docs]

    def no_length_norm(query, docs, k1=1.5, b=0.75):
        return ref.bm25_scores(query, docs, k1, 0.0)

    def repeats(query, docs, k1=1.5, b=0.75):
        return [sum(ref.bm25_scores([w], docs, k1, b)[i] for w in query) for i in range(len(docs))]

    def plain_idf(query, docs, k1=1.5, b=0.75):
        n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
        out = []
        for d in docs:
            c = Counter(d)
            out.append(sum(math.log((n - sum(w in x for x in docs) + 0.5) / (sum(w in x for x in docs) + 0.5))
                           * c[w] * (k1 + 1) / (c[w] + k1 * (1 - b + b * len(d) / avgdl)) for w in set(query)))  # fmt: skip
        return out

    rejects(grading.check_bm25_scores, unweighted, "IDF")
    rejects(grading.check_bm25_scores, plain_idf, "1 +")
    rejects(grading.check_bm25_scores, no_length_norm, "long documents")
    rejects(grading.check_bm25_scores, repeats, "distinct")
    rejects(grading.check_bm25_scores, raw_counts, "differ")
    rejects(grading.check_bm25_scores, lambda q, d, k1=1.5, b=0.75: [1.0] * len(d))
    rejects(grading.check_bm25_scores, lambda q, d, k1=1.5, b=0.75: [1.0], "items")
    rejects(grading.check_bm25_scores, lambda q, d, k1=1.5, b=0.75: 3.0, "list")
    rejects(grading.check_bm25_scores, lambda q, d, k1=1.5, b=0.75: ["x"] * len(d), "numbers")
    with pytest.raises(ExerciseNotDone):
        grading.check_bm25_scores(not_done)


def test_top_k(capsys):
    passes(grading.check_top_k, ref.top_k, capsys)
    rejects(grading.check_top_k, lambda s, k: sorted(range(len(s)), key=lambda i: (s[i], i), reverse=True)[:k], "score 0")
    rejects(grading.check_top_k, lambda s, k: sorted((i for i, x in enumerate(s) if x > 0), key=lambda i: (s[i], -i), reverse=True)[:k], "tie")
    rejects(grading.check_top_k, lambda s, k: sorted((i for i, x in enumerate(s) if x > 0), key=lambda i: (s[i], i))[:k], "descending")
    rejects(grading.check_top_k, lambda s, k: sorted((x for x in s if x > 0), reverse=True)[:k], "indices")
    rejects(grading.check_top_k, lambda s, k: [0, 1][:k])
    with pytest.raises(ExerciseNotDone):
        grading.check_top_k(not_done)


def test_write_policy(capsys):
    passes(grading.check_write_policy, ref.write_new_successes, capsys)
    rejects(grading.check_write_policy, lambda s, st, t, a, c, p: s.add(st, t.key, a, c), "succeeded")
    rejects(grading.check_write_policy, lambda s, st, t, a, c, p: c and s.add(st, t.key, a, True), "already in memory")
    rejects(grading.check_write_policy, lambda s, st, t, a, c, p: c and all(m.key != t.key for m in s.all()) and s.add(st, t.key, a), "feedback")
    rejects(grading.check_write_policy, lambda s, st, t, a, c, p: None, "stored 0 memories")
    rejects(grading.check_write_policy, lambda s, st, t, a, c, p: c and s.add(st, t.key, t.answer + "!", True))
    with pytest.raises(ExerciseNotDone):
        grading.check_write_policy(not_done)


def test_reflect(capsys):
    passes(grading.check_reflect, ref.reflect, capsys)
    rejects(grading.check_reflect, lambda ms, n: ref.reflect([m.__class__(m.id, m.step, m.key, m.answer, True) for m in ms], n), "failed")
    rejects(grading.check_reflect, lambda ms, n: [(lab, ex[:n]) for lab, ex in ref.reflect(ms, 10**6)], "most recent")
    rejects(grading.check_reflect, ref.notes_in_given_order, "by step")
    rejects(grading.check_reflect, lambda ms, n: [], "expected")
    with pytest.raises(ExerciseNotDone):
        grading.check_reflect(not_done)


def test_select_tools(capsys):
    tools, questions = toolbox(load_world())
    names = [t["name"] for t in tools]

    def bm25_select(question, tools_, k):
        docs = [ref.words(t["name"].replace("_", " ") + " " + t["description"]) for t in tools_]
        scores = ref.bm25_scores(ref.words(question), docs)
        return [tools_[i]["name"] for i in sorted(range(len(tools_)), key=lambda i: -scores[i])[:k]]

    recall = grading.check_select_tools(bm25_select, tools, questions)
    assert recall >= 0.8 and "✓" in capsys.readouterr().out
    rejects(grading.check_select_tools, lambda q, t, k: names[:k], "same first tool", tools, questions)
    rejects(grading.check_select_tools, lambda q, t, k: names[:k - 1], "distinct", tools, questions)
    rejects(grading.check_select_tools, lambda q, t, k: ["teleport"] + names[: k - 1], "not tools", tools, questions)
    rejects(grading.check_select_tools, lambda q, t, k: [names[(len(q) + i) % 32] for i in range(k)], "bar", tools, questions)
    with pytest.raises(ExerciseNotDone):
        grading.check_select_tools(not_done, tools, questions)
