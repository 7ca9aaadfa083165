"""Graders for homework 01 (agents): an agent loop that recovers from tool errors, re-planning, a write policy
that deduplicates, overwrites and forgets, tool selection learned from a usage log, and a study's report.

Every scenario, replay and question here is hidden from the student: scripted policies and tools they have not
seen, worlds generated from seeds, and tool questions written apart from the toolbox they can read.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import cache

from utils.agents import MemoryStore, Task, toolbox
from utils.grading.core import GradingError, call, describe, expect_list, graded
from utils.paths import DATA
from utils.stats import fmt_difference, fmt_rate

HELD_OUT_FILE = DATA / "agents" / "toolbox_held_out.json"

# --- Exercise 1: an agent loop that recovers from tool errors ----------------------------------------------

CALL = re.compile(r"^\s*<\|call\|>\s*([A-Za-z_]\w*)\((.*)\)\s*$", re.S)


def parse_call(action: str) -> tuple[str, str] | None:
    """(tool name, argument) if the action calls a tool, None if it is a final answer; ValueError if malformed."""
    if "<tool_call>" in action:  # the JSON dialect of Qwen-style chat templates
        found = re.search(r"<tool_call>\s*(\{.*\})\s*</tool_call>", action, re.S)
        try:
            request = json.loads(found.group(1))
            return request["name"], str(next(iter(request.get("arguments", {}).values()), ""))
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ValueError(f"malformed tool call {action.strip()!r}: expected <tool_call>{{json}}</tool_call>") from None
    if "<|call|>" not in action:
        return None
    match = CALL.match(action)
    if match is None:
        raise ValueError(f"malformed tool call {action.strip()!r}: expected <|call|>name(argument)")
    return match.group(1), match.group(2)


def use_tool(tools: dict, name: str, argument: str, max_retries: int) -> str:
    if name not in tools:
        return f"error: unknown tool {name!r}"
    for _ in range(1 + max_retries):
        try:
            return str(tools[name](argument))
        except TimeoutError:
            continue
        except Exception as error:  # noqa: BLE001 - a permanent error goes back to the model
            return f"error: {error}"
    return f"error: {name} timed out {1 + max_retries} times"


def run_agent(policy: Callable, question: str, tools: dict, max_steps: int = 6, max_retries: int = 2):
    messages = [{"role": "user", "content": question}]
    for _ in range(max_steps):
        action = policy(messages)
        messages.append({"role": "assistant", "content": action})
        try:
            request = parse_call(action)
        except ValueError as error:
            observation = f"error: {error}"
        else:
            if request is None:
                return action.strip(), messages
            observation = use_tool(tools, *request, max_retries)
        messages.append({"role": "tool", "content": observation})
    return None, messages


def _scripted(*actions: str) -> Callable:
    """A policy that plays its actions in order (the last one forever), whatever it observes."""
    return lambda messages: actions[min(len(messages) // 2, len(actions) - 1)]


def _reactive(first: str, on_error: str, answer: str = "It is {}.") -> Callable:
    """A policy that calls a tool, switches to a backup tool after an error, and answers with the observation."""

    def policy(messages):
        if messages[-1]["role"] == "user":
            return first
        if messages[-1]["content"].startswith("error"):
            return on_error
        return answer.format(messages[-1]["content"])

    return policy


class _Tools:
    """Fresh tools for one run, logging every invocation. `flaky[name] = "TTO"`: its first two invocations time
    out, the third works (and every one after the pattern)."""

    def __init__(self, flaky: dict[str, str] | None = None, broken: dict[str, Exception] | None = None):
        self.flaky, self.broken, self.log = dict(flaky or {}), dict(broken or {}), []

    def make(self, name: str, fn: Callable) -> Callable:
        def tool(argument):
            self.log.append((name, argument))
            pattern, self.flaky[name] = self.flaky.get(name, "")[:1], self.flaky.get(name, "")[1:]
            if pattern == "T":
                raise TimeoutError(f"{name} did not answer in time")
            if name in self.broken:
                raise self.broken[name]
            return fn(argument)

        return tool

    def box(self) -> dict:
        table = {"clock": lambda a: f"{len(a) % 12 + 1} pm", "atlas": lambda a: a[::-1].title(),
                 "abacus": lambda a: sum(int(x) for x in re.findall(r"\d+", a)), "backup": lambda a: f"{a} (cached)"}  # fmt: skip
        return {name: self.make(name, fn) for name, fn in table.items()}


# (what the scenario is, policy, question, flaky, broken, max_steps, max_retries)
AGENT_SCENARIOS = [
    ("a direct answer with spaces around it", _scripted("  Seven o'clock. \n"), "When?", {}, {}, 6, 2),
    ("one call, then an answer", _reactive("<|call|>clock(Vos)", "I failed."), "Time in Vos?", {}, {}, 6, 2),
    ("a tool whose result is a number", _reactive("<|call|>abacus(12 and 30)", "no"), "Sum?", {}, {}, 3, 1),
    ("a tool that times out twice, then answers", _reactive("<|call|>clock(Ra)", "I failed."), "Time?",
     {"clock": "TT"}, {}, 6, 2),
    ("a tool that times out more often than the retries allow", _reactive("<|call|>clock(Ra)", "<|call|>backup(Ra)"),
     "Time?", {"clock": "TTTTT"}, {}, 6, 2),
    ("no retries allowed", _reactive("<|call|>atlas(kel)", "<|call|>backup(kel)"), "Where?", {"atlas": "T"}, {}, 4, 0),
    ("three retries allowed", _reactive("<|call|>atlas(kel)", "I failed."), "Where?", {"atlas": "TTT"}, {}, 4, 3),
    ("two calls that each time out twice", _scripted("<|call|>clock(A)", "<|call|>clock(B)", "Done."), "Times?",
     {"clock": "TTOTT"}, {}, 6, 2),
    ("a tool that fails for good (no retry helps)", _reactive("<|call|>atlas(x)", "<|call|>backup(x)"), "Where?",
     {}, {"atlas": ValueError("no entry for 'x'")}, 6, 2),
    ("a tool raising KeyError", _reactive("<|call|>clock(Zu)", "Unknown."), "Time?", {}, {"clock": KeyError("Zu")}, 5, 1),
    ("an unknown tool", _reactive("<|call|>weather(Vos)", "<|call|>atlas(vos)"), "Warm?", {}, {}, 6, 2),
    ("a malformed call", _reactive("<|call|>clock(Vos", "Sorry."), "Time?", {}, {}, 6, 2),
    ("a policy that never stops calling tools", _scripted("<|call|>clock(1)"), "Loop", {}, {}, 3, 2),
    ("a budget of one step", _scripted("<|call|>abacus(1 2)", "Three."), "Sum?", {}, {}, 1, 2),
    ("a budget of one step and a direct answer", _scripted("Fine."), "Hi", {}, {}, 1, 0),
]


def _agent_run(fn: Callable, scenario: tuple, name: str) -> tuple:
    _, policy, question, flaky, broken, max_steps, max_retries = scenario
    tools = _Tools(flaky, broken)
    out = call(fn, (policy, question, tools.box(), max_steps, max_retries), name)
    return out, tools.log


def _read_episode(out, name: str) -> tuple:
    pair = expect_list(out, name, what="a pair (final answer or None, messages)")
    if len(pair) != 2:
        raise GradingError(f"{name} should return a pair (final answer or None, messages), got {len(pair)} items.")
    answer, messages = pair[0], expect_list(pair[1], name, what="messages as a list of dicts")
    if answer is not None and not isinstance(answer, str):
        raise GradingError(f"{name}: the final answer should be a str or None, got {describe(answer)}.")
    for m in messages:
        if not isinstance(m, dict) or set(m) != {"role", "content"} or not isinstance(m["content"], str):
            raise GradingError(f"{name}: each message should be a dict with a 'role' and a str 'content', got {describe(m)}.")
    return answer, messages


def _agent_variant(retry=lambda e: isinstance(e, TimeoutError), retries_cost_steps=False, shared_budget=False,
                   extra_step=False, strip=True) -> Callable:  # fmt: skip
    """Known mistakes: which errors are retried, what a retry costs, how long the budget lasts."""

    def loop(policy, question, tools, max_steps=6, max_retries=2):
        messages, budget = [{"role": "user", "content": question}], [max_retries]
        steps = 0
        while steps < max_steps + extra_step:
            action = policy(messages)
            messages.append({"role": "assistant", "content": action})
            steps += 1
            try:
                request = parse_call(action)
            except ValueError as error:
                messages.append({"role": "tool", "content": f"error: {error}"})
                continue
            if request is None:
                return action.strip() if strip else action, messages
            name, argument = request
            if name not in tools:
                messages.append({"role": "tool", "content": f"error: unknown tool {name!r}"})
                continue
            left = budget if shared_budget else [max_retries]
            tries = 0
            while True:
                tries += 1
                try:
                    observation = str(tools[name](argument))
                    break
                except Exception as error:  # noqa: BLE001
                    if not retry(error) or left[0] == 0:
                        observation = (f"error: {name} timed out {tries} times" if isinstance(error, TimeoutError)
                                       else f"error: {error}")  # fmt: skip
                        break
                    left[0] -= 1
                    if retries_cost_steps:
                        messages += [{"role": "tool", "content": f"error: {error}"}, {"role": "assistant", "content": action}]
                        steps += 1
            messages.append({"role": "tool", "content": observation})
        return None, messages

    return loop


AGENT_MISTAKES = [
    (_agent_variant(retry=lambda e: False), "retry a tool that raises TimeoutError, up to max_retries more times, "
                                            "before you report the error."),  # fmt: skip
    (_agent_variant(retry=lambda e: True), "retry only a TimeoutError: any other error would happen again, so it "
                                           "goes back to the model at once."),  # fmt: skip
    (_agent_variant(retries_cost_steps=True), "a retry is part of the same step: it adds no message and spends no "
                                              "step of the budget."),  # fmt: skip
    (_agent_variant(shared_budget=True), "the retry budget is per tool call: every new call may retry max_retries times."),
    (_agent_variant(extra_step=True), "stop after max_steps actions: the budget counts the policy's actions."),
    (_agent_variant(strip=False), "return the final answer stripped of surrounding whitespace."),
]


@graded("run_agent")
def check_run_agent(fn) -> None:
    for scenario in AGENT_SCENARIOS:
        expected, expected_log = _agent_run(run_agent, scenario, "reference")
        out, log = _agent_run(fn, scenario, "run_agent")
        answer, messages = _read_episode(out, "run_agent")
        if (answer, messages, log) == (*expected, expected_log):
            continue
        for mistake, message in AGENT_MISTAKES:
            if ((answer, messages), log) == _agent_run(mistake, scenario, "hint"):
                raise GradingError(f"run_agent ({scenario[0]}): {message}")
        raise GradingError(f"run_agent ({scenario[0]}): {_first_difference(answer, messages, log, *expected, expected_log)}")
    print(f"✓ run_agent: passed {len(AGENT_SCENARIOS)} scripted episodes with tools you have not seen.")


def _first_difference(answer, messages, log, want_answer, want_messages, want_log) -> str:
    for i, (mine, want) in enumerate(zip(messages, want_messages, strict=False)):
        if mine != want:
            return f"message {i} is {mine!r}, expected {want!r}"[:300]
    if len(messages) != len(want_messages):
        extra = "more" if len(messages) > len(want_messages) else "fewer"
        return f"{len(messages)} messages where {len(want_messages)} were expected ({extra} steps than the rules allow)"
    if log != want_log:
        return f"the tools were called {len(log)} times, {log}, expected {len(want_log)}, {want_log}"[:300]
    return f"the final answer is {answer!r}, expected {want_answer!r}"


# --- Exercise 2: re-planning ---------------------------------------------------------------------------------


def execute_plan(plan: list[dict], lookup: Callable, believe: Callable) -> tuple[str | None, int, list[dict]]:
    steps = [dict(step) for step in plan]
    executed, replans = [], 0
    for i, step in enumerate(steps):
        observed = lookup(step["subject"], step["relation"])
        executed.append({**step, "observed": observed})
        if observed is None:
            return None, replans, executed
        if observed != step["expect"] and i + 1 < len(steps):
            replans += 1
            renamed = {step["expect"]: observed}  # stale value -> what replaces it
            for later in steps[i + 1 :]:
                if later["subject"] in renamed:
                    later["subject"] = renamed[later["subject"]]
                    expect = believe(later["subject"], later["relation"])
                    if expect != later["expect"]:
                        renamed[later["expect"]] = expect
                    later["expect"] = expect
    return executed[-1]["observed"], replans, executed


def _plan_variant(scope="all", propagate=True, rethink=True, stop=True, count_last=False, believe_all=False) -> Callable:
    def execute(plan, lookup, believe):
        steps = [dict(step) for step in plan]
        executed, replans = [], 0
        for i, step in enumerate(steps):
            observed = lookup(step["subject"], step["relation"])
            executed.append({**step, "observed": observed})
            if observed is None and stop:
                return None, replans, executed
            if observed != step["expect"] and (i + 1 < len(steps) or count_last):
                replans += 1
                renamed = {step["expect"]: observed}
                for later in steps[i + 1 : i + 2] if scope == "next" else steps[i + 1 :]:
                    if later["subject"] in renamed or believe_all:
                        later["subject"] = renamed.get(later["subject"], later["subject"])
                        expect = believe(later["subject"], later["relation"]) if rethink else later["expect"]
                        if expect != later["expect"] and propagate:
                            renamed[later["expect"]] = expect
                        later["expect"] = expect
        return executed[-1]["observed"], replans, executed

    return execute


PLAN_MISTAKES = [
    (_plan_variant(scope="next"), "rewrite every remaining step that uses the stale value, not only the next one."),
    (_plan_variant(propagate=False), "when a rewritten step's expectation changes, its old expectation is stale too: "
                                     "rewrite the later steps that use it (propagate the renaming)."),  # fmt: skip
    (_plan_variant(rethink=False), "a rewritten step needs a new expectation: ask believe(new subject, relation)."),
    (_plan_variant(stop=False), "stop at the first lookup that returns None: the plan cannot go on."),
    (_plan_variant(count_last=True), "a surprise at the last step leaves nothing to re-plan: it is not a re-plan."),
    (_plan_variant(believe_all=True), "call believe only for the steps whose subject you rewrote (each call is a "
                                      "model call)."),  # fmt: skip
]


def _world(seed: int) -> tuple[dict, dict]:
    """(beliefs, current): a small random world of chains person -> org -> city -> country -> language, and the
    same world after some facts changed, as {(subject, relation): object}."""
    rng = random.Random(seed)
    countries = [f"Land{i}" for i in range(4)]
    cities = [f"City{i}" for i in range(6)]
    orgs = [f"Org{i}" for i in range(5)]
    people = [f"P{i}" for i in range(6)]
    beliefs = {}
    for c in countries:
        beliefs[c, "language"] = rng.choice(["Oskan", "Trevic", "Lunese"])
    for c in cities:
        beliefs[c, "country"] = rng.choice(countries)
    for o in orgs:
        beliefs[o, "headquarters"] = rng.choice(cities)
        beliefs[o, "ceo"] = rng.choice(people)
    for p in people:
        beliefs[p, "employer"], beliefs[p, "birthplace"] = rng.choice(orgs), rng.choice(cities)
    current = dict(beliefs)
    for key in rng.sample(sorted(beliefs), 6):  # the world changed since the model learned it
        options = {"language": ["Oskan", "Trevic", "Lunese", "Kettic"], "country": countries, "headquarters": cities,
                   "ceo": people, "employer": orgs, "birthplace": cities}[key[1]]  # fmt: skip
        current[key] = rng.choice([o for o in options if o != beliefs[key]])
    beliefs[people[0], "employer"] = "Org9"  # a hallucinated employer the directory does not know
    return beliefs, current


CHAINS = [["employer", "headquarters", "country", "language"], ["employer", "headquarters", "country"],
          ["birthplace", "country", "language"], ["employer", "ceo", "employer", "headquarters"], ["employer"]]  # fmt: skip


def _plan(beliefs: dict, subject: str, relations: list[str], branch: str | None = None) -> list[dict]:
    """The plan a model with these beliefs writes: each step looks up what it expects the previous one returns."""
    steps, expected = [], {}
    for relation in relations:
        steps.append({"subject": subject, "relation": relation, "expect": beliefs.get((subject, relation), "?")})
        expected[relation] = subject = steps[-1]["expect"]
    if branch:  # a second step that uses the first step's expected value
        first = steps[0]["expect"]
        steps.insert(2, {"subject": first, "relation": branch, "expect": beliefs.get((first, branch), "?")})
    return steps


def _plan_cases() -> list[tuple[str, list[dict], dict, dict]]:
    cases = []
    for seed in range(6):  # plans with a branch first: they tell "only the next step" from "no propagation"
        beliefs, current = _world(seed)
        for p in ["P0", "P1", "P2"]:
            cases.append((f"world {seed}, a plan with a branch", _plan(beliefs, p, CHAINS[1], branch="ceo"), beliefs,
                          current))  # fmt: skip
    for seed in range(6):
        beliefs, current = _world(seed)
        for p, chain in zip(["P0", "P1", "P2", "P3", "P4", "P5"], [*CHAINS, CHAINS[0]], strict=True):
            cases.append((f"world {seed}, a plan about {p}", _plan(beliefs, p, chain), beliefs, current))
    beliefs, current = _world(0)
    cases.append(("a subject the directory does not know", _plan(beliefs, "P9", CHAINS[1]), beliefs, current))
    return cases


def _plan_run(fn: Callable, plan: list[dict], beliefs: dict, current: dict, name: str):
    asked = []

    def lookup(subject, relation):
        return current.get((subject, relation))

    def believe(subject, relation):
        asked.append((subject, relation))
        return beliefs.get((subject, relation), "?")

    return call(fn, (plan, lookup, believe), name), asked


def _read_plan_result(out, name: str) -> tuple:
    triple = expect_list(out, name, what="a triple (answer, re-plans, executed steps)")
    if len(triple) != 3:
        raise GradingError(f"{name} should return (answer, number of re-plans, executed steps), got {len(triple)} items.")
    answer, replans, executed = triple[0], triple[1], expect_list(triple[2], name, what="the executed steps as a list")
    if answer is not None and not isinstance(answer, str) or not isinstance(replans, int):
        raise GradingError(f"{name}: return (answer: str or None, re-plans: int, ...), got ({describe(answer)}, "
                           f"{describe(replans)}, ...).")  # fmt: skip
    for step in executed:
        if not isinstance(step, dict) or set(step) != {"subject", "relation", "expect", "observed"}:
            raise GradingError(f"{name}: each executed step should be a dict with keys subject, relation, expect and "
                               f"observed, got {describe(step)}.")  # fmt: skip
    return answer, replans, executed


@graded("execute_plan")
def check_execute_plan(fn) -> None:
    cases = _plan_cases()
    for what, plan, beliefs, current in cases:
        expected = _plan_run(execute_plan, plan, beliefs, current, "reference")
        out, asked = _plan_run(fn, plan, beliefs, current, "execute_plan")
        result = _read_plan_result(out, "execute_plan")
        if (result, asked) == expected:
            continue
        for mistake, message in PLAN_MISTAKES:
            if (result, asked) == _plan_run(mistake, plan, beliefs, current, "hint"):
                raise GradingError(f"execute_plan ({what}): {message}")
        (answer, replans, executed), (want_answer, want_replans, want_executed) = result, expected[0]
        for i, (mine, want) in enumerate(zip(executed, want_executed, strict=False)):
            if mine != want:
                raise GradingError(f"execute_plan ({what}): executed step {i} is {mine}, expected {want}."[:400])
        raise GradingError(f"execute_plan ({what}): returned answer {answer!r} after {replans} re-plans and "
                           f"{len(executed)} steps, {len(asked)} calls to believe; expected {want_answer!r}, "
                           f"{want_replans}, {len(want_executed)} steps, {len(expected[1])} calls.")  # fmt: skip
    print(f"✓ execute_plan: passed {len(cases)} plans in worlds you have not seen.")


# --- Exercise 3: a write policy that deduplicates, overwrites and forgets ---------------------------------------


def write_policy(store: MemoryStore, step: int, task: Task, answer: str, correct: bool, confidence: float) -> None:
    same_key = [m for m in store.all() if m.kind == "experience" and m.key == task.key]
    if not correct:
        stale = [m.id for m in same_key if m.answer == answer]
        if stale:
            store.add_many([], delete_ids=stale)
    elif not same_key:
        store.add(step, task.key, answer, True)
    elif any(m.answer != answer for m in same_key):
        store.add_many([(step, task.key, answer, True, "experience")], delete_ids=[m.id for m in same_key])


class _RecordingStore(MemoryStore):
    """A MemoryStore that logs every transaction that changed something."""

    def __init__(self):
        super().__init__()
        self.transactions = []

    def add_many(self, rows, delete_ids=()):
        rows, delete_ids = list(rows), list(delete_ids)
        if rows or delete_ids:
            self.transactions.append((len(rows), len(delete_ids)))
        return super().add_many(rows, delete_ids)


def _start_store() -> _RecordingStore:
    store = _RecordingStore()
    store.add_many([(0, "capital: note", "Vos -> Ra | Kel -> Tumuki", True, "note"),
                    (0, "language: Vos", "Oskan", True, "note"),  # a note whose key is also an experience's key
                    (0, "capital: Kel", "Tumuki", True, "experience"),
                    (0, "capital: Kel", "Tumuki", True, "experience")])  # two copies, from an earlier policy  # fmt: skip
    store.transactions.clear()
    return store


def _write_events(seed: int) -> list[tuple]:
    """Experiences from a world that changes at step 12: some keys get a new right answer."""
    rng = random.Random(seed)
    truth = {("capital", "Kel"): "Tumuki", ("capital", "Vos"): "Ra", ("language", "Vos"): "Oskan",
             ("language", "Brelos"): "Trevic", ("employer", "Xo"): "Stava"}  # fmt: skip
    old = dict(truth)
    events = []
    for step in range(28):
        if step == 12:
            for key in rng.sample(sorted(truth), 3):
                truth[key] = truth[key] + "ia"
        label, query = rng.choice(sorted(truth))
        right = truth[label, query]
        answer = rng.choice([right, right, old[label, query], "Zorb"])  # right, stale or plain wrong
        events.append((step, Task(label, query, right), answer, answer == right, round(rng.random(), 2)))
    return events


def _replay(policy: Callable, events: list[tuple], name: str) -> tuple[list[tuple], list[tuple]]:
    store = _start_store()
    for step, task, answer, correct, confidence in events:
        call(policy, (store, step, task, answer, correct, confidence), name, mutable=(0,))
    return [(m.step, m.key, m.answer, m.correct, m.kind) for m in store.all()], store.transactions


def _write_variant(dedup=True, overwrite=True, forget="same", notes=False, flag=True, one_transaction=True) -> Callable:
    def policy(store, step, task, answer, correct, confidence):
        same_key = [m for m in store.all() if (notes or m.kind == "experience") and m.key == task.key]
        if not correct:
            stale = [m.id for m in same_key if forget == "all" or (forget == "same" and m.answer == answer)]
            if stale:
                store.add_many([], delete_ids=stale)
        elif not same_key or not dedup:
            store.add(step, task.key, answer, True if flag else None)
        elif overwrite and any(m.answer != answer for m in same_key):
            if one_transaction:
                store.add_many([(step, task.key, answer, True, "experience")], delete_ids=[m.id for m in same_key])
            else:
                store.add_many([], delete_ids=[m.id for m in same_key])
                store.add(step, task.key, answer, True)

    return policy


WRITE_MISTAKES = [
    (lambda s, st, t, a, c, p: c and s.add(st, t.key, a, True), "don't add a copy of a key that is already in memory "
                                                                 "with the same answer."),  # fmt: skip
    (_write_variant(dedup=False), "don't add a copy of a key that is already in memory with the same answer."),
    (_write_variant(overwrite=False), "when the key is in memory with a different answer, replace it: the "
                                      "environment just said the new answer is right (the world changed)."),  # fmt: skip
    (_write_variant(forget="none"), "when an answer is marked wrong, delete the memory of that key that gives this "
                                    "same answer: it is stale."),  # fmt: skip
    (_write_variant(forget="all"), "on a failure, delete only the memory whose answer was just marked wrong, not "
                                   "every memory of the key."),  # fmt: skip
    (_write_variant(notes=True), "notes (kind 'note') are not experiences: never count, replace or delete them."),
    (_write_variant(flag=False), "store the feedback with the experience: correct=True."),
    (_write_variant(one_transaction=False), "replace in one transaction, store.add_many([new row], delete_ids=[...]), "
                                            "so that the memory never lacks the key half-way."),  # fmt: skip
]


@graded("write_policy")
def check_write_policy(fn) -> None:
    """Replay hidden experiences into a store that already holds notes and duplicates; compare what is stored."""
    for seed in range(4):
        events = _write_events(seed)
        expected = _replay(write_policy, events, "reference")
        out = _replay(fn, events, "write_policy")
        if out == expected:
            continue
        for policy, message in WRITE_MISTAKES:
            if out == _replay(policy, events, "hint"):
                raise GradingError(f"write_policy: {message}")
        (rows, transactions), (want_rows, want_transactions) = out, expected
        if rows == want_rows:
            raise GradingError(f"write_policy stores the right memories, but in {len(transactions)} transactions where "
                               f"{len(want_transactions)} suffice: one add_many call per experience at most.")  # fmt: skip
        raise GradingError(f"write_policy left {len(rows)} memories where {len(want_rows)} were expected "
                           f"(step, key, answer, correct, kind): yours {rows[:3]}..., expected {want_rows[:3]}..."[:400])  # fmt: skip
    print("✓ write_policy: passed 4 replays of 28 experiences in a world that changes.")


# --- Exercise 4: tool selection learned from a usage log ---------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25_scores(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    n, avgdl = len(docs), sum(len(d) for d in docs) / len(docs)
    counts, scores = [Counter(d) for d in docs], [0.0] * len(docs)
    for word in dict.fromkeys(query):
        df = sum(word in c for c in counts)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, c in enumerate(counts):
            scores[i] += idf * c[word] * (k1 + 1) / (c[word] + k1 * (1 - b + b * len(docs[i]) / avgdl))
    return scores


def select_tools(question: str, tools: list[dict], usage: list[tuple[str, str]], k: int) -> list[str]:
    asked = defaultdict(list)
    for past_question, name in usage:
        asked[name] += words(past_question)
    docs = [words(t["name"].replace("_", " ") + " " + t["description"]) + asked[t["name"]] for t in tools]
    scores = bm25_scores(words(question), docs)
    return [tools[i]["name"] for i in sorted(range(len(tools)), key=lambda i: -scores[i])[:k]]


@cache
def held_out_questions(seed: int = 1) -> tuple[tuple[str, str], ...]:
    """Questions of the toolbox's kinds that the student never sees: other wordings, other entities."""
    from utils.tinyworld.world import load_world

    world, rng = load_world(), random.Random(seed)
    fill = {"person": list(world.people), "city": list(world.cities), "country": list(world.countries),
            "org": list(world.organisations)}  # fmt: skip
    questions = []
    for name, templates in json.loads(HELD_OUT_FILE.read_text()).items():
        for template in templates:
            questions.append((template.format(**{kind: rng.choice(names) for kind, names in fill.items()}), name))
    return tuple(questions)


def _selections(fn: Callable, questions, tools: list[dict], usage: list, k: int) -> list[list[str]]:
    names, want = [t["name"] for t in tools], min(k, len(tools))
    picks = []
    for question, _ in questions:
        out = expect_list(call(fn, (question, tools, usage, k), "select_tools"), "select_tools", what="a list of tool names")
        if not all(isinstance(x, str) for x in out):
            raise GradingError(f"select_tools should return tool names (str), got {describe(out)}.")
        if len(out) != want or len(set(out)) != want:
            raise GradingError(f"select_tools should return {want} distinct tool names (k={k}, {len(tools)} tools), "
                               f"got {out!r}."[:300])  # fmt: skip
        unknown = [x for x in out if x not in names]
        if unknown:
            raise GradingError(f"select_tools returned names that are not in the toolbox it was given: {unknown[:3]!r} "
                               "(the usage log may mention tools that are not offered).")  # fmt: skip
        picks.append(out)
    return picks


@graded("select_tools")
def check_select_tools(fn, recall_bar: float = 0.9, first_bar: float = 0.75, log_bar: float = 0.8) -> float:
    """Behavioural check on held-out questions: k distinct offered names, the right tool among them and first."""
    from utils.tinyworld.world import load_world

    tools, usage = toolbox(load_world())
    questions = held_out_questions()
    picks = _selections(fn, questions, tools, usage, 3)
    recall = sum(right in p for p, (_, right) in zip(picks, questions, strict=True)) / len(questions)
    first = sum(p[0] == right for p, (_, right) in zip(picks, questions, strict=True)) / len(questions)
    if len({p[0] for p in picks}) == 1:
        raise GradingError("select_tools returns the same first tool for every question: score the tools against it.")
    if recall < recall_bar:
        raise GradingError(f"select_tools: on questions you have not seen, the right tool is among your 3 for "
                           f"{recall:.0%} of them; the bar is {recall_bar:.0%}. Score each tool's name, description "
                           "and the past questions it answered against the question; don't memorise questions.")  # fmt: skip
    if first < first_bar:
        raise GradingError(f"select_tools: the right tool comes first for only {first:.0%} of unseen questions (bar "
                           f"{first_bar:.0%}): return the names most relevant first.")  # fmt: skip
    rng = random.Random(2)
    offered = rng.sample(tools, 8)  # a smaller toolbox: the usage log still mentions all 32 tools
    subset = [q for q in questions if q[1] in {t["name"] for t in offered}]
    for k in (1, 5):
        picks = _selections(fn, subset, offered, usage, k)
        hits = sum(right in p for p, (_, right) in zip(picks, subset, strict=True)) / len(subset)
        if hits < recall_bar - (0.2 if k == 1 else 0):
            raise GradingError(f"select_tools with k={k} among {len(offered)} offered tools finds the right one for "
                               f"{hits:.0%} of unseen questions: use k and the tools you are given.")  # fmt: skip
    _selections(fn, subset[:2], offered[:2], usage, 3)  # k larger than the toolbox: every tool, once
    anonymous = [{**t, "name": f"tool_{i:02d}", "description": ""} for i, t in enumerate(tools)]
    renamed = {t["name"]: a["name"] for t, a in zip(tools, anonymous, strict=True)}
    hidden = [(q, renamed[right]) for q, right in questions]
    picks = _selections(fn, hidden, anonymous, [(q, renamed[name]) for q, name in usage], 3)
    from_log = sum(right in p for p, (_, right) in zip(picks, hidden, strict=True)) / len(hidden)
    if from_log < log_bar:
        raise GradingError(f"select_tools: with the tools' names and descriptions hidden, only the usage log tells them "
                           f"apart, and your 3 hold the right tool for {from_log:.0%} of unseen questions (bar "
                           f"{log_bar:.0%}): score each tool by the past questions it answered too.")  # fmt: skip
    print(f"✓ select_tools: on {len(questions)} questions you have not seen, the right tool is among your 3 for "
          f"{recall:.0%} of them and first for {first:.0%}.")  # fmt: skip
    return recall


# --- The study: a report with intervals --------------------------------------------------------------------


@graded("run_study")
def check_agent_study(fn, min_items: int = 30) -> dict:
    """Check a study's report and print it: each condition's rate and its difference from the control, with 95%
    intervals (paired over the same items), overall and within each subset of items."""
    study = call(fn, (), "run_study")
    if not isinstance(study, dict) or not {"question", "control", "conditions"} <= set(study):
        raise GradingError(f"run_study should return a dict with keys 'question', 'control', 'conditions' (and "
                           f"optionally 'subsets'), got {describe(study)}.")  # fmt: skip
    question, control, conditions = study["question"], study["control"], study["conditions"]
    if not isinstance(question, str) or len(question.split()) < 4:
        raise GradingError("run_study: state the question the study answers, as a sentence, in study['question'].")
    if not isinstance(conditions, dict) or len(conditions) < 2 or control not in conditions:
        raise GradingError(f"run_study: 'conditions' should map at least two names to outcomes, one of them the "
                           f"control {control!r}; got {describe(conditions)}.")  # fmt: skip
    outcomes = {}
    for name, values in conditions.items():
        values = expect_list(values.tolist() if hasattr(values, "tolist") else values, "run_study",
                             what=f"a list of 0/1 outcomes for {name!r}")  # numpy, pandas and torch welcome
        if not all(isinstance(v, bool | int) and v in (0, 1) for v in values):
            raise GradingError(f"run_study: the outcomes of {name!r} should be True/False (or 1/0), one per item.")
        outcomes[name] = [bool(v) for v in values]
    n = len(outcomes[control])
    if any(len(v) != n for v in outcomes.values()) or n < min_items:
        raise GradingError(f"run_study: every condition needs one outcome per item, the same {min_items}+ items in "
                           f"the same order (paired); got lengths {[len(v) for v in outcomes.values()]}.")  # fmt: skip
    subsets = {"all items": [True] * n}
    for name, mask in study.get("subsets", {}).items():
        mask = expect_list(mask, "run_study", length=n, what=f"a list of booleans for the subset {name!r}")
        subsets[name] = [bool(m) for m in mask]
    print(f"Question: {question}")
    for subset, mask in subsets.items():
        print(f"  {subset}:")
        base = [o for o, m in zip(outcomes[control], mask, strict=True) if m]
        for name, values in outcomes.items():
            kept = [o for o, m in zip(values, mask, strict=True) if m]
            versus = "" if name == control or len(kept) < 2 else f"   vs {control}: {fmt_difference(kept, base)}"
            print(f"    {name:28} {fmt_rate(kept) if kept else 'no items'}{versus}")
    print("✓ run_study: a paired comparison with a control, reported with 95% intervals.")
    return {**study, "conditions": outcomes, "subsets": subsets}
