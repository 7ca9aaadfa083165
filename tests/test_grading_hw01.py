"""Homework 01 graders accept their references and correct implementations written differently, and reject
plausible wrong ones (in-place edits, wrong return types, memorised answers included) with a readable message."""

import copy
import math
from collections import defaultdict

import numpy as np
import pytest

from utils import grading
from utils.grading import ExerciseNotDone, GradingError
from utils.grading import hw01 as ref


def passes(check, fn, capsys):
    check(fn)
    assert "✓" in capsys.readouterr().out


def rejects(check, fn, fragment=""):
    with pytest.raises(GradingError) as info:
        check(fn)
    message = str(info.value)
    assert fragment in message, f"expected {fragment!r} in {message!r}"
    assert "\n" not in message and "Traceback" not in message
    return message


def not_done(*args):
    raise NotImplementedError


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
    def without(name, argument):
        try:
            return ref.use_tool(tools, name, argument, max_retries)
        finally:
            if name in tools and name != "backup":
                del tools[name]  # "don't call a tool twice": changes the caller's toolbox

    answer, messages = ref.run_agent(policy, question, tools, max_steps, max_retries)
    without("clock", "x")
    return answer, messages


def test_run_agent_accepts_correct_loops(capsys):
    passes(grading.check_run_agent, ref.run_agent, capsys)
    passes(grading.check_run_agent, loop_with_while, capsys)


@pytest.mark.parametrize(("mistake", "hint"), ref.AGENT_MISTAKES, ids=lambda x: str(x)[:30])
def test_run_agent_rejects_known_mistakes(mistake, hint):
    rejects(grading.check_run_agent, mistake, hint)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_crashes_on_tool_errors, "raised"),
        (lambda p, q, t, s=6, r=2: ref.run_agent(p, q, t, s, r)[0], "should return a pair"),
        (lambda p, q, t, s=6, r=2: (*ref.run_agent(p, q, t, s, r), s), "got 3 items"),
        (lambda p, q, t, s=6, r=2: {"answer": ref.run_agent(p, q, t, s, r)[0]}, "dict"),
        (lambda p, q, t, s=6, r=2: (ref.run_agent(p, q, t, s, r)[0], iter(ref.run_agent(p, q, t, s, r)[1])), "iterator"),
        (lambda p, q, t, s=6, r=2: (ref.run_agent(p, q, t, s, r)[0],
                                    [{**m, "step": 0} for m in ref.run_agent(p, q, t, s, r)[1]]), "'role'"),
        (lambda p, q, t, s=6, r=2: (3, ref.run_agent(p, q, t, s, r)[1]), "str or None"),
        (lambda p, q, t, s=6, r=2: ref.run_agent(p, q, {k.upper(): v for k, v in t.items()}, s, r), "message 2"),
        (_drops_failing_tools, "modified its input `tools` in place"),
        (lambda p, q, t, s=6, r=2: (None, [{"role": "user", "content": q}]), "fewer steps"),
    ],
)  # fmt: skip
def test_run_agent_rejects_wrong_loops_and_return_types(wrong, fragment):
    rejects(grading.check_run_agent, wrong, fragment)
    with pytest.raises(ExerciseNotDone):
        grading.check_run_agent(not_done)


# --- Exercise 2: re-planning --------------------------------------------------------------------------------


def replan_recursive(plan, lookup, believe):
    """Correct, written differently: a recursion over the remaining steps and a set of renamings."""

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


def replan_deepcopy(plan, lookup, believe):
    steps = copy.deepcopy(plan)
    return ref.execute_plan(steps, lookup, believe)


def _replan_in_place(plan, lookup, believe):
    """The lecture's habit of rewriting plan[i + 1]: here on the caller's own plan."""
    answer, replans, executed = ref.execute_plan(plan, lookup, believe)
    for step, done in zip(plan, executed, strict=False):
        step.update({k: v for k, v in done.items() if k != "observed"})
    return answer, replans, executed


def test_execute_plan_accepts_correct_executors(capsys):
    passes(grading.check_execute_plan, ref.execute_plan, capsys)
    passes(grading.check_execute_plan, replan_recursive, capsys)
    passes(grading.check_execute_plan, replan_deepcopy, capsys)


@pytest.mark.parametrize(("mistake", "hint"), ref.PLAN_MISTAKES, ids=lambda x: str(x)[:30])
def test_execute_plan_rejects_known_mistakes(mistake, hint):
    rejects(grading.check_execute_plan, mistake, hint)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_replan_in_place, "modified its input `plan` in place"),
        (lambda p, lk, b: ref.execute_plan(p, lk, b)[:2], "got 2 items"),
        (lambda p, lk, b: [*ref.execute_plan(p, lk, b)[:2], *ref.execute_plan(p, lk, b)[2]], "items"),
        (lambda p, lk, b: ref.execute_plan(p, lk, b)[:2] + ([(s["subject"], s["observed"]) for s in
                                                              ref.execute_plan(p, lk, b)[2]],), "dict with keys"),
        (lambda p, lk, b: (p[-1]["expect"], 0, [{**s, "observed": s["expect"]} for s in p]), ""),  # the plan, blindly
        (lambda p, lk, b: (ref.execute_plan(p, lk, b)[0], 0.0, ref.execute_plan(p, lk, b)[2]), "int"),
        (lambda p, lk, b: {"answer": ref.execute_plan(p, lk, b)[0]}, "dict"),
    ],
)  # fmt: skip
def test_execute_plan_rejects_wrong_executors_and_return_types(wrong, fragment):
    rejects(grading.check_execute_plan, wrong, fragment)
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


def test_write_policy_accepts_correct_policies(capsys):
    passes(grading.check_write_policy, ref.write_policy, capsys)
    passes(grading.check_write_policy, write_with_a_dict, capsys)


@pytest.mark.parametrize(("mistake", "hint"), ref.WRITE_MISTAKES,
                         ids=[f"{i}-{hint[:30]}" for i, (_, hint) in enumerate(ref.WRITE_MISTAKES)])  # fmt: skip
def test_write_policy_rejects_known_mistakes(mistake, hint):
    rejects(grading.check_write_policy, mistake, hint)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (lambda s, st, t, a, c, p: None, "left 4 memories"),
        (lambda s, st, t, a, c, p: c and s.add(st, t.key, t.answer + "!", True), "memories"),
        (lambda s, st, t, a, c, p: p > 0.5 and ref.write_policy(s, st, t, a, c, p), "memories"),  # uses confidence
        (lambda s, st, t, a, c, p: s.add(st, "", a), "raised ValueError"),
    ],
)
def test_write_policy_rejects_other_wrong_policies(wrong, fragment):
    rejects(grading.check_write_policy, wrong, fragment)
    with pytest.raises(ExerciseNotDone):
        grading.check_write_policy(not_done)


# --- Exercise 4: tool selection, on held-out questions --------------------------------------------------------


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
        v = np.zeros(len(vocab))
        for w in ws:
            v[vocab[w]] += 1
        return v

    matrix = np.stack([vector(d) for d in docs])
    idf = np.log((1 + len(docs)) / (1 + (matrix > 0).sum(0))) + 1
    matrix = matrix * idf / np.linalg.norm(matrix * idf, axis=1, keepdims=True)
    query = vector(ref.words(question)) * idf
    scores = matrix @ (query / (np.linalg.norm(query) + 1e-12))
    return [tools[i]["name"] for i in np.argsort(-scores, kind="stable")[:k]]


def select_by_nearest_question(question, tools, usage, k):
    """Another algorithm: the tools of the most similar past questions (among the tools offered), then the rest."""
    offered = [t["name"] for t in tools]
    past = [(q, name) for q, name in usage if name in offered]
    scores = ref.bm25_scores(ref.words(question), [ref.words(q) for q, _ in past])
    ranked = list(dict.fromkeys(past[i][1] for i in sorted(range(len(past)), key=lambda i: -scores[i])))
    return (ranked + [n for n in offered if n not in ranked])[:k]


def _lookup_table(question, tools, usage, k):
    """Memorises the questions it can see; falls back on the first tools."""
    names, seen = [t["name"] for t in tools], dict(usage)
    first = [seen[question]] if seen.get(question) in names else []
    return first + [n for n in names if n not in first][: k - len(first)]


def _lookup_then_descriptions(question, tools, usage, k):
    """Memorises the questions it can see; falls back on BM25 over the descriptions alone."""
    seen, fallback = dict(usage), ref.select_tools(question, tools, [], k)
    first = [seen[question]] if question in seen else []
    return first + [n for n in fallback if n not in first][: k - len(first)]


def _nearest_question_unfiltered(question, tools, usage, k):
    """The tools of the most similar past questions, even those the toolbox does not offer."""
    scores = ref.bm25_scores(ref.words(question), [ref.words(q) for q, _ in usage])
    ranked = list(dict.fromkeys(usage[i][1] for i in sorted(range(len(usage)), key=lambda i: -scores[i])))
    return ranked[:k]


@pytest.mark.parametrize("right", [ref.select_tools, select_by_overlap, select_by_tfidf, select_by_nearest_question])
def test_select_tools_accepts_sensible_selectors(right, capsys):
    passes(grading.check_select_tools, right, capsys)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (_lookup_table, "same first tool"),
        (_lookup_then_descriptions, "don't memorise"),
        (lambda q, t, u, k: ref.select_tools(q, t, [], k), "the bar is 90%"),  # ignores the usage log
        (lambda q, t, u, k: ref.select_tools(q, t, u if all(x["description"] for x in t) else [], k),
         "only the usage log"),  # reads the log only while descriptions exist
        (lambda q, t, u, k: ref.select_tools(q, t, u, k)[::-1], "most relevant first"),
        (lambda q, t, u, k: [x["name"] for x in t[:k]], "same first tool"),
        (lambda q, t, u, k: ref.select_tools(q, t, u, 3), "k=1"),
        (_nearest_question_unfiltered, "not in the toolbox"),
        (lambda q, t, u, k: [x for x in t if x["name"] in ref.select_tools(q, t, u, k)], "tool names (str)"),
        (lambda q, t, u, k: (n for n in ref.select_tools(q, t, u, k)), "generator"),
        (lambda q, t, u, k: t.sort(key=lambda x: x["name"]) or ref.select_tools(q, t, u, k), "modified its input `t`"),
        (lambda q, t, u, k: u.append((q, "calculator")) or ref.select_tools(q, t, u, k), "modified its input `u`"),
    ],
)  # fmt: skip
def test_select_tools_rejects_wrong_selectors(wrong, fragment):
    rejects(grading.check_select_tools, wrong, fragment)
    with pytest.raises(ExerciseNotDone):
        grading.check_select_tools(not_done)


def test_held_out_questions_are_not_the_visible_ones():
    from utils.agents import toolbox
    from utils.tinyworld.world import load_world

    _, visible = toolbox(load_world())
    held_out = ref.held_out_questions()
    assert len(held_out) == 96 and not {q for q, _ in held_out} & {q for q, _ in visible}


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


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"question": ""}, "state the question"),
        ({"control": "nothing"}, "control 'nothing'"),
        ({"conditions": {"no memory": [True] * 40}}, "at least two"),
        ({"conditions": {"no memory": [True] * 40, "memory": [True] * 39}}, "paired"),
        ({"conditions": {"no memory": [True] * 10, "memory": [False] * 10}}, "30+"),
        ({"conditions": {"no memory": [0.5] * 40, "memory": [1] * 40}}, "True/False"),
        ({"conditions": {"no memory": (o for o in [True] * 40), "memory": [1] * 40}}, "iterator"),
        ({"subsets": {"first": [True] * 3}}, "expected 40"),
    ],
)
def test_study_report_rejects_incomplete_reports(changes, fragment):
    rejects(grading.check_agent_study, _study(**changes), fragment)
    rejects(grading.check_agent_study, lambda: [0.1, 0.2], "should return a dict")
    with pytest.raises(ExerciseNotDone):
        grading.check_agent_study(not_done)


def test_reference_bm25_is_sane():
    scores = ref.bm25_scores(["language", "tumuki"], [["language", "brelos"], ["capital", "tumuki"], ["x"]])
    assert scores[2] == 0 and min(scores[:2]) > 0 and not any(math.isnan(s) for s in scores)
