"""Homework 01 graders accept their references, the master notebook's solutions and correct implementations written
differently, and reject plausible wrong ones (memoised, input-ignoring, edge-case mistakes, wrong return types)
with a readable message that names the mistake."""

import copy
import json
import math
import random
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from grading_helpers import not_done, passes, rejects

from utils import grading
from utils.agents import MemoryStore, Task
from utils.grading import ExerciseNotDone
from utils.grading import hw01 as ref

MASTER = Path(__file__).parents[1] / "homework" / "solutions" / "hw01_agents.ipynb"


def _code_cells() -> list[str]:
    return ["".join(c["source"]) for c in json.loads(MASTER.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def master(name: str) -> Callable:
    """The master notebook's solution of an exercise, run with the notebook's own parse_call."""
    setup = next(c for c in _code_cells() if "def parse_call(" in c)
    namespace = {"re": re, "json": json, "random": random, "Callable": Callable, "MemoryStore": MemoryStore, "Task": Task}
    exec(setup[setup.index("CALL = re.compile") : setup.index("print(parse_call(")], namespace)  # noqa: S102
    cell = next(c for c in _code_cells() if f"def {name}(" in c)
    exec(cell[cell.index(f"def {name}(") : cell.index("### END SOLUTION")], namespace)  # noqa: S102
    return namespace[name]


def test_the_notebook_parses_calls_as_the_grader_does():
    parse = master("run_agent").__globals__["parse_call"]
    for action in ["<|call|>clock(Vos)", " <|call|> a_b()\n", "It is 3.", "", '<tool_call>{"name": "x"}</tool_call>']:
        assert parse(action) == ref.parse_call(action)
    for malformed in ["<|call|>clock(Vos", '<tool_call>{"name": }</tool_call>']:
        with pytest.raises(ValueError):
            parse(malformed)


# --- Exercise 1: the agent loop -----------------------------------------------------------------------------


def loop_with_while(policy, question, tools, max_steps=6, max_retries=2):
    """Correct, written differently: a while loop, a retry counter, the policy sees a copy of the messages."""
    messages, steps = [{"role": "user", "content": question}], 0
    while steps < max_steps:
        steps += 1
        action = policy(list(messages))
        messages.append({"role": "assistant", "content": action})
        try:
            parsed = ref.parse_call(action)
        except ValueError as error:
            messages.append({"role": "tool", "content": "error: " + str(error)})
            continue
        if parsed is None:
            return action.strip(), messages
        name, argument = parsed
        if name not in tools:
            observation = f"error: unknown tool {name!r}"
        else:
            attempts = 0
            while True:
                attempts += 1
                try:
                    observation = str(tools[name](argument))
                    break
                except TimeoutError:
                    if attempts > max_retries:
                        observation = f"error: {name} timed out {attempts} times"
                        break
                except Exception as error:  # noqa: BLE001
                    observation = f"error: {error}"
                    break
        messages.append({"role": "tool", "content": observation})
    return None, messages


def loop_recursive(policy, question, tools, max_steps=6, max_retries=2):
    """Correct, written differently: a recursion over the steps left, a retry by recursion, a tuple back."""

    def attempt(name, argument, tries):
        try:
            return str(tools[name](argument))
        except TimeoutError:
            return attempt(name, argument, tries + 1) if tries <= max_retries else f"error: {name} timed out {tries} times"
        except Exception as error:  # noqa: BLE001
            return f"error: {error}"

    def step(messages, left):
        if left == 0:
            return None, messages
        action = policy(messages)
        messages = [*messages, {"role": "assistant", "content": action}]
        try:
            parsed = ref.parse_call(action)
        except ValueError as error:
            return step([*messages, {"role": "tool", "content": f"error: {error}"}], left - 1)
        if parsed is None:
            return action.strip(), messages
        name, argument = parsed
        seen = attempt(name, argument, 1) if name in tools else f"error: unknown tool {name!r}"
        return step([*messages, {"role": "tool", "content": seen}], left - 1)

    return tuple(step([{"role": "user", "content": question}], max_steps))


def _crashes_on_tool_errors(policy, question, tools, max_steps=6, max_retries=2):
    messages = [{"role": "user", "content": question}]
    for _ in range(max_steps):
        action = policy(messages)
        messages.append({"role": "assistant", "content": action})
        parsed = ref.parse_call(action)
        if parsed is None:
            return action.strip(), messages
        messages.append({"role": "tool", "content": str(tools[parsed[0]](parsed[1]))})
    return None, messages


def _drops_failing_tools(policy, question, tools, max_steps=6, max_retries=2):
    answer, messages = ref.run_agent(policy, question, tools, max_steps, max_retries)
    tools.pop(next(iter(tools)))  # "don't call a tool twice": changes the caller's toolbox
    return answer, messages


def _memo_on_sizes():
    """A transcript cached by the budget and the number of tools."""
    cache = {}

    def loop(policy, question, tools, max_steps=6, max_retries=2):
        key = (max_steps, max_retries, len(tools))
        if key not in cache:
            cache[key] = ref.run_agent(policy, question, tools, max_steps, max_retries)
        return cache[key]

    return loop


@pytest.mark.parametrize("right", [ref.run_agent, loop_with_while, loop_recursive, "master"], ids=lambda x: getattr(x, "__name__", str(x)))
def test_run_agent_accepts_correct_loops(right, capsys):
    passes(grading.check_run_agent, master("run_agent") if right == "master" else right, capsys)


@pytest.mark.parametrize(("mistake", "hint"), ref.AGENT_MISTAKES, ids=[h[:40] for _, h in ref.AGENT_MISTAKES])
def test_run_agent_rejects_known_mistakes(mistake, hint):
    rejects(grading.check_run_agent, mistake, hint)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_crashes_on_tool_errors, "raised"),
        (_memo_on_sizes(), "cache results"),
        (lambda p, q, t, s=6, r=2: (None, [{"role": "user", "content": q}]), "fewer steps"),  # ignores the policy
        (lambda p, q, t, s=6, r=2: ref.run_agent(p, q, {k.upper(): v for k, v in t.items()}, s, r), "message 2"),
        (lambda p, q, t, s=6, r=2: ref.run_agent(p, q, t, max(s, 1), r), "stop after max_steps"),  # one step at least
        (lambda p, q, t, s=6, r=2: ref.run_agent(p, q.strip("?"), t, s, r), "message 0"),
        (lambda p, q, t, s=6, r=2: ref.run_agent(p, q, t, s, r)[0], "should return a pair"),
        (lambda p, q, t, s=6, r=2: (*ref.run_agent(p, q, t, s, r), s), "got 3 items"),
        (lambda p, q, t, s=6, r=2: {"answer": ref.run_agent(p, q, t, s, r)[0]}, "dict"),
        (lambda p, q, t, s=6, r=2: (ref.run_agent(p, q, t, s, r)[0], iter(ref.run_agent(p, q, t, s, r)[1])), "iterator"),
        (lambda p, q, t, s=6, r=2: (ref.run_agent(p, q, t, s, r)[0],
                                    [{**m, "step": 0} for m in ref.run_agent(p, q, t, s, r)[1]]), "'role'"),
        (lambda p, q, t, s=6, r=2: (3, ref.run_agent(p, q, t, s, r)[1]), "str or None"),
        (_drops_failing_tools, "modified its input `tools` in place"),
    ],
)  # fmt: skip
def test_run_agent_rejects_wrong_loops_and_return_types(wrong, fragment):
    rejects(grading.check_run_agent, wrong, fragment)


def test_run_agent_not_done():
    with pytest.raises(ExerciseNotDone):
        grading.check_run_agent(not_done)


def test_run_agent_draws_every_kind_of_failure():
    """The drawn episodes reach the rules' edge cases: timeouts (a subclass too) past the retries, errors that are no
    timeout, unknown and malformed calls, empty final answers, a budget of 0."""
    seen = Counter()

    def one(args):
        policy, question, specs, max_steps, max_retries = args
        (answer, messages), log = ref._episode(ref.run_agent, args, "reference")
        contents = " ".join(m["content"] for m in messages[1:])
        seen.update({"timed out": "timed out" in contents, "unknown": "unknown tool" in contents,
                     "malformed": "malformed" in contents, "empty answer": answer == "", "no answer": answer is None,
                     "no step": max_steps == 0, "retried": len(log) > len({*log}),
                     "subclass": any("read timeout" in s.script for s in specs)})  # fmt: skip

    ref.holds("run_agent", ref._episodes(), one, max_examples=80)
    assert all(seen[kind] >= 2 for kind in ["timed out", "unknown", "malformed", "empty answer", "no answer",
                                            "no step", "retried", "subclass"]), seen  # fmt: skip


# --- Exercise 2: re-planning --------------------------------------------------------------------------------


def replan_recursive(plan, lookup, believe):
    """Correct, written differently: a recursion over the remaining steps and a table of renamings."""

    def run(steps, replans, executed):
        if not steps:
            return executed[-1]["observed"], replans, executed
        step, rest = steps[0], steps[1:]
        observed = lookup(step["subject"], step["relation"])
        executed = [*executed, {"subject": step["subject"], "relation": step["relation"], "expect": step["expect"],
                                "observed": observed}]  # fmt: skip
        if observed is None:
            return None, replans, executed
        if observed == step["expect"] or not rest:
            return run(rest, replans, executed)
        renamed, rewritten = {step["expect"]: observed}, []
        for later in rest:
            if later["subject"] in renamed:
                new_subject = renamed[later["subject"]]
                new_expect = believe(new_subject, later["relation"])
                if new_expect != later["expect"]:
                    renamed[later["expect"]] = new_expect
                later = {**later, "subject": new_subject, "expect": new_expect}
            rewritten.append(later)
        return run(rewritten, replans + 1, executed)

    return run(list(plan), 0, [])


def replan_with_a_queue(plan, lookup, believe):
    """Correct, written differently: a deque of deep-copied steps, popped from the left."""
    pending, executed, replans = deque(copy.deepcopy(plan)), [], 0
    while pending:
        step = pending.popleft()
        step["observed"] = lookup(step["subject"], step["relation"])
        executed.append(step)
        if step["observed"] is None:
            return None, replans, executed
        if step["observed"] != step["expect"] and pending:
            replans += 1
            renamed = {step["expect"]: step["observed"]}
            for later in pending:
                if later["subject"] in renamed:
                    old = later["expect"]
                    later["subject"] = renamed[later["subject"]]
                    later["expect"] = believe(later["subject"], later["relation"])
                    if later["expect"] != old:
                        renamed[old] = later["expect"]
    return executed[-1]["observed"], replans, executed


def _replan_in_place(plan, lookup, believe):
    """The lecture's habit of rewriting plan[i + 1]: here on the caller's own plan."""
    answer, replans, executed = ref.execute_plan(plan, lookup, believe)
    for step, done in zip(plan, executed, strict=False):
        step.update({k: v for k, v in done.items() if k != "observed"})
    return answer, replans, executed


def _memo_on_length():
    cache = {}

    def execute(plan, lookup, believe):
        if len(plan) not in cache:
            cache[len(plan)] = ref.execute_plan(plan, lookup, believe)
        return cache[len(plan)]

    return execute


@pytest.mark.parametrize("right", [ref.execute_plan, replan_recursive, replan_with_a_queue, "master"], ids=lambda x: getattr(x, "__name__", str(x)))
def test_execute_plan_accepts_correct_executors(right, capsys):
    passes(grading.check_execute_plan, master("execute_plan") if right == "master" else right, capsys)


@pytest.mark.parametrize(("mistake", "hint"), ref.PLAN_MISTAKES, ids=[h[:40] for _, h in ref.PLAN_MISTAKES])
def test_execute_plan_rejects_known_mistakes(mistake, hint):
    rejects(grading.check_execute_plan, mistake, hint)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_memo_on_length(), "cache results"),
        (_replan_in_place, "modified its input `plan` in place"),
        (lambda p, lk, b: (p[-1]["expect"], 0, [{**s, "observed": s["expect"]} for s in p]), "executed step 0"),
        (lambda p, lk, b: ref.execute_plan(p, lk, lambda s, r: "?"), "executed step 1"),  # ignores believe
        (lambda p, lk, b: ref.execute_plan(p, lk, b)[:2], "got 2 items"),
        (lambda p, lk, b: [*ref.execute_plan(p, lk, b)[:2], *ref.execute_plan(p, lk, b)[2]], "items"),
        (lambda p, lk, b: ref.execute_plan(p, lk, b)[:2] + ([(s["subject"], s["observed"]) for s in
                                                              ref.execute_plan(p, lk, b)[2]],), "dict with keys"),
        (lambda p, lk, b: (ref.execute_plan(p, lk, b)[0], 0.0, ref.execute_plan(p, lk, b)[2]), "int"),
        (lambda p, lk, b: {"answer": ref.execute_plan(p, lk, b)[0]}, "dict"),
    ],
)  # fmt: skip
def test_execute_plan_rejects_wrong_executors_and_return_types(wrong, fragment):
    rejects(grading.check_execute_plan, wrong, fragment)


def test_execute_plan_not_done():
    with pytest.raises(ExerciseNotDone):
        grading.check_execute_plan(not_done)


# --- Exercise 3: the write policy ---------------------------------------------------------------------------


def write_with_a_dict(store, step, task, answer, correct, confidence):
    """Correct, written differently: index the experiences by key, one add_many call for every change."""
    by_key = defaultdict(list)
    for memory in store.all():
        if memory.kind == "experience":
            by_key[memory.key].append(memory)
    mine = by_key[task.key]
    if correct and {m.answer for m in mine} != {answer}:
        store.add_many([(step, task.key, answer, True, "experience")], delete_ids=[m.id for m in mine])
    elif not correct and any(m.answer == answer for m in mine):
        store.add_many([], delete_ids=[m.id for m in mine if m.answer == answer])


def write_with_sql(store, step, task, answer, correct, confidence):
    """Correct, written differently: the store's own SQLite table, queried directly."""
    rows = store.db.execute("SELECT id, answer FROM memories WHERE kind = 'experience' AND key = ?", (task.key,)).fetchall()
    if not correct:
        if any(a == answer for _, a in rows):
            store.add_many([], delete_ids=[i for i, a in rows if a == answer])
    elif not rows:
        store.add_many([(step, task.key, answer, True, "experience")])
    elif {a for _, a in rows} != {answer}:
        store.add_many([(step, task.key, answer, True, "experience")], delete_ids=[i for i, _ in rows])


_STORED = set()


def _remembers_keys_itself(store, step, task, answer, correct, confidence):
    """Keeps its own set of stored keys instead of reading the store: it outlives the store."""
    if correct and task.key not in _STORED:
        _STORED.add(task.key)
        store.add(step, task.key, answer, True)


@pytest.mark.parametrize("right", [ref.write_policy, write_with_a_dict, write_with_sql, "master"], ids=lambda x: getattr(x, "__name__", str(x)))
def test_write_policy_accepts_correct_policies(right, capsys):
    passes(grading.check_write_policy, master("write_policy") if right == "master" else right, capsys)


@pytest.mark.parametrize(("mistake", "hint"), ref.WRITE_MISTAKES,
                         ids=[f"{i}-{hint[:30]}" for i, (_, hint) in enumerate(ref.WRITE_MISTAKES)])  # fmt: skip
def test_write_policy_rejects_known_mistakes(mistake, hint):
    rejects(grading.check_write_policy, mistake, hint)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (lambda s, st, t, a, c, p: None, "the store holds"),  # stores nothing
        (lambda s, st, t, a, c, p: c and s.add(st, t.key, t.answer + "!", True), "after experience 0"),
        (lambda s, st, t, a, c, p: p > 0.2 and ref.write_policy(s, st, t, a, c, p), "confidence is ignored"),
        (lambda s, st, t, a, c, p: ref.write_policy(s, 0, t, a, c, p),
         "(0, 'capital: Kel', 'Tumuki', True, 'experience')]"),  # ignores the step
        (lambda s, st, t, a, c, p: s.add(st, "", a), "raised ValueError"),
        (_remembers_keys_itself, "keep state between calls"),
    ],
)
def test_write_policy_rejects_other_wrong_policies(wrong, fragment):
    _STORED.clear()
    rejects(grading.check_write_policy, wrong, fragment)


def test_write_policy_not_done():
    with pytest.raises(ExerciseNotDone):
        grading.check_write_policy(not_done)


# --- Exercise 4: tool selection --------------------------------------------------------------------------------


def _documents(tools, usage):
    asked = defaultdict(list)
    for question, name in usage:
        asked[name] += ref.words(question)
    return [ref.words(t["name"].replace("_", " ") + " " + t["description"]) + asked[t["name"]] for t in tools]


def select_by_overlap(question, tools, usage, k):
    words = set(ref.words(question))
    scores = [len(words & set(doc)) for doc in _documents(tools, usage)]
    return tuple(tools[i]["name"] for i in sorted(range(len(tools)), key=lambda i: -scores[i])[:k])


def select_by_tfidf(question, tools, usage, k):
    docs = _documents(tools, usage)
    vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d} | set(ref.words(question))))}

    def vector(ws):
        v = np.zeros(len(vocab), dtype=np.float32)
        for w in ws:
            v[vocab[w]] += 1
        return v

    matrix = np.stack([vector(d) for d in docs])
    idf = np.log((1 + len(docs)) / (1 + (matrix > 0).sum(0))) + 1
    matrix = matrix * idf / np.linalg.norm(matrix * idf, axis=1, keepdims=True)
    query = vector(ref.words(question)) * idf
    scores = matrix @ (query / (np.linalg.norm(query) + 1e-12))
    return np.array([t["name"] for t in tools])[np.argsort(-scores, kind="stable")[:k]]  # a numpy array of names


def select_by_counting(question, tools, usage, k):
    """Another algorithm: each shared word weighs 1 / (the number of tools whose text holds it)."""
    asked = set(re.findall(r"[a-z0-9]+", question.lower()))
    texts = []
    for t in tools:
        text = f"{t['name']} {t['description']} " + " ".join(q for q, name in usage if name == t["name"])
        texts.append(set(re.findall(r"[a-z0-9]+", text.lower())))
    weight = {w: 1 / sum(w in text for text in texts) for w in asked if any(w in text for text in texts)}
    scores = [sum(weight.get(w, 0) for w in text & asked) for text in texts]
    return [tools[i]["name"] for i in sorted(range(len(tools)), key=lambda i: (-scores[i], i))][:k]


def _log_only(question, tools, usage, k):
    """The tools of the most similar past questions (among the tools offered), then the rest: no descriptions."""
    offered = [t["name"] for t in tools]
    past = [(q, name) for q, name in usage if name in offered]
    scores = ref.bm25_scores(ref.words(question), [ref.words(q) for q, _ in past]) if past else []
    ranked = list(dict.fromkeys(past[i][1] for i in sorted(range(len(past)), key=lambda i: -scores[i]) if scores[i] > 0))
    return (ranked + [n for n in offered if n not in ranked])[:k]


def _nearest_question_unfiltered(question, tools, usage, k):
    """The tools of the most similar past questions, even those the toolbox does not offer; then the toolbox."""
    scores = ref.bm25_scores(ref.words(question), [ref.words(q) for q, _ in usage]) if usage else []
    ranked = [usage[i][1] for i in sorted(range(len(usage)), key=lambda i: -scores[i]) if scores[i] > 0]
    return list(dict.fromkeys(ranked + [t["name"] for t in tools]))[: min(k, len(tools))]


def _split_on_spaces(question, tools, usage, k):
    """Words as str.split() gives them: 'Glorp?' is not 'glorp'."""
    docs = [(t["name"] + " " + t["description"] + " " + " ".join(q for q, n in usage if n == t["name"])).split()
            for t in tools]  # fmt: skip
    scores = [len(set(question.split()) & set(doc)) for doc in docs]
    return [tools[i]["name"] for i in sorted(range(len(tools)), key=lambda i: -scores[i])[:k]]


def _memo_on_sizes():
    cache = {}

    def select(question, tools, usage, k):
        if (len(tools), k) not in cache:
            cache[len(tools), k] = ref.select_tools(question, tools, usage, k)
        return cache[len(tools), k]

    return select


def _lookup_table(question, tools, usage, k):
    """Memorises the questions it can see; falls back on the first tools."""
    names, seen = [t["name"] for t in tools], dict(usage)
    first = [seen[question]] if seen.get(question) in names else []
    return first + [n for n in names if n not in first][: k - len(first)]


@pytest.mark.parametrize("right", [ref.select_tools, select_by_overlap, select_by_tfidf, select_by_counting, "master"],
                         ids=lambda x: getattr(x, "__name__", str(x)))  # fmt: skip
def test_select_tools_accepts_sensible_selectors(right, capsys):
    passes(grading.check_select_tools, master("select_tools") if right == "master" else right, capsys)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_log_only, "score each tool's description too"),
        (lambda q, t, u, k: ref.select_tools(q, t, [], k), "add the words of the usage log"),  # ignores the log
        (_split_on_spaces, "without case and punctuation"),
        (_nearest_question_unfiltered, "not in the toolbox"),
        (_memo_on_sizes(), "tools of an earlier toolbox"),
        (_lookup_table, "must come first"),
        (lambda q, t, u, k: [x["name"] for x in t[:k]], "must come first"),  # ignores the question
        (lambda q, t, u, k: ref.select_tools(q, t, u, k)[::-1], "most relevant tool first"),
        (lambda q, t, u, k: ref.select_tools(q, t, u, len(t))[:k][::-1], "most relevant tool first"),
        (lambda q, t, u, k: [x["name"] for x in t if x["name"] in ref.select_tools(q, t, u, k)], "must come first"),
        (lambda q, t, u, k: (lambda s: s[:1] + [x["name"] for x in t if x["name"] in s[1:]])(ref.select_tools(q, t, u, k)),
         "comes second"),  # the rest in the toolbox's order
        (lambda q, t, u, k: ref.select_tools(q, t, u, 3), "distinct tool names"),  # ignores k
        (lambda q, t, u, k: ref.select_tools(q, t, u, max(k, 1)), "distinct tool names"),  # k = 0
        (lambda q, t, u, k: ref.select_tools(q, t, u, k) * 2, "distinct tool names"),
        (lambda q, t, u, k: [x for x in t if x["name"] in ref.select_tools(q, t, u, k)], "tool names (str)"),
        (lambda q, t, u, k: (n for n in ref.select_tools(q, t, u, k)), "generator"),
        (lambda q, t, u, k: t.sort(key=lambda x: x["name"]) or ref.select_tools(q, t, u, k), "modified its input `t`"),
        (lambda q, t, u, k: u.append((q, "calculator")) or ref.select_tools(q, t, u, k), "modified its input `u`"),
    ],
)  # fmt: skip
def test_select_tools_rejects_wrong_selectors(wrong, fragment):
    rejects(grading.check_select_tools, wrong, fragment)


def test_select_tools_not_done():
    with pytest.raises(ExerciseNotDone):
        grading.check_select_tools(not_done)


def test_drawn_toolboxes_have_one_clear_answer_that_every_sensible_selector_finds():
    """Over many draws (more than the check makes), the reference and the other correct selectors agree on the
    graded places; and each kind of evidence comes up."""
    kinds = Counter()
    selectors = [ref.select_tools, select_by_overlap, select_by_tfidf, select_by_counting, master("select_tools")]

    def one(args):
        question, tools, usage, k = args
        graded_tools = ref._expected_order(question, tools, usage)
        index = [t["name"] for t in tools].index(graded_tools[0])
        kinds.update({"description only": ref._shared(question, tools, [])[index] == 3,
                      "log only": ref._shared(question, [{**t, "description": ""} for t in tools], usage)[index] == 3,
                      "second": len(graded_tools) == 2, "k = 0": k == 0, "k > tools": k > len(tools)})  # fmt: skip
        for select in selectors:
            assert list(select(question, tools, usage, len(tools)))[: len(graded_tools)] == graded_tools, select

    ref.holds("select_tools agreement", ref._toolboxes(), one, max_examples=400)
    assert min(kinds.values()) >= 20 and len(kinds) == 5, kinds


# --- The study's report ---------------------------------------------------------------------------------------


def _study(**changes):
    outcomes = [i % 3 == 0 for i in range(40)]
    study = {"question": "Does memory help on questions seen for the first time?", "control": "no memory",
             "conditions": {"no memory": outcomes, "memory": [not o for o in outcomes]},
             "subsets": {"first occurrence": [i < 20 for i in range(40)]}}  # fmt: skip
    study.update(changes)
    return lambda: study


def test_study_report_is_printed_with_intervals(capsys):
    report = grading.check_agent_study(_study())
    printed = capsys.readouterr().out
    assert "✓" in printed and "vs no memory: +" in printed and "first occurrence" in printed and "(n=20)" in printed
    assert report["subsets"]["all items"] == [True] * 40
    assert report["conditions"]["memory"] == [i % 3 != 0 for i in range(40)]


_BASE = np.arange(40) % 3 == 0


@pytest.mark.parametrize(
    "conditions",
    [
        {"no memory": _BASE, "memory": ~_BASE},  # numpy booleans
        {"no memory": list(_BASE), "memory": list(~_BASE)},  # lists of numpy.bool_
        {"no memory": pd.Series(_BASE), "memory": pd.Series(~_BASE).astype(int)},  # pandas, 0/1 integers
        {"no memory": torch.tensor(_BASE), "memory": [torch.tensor(not b) for b in _BASE]},  # torch, 0-d tensors
        pd.DataFrame({"no memory": _BASE, "memory": (~_BASE).astype(np.float32)}),  # a DataFrame, 0.0/1.0
    ],
    ids=["numpy", "numpy-scalars", "pandas", "torch", "dataframe"],
)
def test_study_report_accepts_array_likes(conditions, capsys):
    subsets = {"first occurrence": pd.Series(np.arange(40) < 20), "repeat": torch.arange(40) >= 20}
    report = grading.check_agent_study(_study(conditions=conditions, subsets=subsets))
    assert report["conditions"]["memory"] == [i % 3 != 0 for i in range(40)]
    assert report["subsets"]["repeat"] == [i >= 20 for i in range(40)]
    assert "vs no memory: +" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"question": ""}, "state the question"),
        ({"question": 42}, "state the question"),
        ({"control": "nothing"}, "control 'nothing' is not one of the conditions"),
        ({"control": "No memory "}, "did you mean 'no memory'"),
        ({"conditions": {"no memory": [True] * 40}}, "at least two"),
        ({"conditions": [[True] * 40, [False] * 40]}, "dict of name"),
        ({"conditions": {"no memory": [True] * 40, "memory": [True] * 39}}, "paired"),
        ({"conditions": {"no memory": [True] * 10, "memory": [False] * 10}}, "30+"),
        ({"conditions": {"no memory": [0.5] * 40, "memory": [1] * 40}}, "True/False"),
        ({"conditions": {"no memory": ["yes"] * 40, "memory": [1] * 40}}, "True/False"),
        ({"conditions": {"no memory": [None] * 40, "memory": [1] * 40}}, "True/False"),
        ({"conditions": {"no memory": (o for o in [True] * 40), "memory": [1] * 40}}, "iterator"),
        ({"conditions": {"no memory": np.ones((40, 2), dtype=bool), "memory": [1] * 40}}, "True/False"),
        ({"subsets": {"first": [True] * 3}}, "expected 40"),
        ({"subsets": {"first": ["no"] * 40}}, "subset 'first'"),
    ],
)
def test_study_report_rejects_incomplete_reports(changes, fragment):
    rejects(grading.check_agent_study, _study(**changes), fragment)


def test_study_report_rejects_other_returns():
    rejects(grading.check_agent_study, lambda: [0.1, 0.2], "should return a dict")
    rejects(grading.check_agent_study, lambda: {"question": "Does it help?"}, "should return a dict with keys")
    with pytest.raises(ExerciseNotDone):
        grading.check_agent_study(not_done)


def test_reference_bm25_is_sane():
    scores = ref.bm25_scores(["language", "tumuki"], [["language", "brelos"], ["capital", "tumuki"], ["x"]])
    assert scores[2] == 0 and min(scores[:2]) > 0 and not any(math.isnan(s) for s in scores)
