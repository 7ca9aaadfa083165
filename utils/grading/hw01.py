"""Graders for homework 01 (agents): an agent loop that recovers from tool errors, re-planning, a write policy
that deduplicates, overwrites and forgets, tool selection from descriptions and a usage log, and a study's report.

Every scenario is drawn at run time with Hypothesis (made-up tool, person and place names, scripted policies,
tools that time out or fail, worlds that changed, replays of experiences, toolboxes and questions), with the
statements' edge cases as explicit examples: nothing a student could look up in data/ or memorise by name.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hypothesis import strategies as st

from utils.agents import MemoryStore, Task
from utils.grading.core import GradingError, call, describe, expect_list, graded, holds, show
from utils.stats import fmt_difference, fmt_rate

# --- made-up words: every name a check uses is drawn --------------------------------------------------------

SYLLABLES = ("ka", "lo", "mi", "ru", "ze", "ta", "vo", "ni", "sa", "pe", "do", "gu", "fi", "be", "xo", "ly", "tre",
             "zan", "mor", "qui")  # fmt: skip


@functools.cache
def made_up(min_syllables: int = 2, max_syllables: int = 3) -> st.SearchStrategy[str]:
    """A made-up lowercase word of min_syllables to max_syllables syllables (one draw: fast, shrinks to 'kaka')."""
    return st.sampled_from(["".join(w) for n in range(min_syllables, max_syllables + 1)
                            for w in itertools.product(SYLLABLES, repeat=n)])  # fmt: skip


def names(min_size: int, max_size: int, capital: bool = True) -> st.SearchStrategy[list[str]]:
    """Distinct made-up names (capitalised: people, places, answers)."""
    word = made_up().map(str.capitalize) if capital else made_up()
    return st.lists(word, min_size=min_size, max_size=max_size, unique=True)


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


class ReadTimeout(TimeoutError):
    """A network library's timeout: a subclass of TimeoutError, whose message does not say 'time'."""


# what a tool does at an invocation, when it does not answer
FAILURES = {"timeout": lambda name: TimeoutError(f"{name} did not answer in time"),
            "read timeout": lambda name: ReadTimeout("no bytes received before the deadline"),
            "no entry": lambda name: ValueError("no entry for this argument"),
            "missing key": lambda name: KeyError(name),
            "connection reset": lambda name: ConnectionError("connection reset by peer"),  # an OSError, no timeout
            "lock timed out": lambda name: RuntimeError("lock acquisition timed out")}  # says 'timed out', no timeout  # fmt: skip
# what a tool returns when it answers: str(result) is the observation
RESULTS = {"reversed": lambda a: a[::-1].title(), "length": len, "None": lambda a: None, "empty": lambda a: "",
           "words": str.split, "echo": lambda a: f"{a} (cached)"}  # fmt: skip


@dataclass(frozen=True)
class ToolSpec:
    """A tool of a drawn episode: at its i-th invocation it does script[i] (answers after the script runs out)."""

    name: str
    returns: str  # a key of RESULTS
    script: tuple[str, ...] = ()  # keys of FAILURES, or "ok"

    def __repr__(self) -> str:
        then = f"{', '.join(self.script)}, then " if self.script else ""
        return f"{self.name}: {then}returns {self.returns}"


@dataclass(frozen=True)
class ScriptedPolicy:
    """Plays actions[i] at step i (the last one forever), or on_error right after an error observation; "{last}"
    in an action becomes the content of the last message."""

    actions: tuple[str, ...]
    on_error: str | None = None

    def __call__(self, messages) -> str:
        try:
            last, played = messages[-1], sum(m["role"] == "assistant" for m in messages)
            role, content = last["role"], str(last["content"])
        except Exception:  # noqa: BLE001 - a loop that hands over something else: its transcript will differ
            role, content, played = "", "", 0
        action = self.actions[min(played, len(self.actions) - 1)]
        if self.on_error is not None and role == "tool" and content.startswith("error"):
            action = self.on_error
        return action.replace("{last}", content[:80])  # capped: a loop that feeds it back cannot grow it forever

    def __repr__(self) -> str:
        after = f", after an error {self.on_error!r}" if self.on_error is not None else ""
        last = " ({last}: the last message's content)" if "{last}" in repr(self.actions) + str(self.on_error) else ""
        return f"policy playing {list(self.actions)!r}{after}{last}"


class _Tools:
    """Fresh tools for one run of a drawn episode, logging every invocation (name, argument)."""

    def __init__(self, specs: tuple[ToolSpec, ...]):
        self.log, self.scripts = [], {spec.name: list(spec.script) for spec in specs}
        self.box = {spec.name: self._make(spec) for spec in specs}

    def _make(self, spec: ToolSpec) -> Callable:
        def tool(argument):
            self.log.append((spec.name, argument))
            script = self.scripts[spec.name]
            outcome = script.pop(0) if script else "ok"
            if outcome != "ok":
                raise FAILURES[outcome](spec.name)
            return RESULTS[spec.returns](argument)

        return tool


def _episode(fn: Callable, args: tuple, name: str) -> tuple:
    policy, question, specs, max_steps, max_retries = args
    tools = _Tools(specs)
    return call(fn, (policy, question, tools.box, max_steps, max_retries), name), tools.log


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
                   extra_step=False, final=str.strip, reported=lambda tries: tries, find=dict.get,
                   allowed=lambda max_retries: max_retries) -> Callable:  # fmt: skip
    """Known mistakes: which errors are retried, what a retry costs, how long the budget lasts, how a final answer
    and a tool's name are read."""

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
                return final(action), messages
            name, argument = request
            tool = find(tools, name)
            if tool is None:
                messages.append({"role": "tool", "content": f"error: unknown tool {name!r}"})
                continue
            left = budget if shared_budget else [allowed(max_retries)]
            tries = 0
            while True:
                tries += 1
                try:
                    observation = str(tool(argument))
                    break
                except Exception as error:  # noqa: BLE001
                    if not retry(error) or left[0] == 0:
                        observation = (f"error: {name} timed out {reported(tries)} times"
                                       if isinstance(error, TimeoutError) else f"error: {error}")  # fmt: skip
                        break
                    left[0] -= 1
                    if retries_cost_steps:
                        messages += [{"role": "tool", "content": f"error: {error}"}, {"role": "assistant", "content": action}]
                        steps += 1
            messages.append({"role": "tool", "content": observation})
        return None, messages

    return loop


def _any_case(tools: dict, name: str):
    return next((tool for key, tool in tools.items() if key.lower() == name.lower()), None)


AGENT_MISTAKES = [  # the most specific first: a hint is the first whose transcript matches
    (_agent_variant(retry=lambda e: type(e) is TimeoutError), "a subclass of TimeoutError (a library's ReadTimeout) "
                                                              "is a timeout too: catch it with `except TimeoutError`."),  # fmt: skip
    (_agent_variant(retry=lambda e: "time" in str(e).lower()), "tell a timeout by its type (`except TimeoutError`), "
                                                               "not by its message."),  # fmt: skip
    (_agent_variant(retry=lambda e: isinstance(e, OSError)), "retry only a TimeoutError: a ConnectionError is an "
                                                             "OSError but no timeout, so it goes back to the model."),  # fmt: skip
    (_agent_variant(retry=lambda e: False), "retry a tool that raises TimeoutError, up to max_retries more times, "
                                            "before you report the error."),  # fmt: skip
    (_agent_variant(retry=lambda e: True), "retry only a TimeoutError: any other error would happen again, so it "
                                           "goes back to the model at once."),  # fmt: skip
    (_agent_variant(allowed=lambda max_retries: 2), "retry up to max_retries times, the argument you were given, "
                                                    "not a number of your own."),  # fmt: skip
    (_agent_variant(retries_cost_steps=True), "a retry is part of the same step: it adds no message and spends no "
                                              "step of the budget."),  # fmt: skip
    (_agent_variant(shared_budget=True), "the retry budget is per tool call: every new call may retry max_retries times."),
    (_agent_variant(reported=lambda tries: tries - 1), "after the last timeout, report the number of tries, "
                                                       "1 + max_retries, not the number of retries."),  # fmt: skip
    (_agent_variant(extra_step=True), "stop after max_steps actions: the budget counts the policy's actions."),
    (_agent_variant(final=lambda a: a), "return the final answer stripped of surrounding whitespace."),
    (_agent_variant(final=lambda a: a.strip() or None), "an action that parse_call reads as no call is the final "
                                                        "answer, even when it is empty: return '' then, not None."),  # fmt: skip
    (_agent_variant(find=_any_case), "a tool name matches exactly, case included: a call to 'Zorp' when the tool is "
                                     "'zorp' is a call to an unknown tool."),  # fmt: skip
]


def _known_mistake(mistakes: list, run: Callable, args: tuple, out) -> str | None:
    """The hint of the first known mistake whose run on args gives out (a mistake that crashes spots nothing)."""
    for mistake, message in mistakes:
        try:
            if run(mistake, args, "hint") == out:
                return message
        except GradingError:
            continue
    return None


CACHED = "does it cache results (by sizes, by names) or ignore part of its input? It must depend on all its inputs."


class _Earlier:
    """The expected outputs of the inputs checked so far: a wrong output equal to one of them comes from a cache
    (keyed on sizes, say) or from ignoring part of the input; so does a right output given without calling the tools
    the input hands over."""

    def __init__(self, name: str):
        self.name, self.seen = name, []

    def passed(self, expected) -> None:
        self.seen.append(expected)

    def stale(self, out, expected, calls: list, want_calls: list) -> None:
        if any(out == e for e in self.seen if e != expected):
            raise GradingError(f"{self.name} returned what an earlier, different input expects: {CACHED}")
        if out == expected and want_calls and not calls:
            raise GradingError(f"{self.name} returned the right result without calling the functions it was given: "
                               f"{CACHED}")  # fmt: skip


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


TOOL_NAMES = st.one_of(made_up(), st.tuples(made_up(1, 2), made_up(1, 2)).map("_".join))


@st.composite
def _action(draw, tools: list[str]) -> str:
    """One action of a scripted policy: a call (known tool, unknown tool, another case), a malformed call, or a
    final answer, with whitespace around it."""
    pad = st.sampled_from(["", " ", "\n", "  \n "])
    name = draw(st.sampled_from(tools))
    name = draw(st.sampled_from([name] * 6 + [name.capitalize(), draw(made_up())]))  # mostly a tool it was given
    argument = draw(st.one_of(made_up(1, 2), st.just(""), st.just("{last}"), st.integers(0, 99).map(str),
                              made_up(1, 2).map(lambda a: f" {a} "), made_up(1, 2).map(lambda a: f'"{a}"')))  # fmt: skip
    kind = draw(st.sampled_from(["call", "call", "call", "json", "malformed", "malformed", "answer", "answer"]))
    if kind == "call":
        return f"{draw(pad)}<|call|>{draw(st.sampled_from(['', ' ']))}{name}({argument}){draw(pad)}"
    if kind == "json":
        return f'<tool_call>{{"name": "{name}", "arguments": {{"x": "{argument.replace("{last}", "")}"}}}}</tool_call>'
    if kind == "malformed":
        return draw(st.sampled_from([f"<|call|>{name}({argument}", f"<|call|>{name} {argument}",
                                     '<tool_call>{"name": }</tool_call>']))  # fmt: skip
    return draw(pad) + draw(st.sampled_from(["", "", "Done.", "It is {last}.", "{last}", "I could not do it."])) + draw(pad)


@st.composite
def _episodes(draw) -> tuple:
    """(policy, question, tools, max_steps, max_retries): tools that time out (a subclass of TimeoutError among
    them) or fail for good, and a policy that calls them, other tools and malformed calls."""
    tool_names = draw(st.lists(TOOL_NAMES, min_size=1, max_size=3, unique=True))
    outcome = st.sampled_from(["ok", "timeout", "timeout", "read timeout", *FAILURES])  # half of them timeouts
    specs = tuple(ToolSpec(name, draw(st.sampled_from(list(RESULTS))), tuple(draw(st.lists(outcome, max_size=5))))
                  for name in tool_names)  # fmt: skip
    actions = tuple(draw(st.lists(_action(tool_names), min_size=1, max_size=4)))
    on_error = draw(st.none() | _action(tool_names))
    question = " ".join(draw(st.lists(made_up(), min_size=1, max_size=3))).capitalize() + "?"
    max_steps = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 0]))  # 0 now and then, not as often as integers(0, 6)
    return ScriptedPolicy(actions, on_error), question, specs, max_steps, draw(st.integers(0, 3))


AGENT_EXAMPLES = [
    (ScriptedPolicy(("  Seven o'clock. \n",)), "When?", (ToolSpec("clock", "echo"),), 6, 2),  # strip the answer
    (ScriptedPolicy((" \n",)), "Anything?", (ToolSpec("clock", "echo"),), 2, 1),  # an empty final answer: ''
    (ScriptedPolicy(("<|call|>clock(Vos)", "It is {last}.")), "Time in Vos?", (ToolSpec("clock", "length"),), 6, 2),
    (ScriptedPolicy(("<|call|>clock(Ra)", "It is {last}."), "I failed."), "Time?",
     (ToolSpec("clock", "echo", ("timeout", "timeout")),), 6, 2),  # two timeouts, then it answers
    (ScriptedPolicy(("<|call|>clock(Ra)",), "<|call|>backup(Ra)"), "Time?",
     (ToolSpec("clock", "echo", ("timeout",) * 5), ToolSpec("backup", "reversed")), 6, 2),  # more than the retries
    (ScriptedPolicy(("<|call|>atlas(x)", "<|call|>atlas(y)", "{last}")), "Where?",
     (ToolSpec("atlas", "None", ("connection reset", "lock timed out")),), 6, 2),  # errors that are no timeout
    (ScriptedPolicy(("<|call|>atlas(kel)", "{last}"), "<|call|>backup(kel)"), "Where?",
     (ToolSpec("atlas", "reversed", ("read timeout", "timeout", "read timeout")), ToolSpec("backup", "echo")), 4, 3),
    (ScriptedPolicy(("<|call|>atlas(kel)", "{last}"), "Sorry."), "Where?", (ToolSpec("atlas", "reversed", ("timeout",)),), 4, 0),
    (ScriptedPolicy(("<|call|>clock(A)", "<|call|>clock(B)", "Done.")), "Times?",
     (ToolSpec("clock", "words", ("timeout", "timeout", "ok", "timeout", "timeout")),), 6, 2),  # budget per call
    (ScriptedPolicy(("<|call|>Clock(Vos)", "<|call|>weather(Vos)", "{last}")), "Warm?", (ToolSpec("clock", "echo"),), 6, 2),
    (ScriptedPolicy(("<|call|>clock(Vos", '<tool_call>{"name": "clock", "arguments": {"city": "Vos"}}</tool_call>',
                     "{last}")), "Time?", (ToolSpec("clock", "empty"),), 6, 2),  # malformed, then the JSON dialect
    (ScriptedPolicy(("<|call|>clock(1)",)), "Loop", (ToolSpec("clock", "length"),), 3, 2),  # never stops
    (ScriptedPolicy(("<|call|>abacus(1 2)", "Three.")), "Sum?", (ToolSpec("abacus", "words"),), 1, 2),
    (ScriptedPolicy(("Fine.",)), "Hi", (ToolSpec("clock", "echo"),), 0, 0),  # a budget of 0 steps: no action
    (ScriptedPolicy(("<|call|>clock( Vos )", '<|call|>clock("Vos")', "<|call|>clock()", "{last}")), "Time?",
     (ToolSpec("clock", "echo"),), 6, 2),  # the argument exactly as written; the observation str(result), unstripped
    (ScriptedPolicy(("<|call|>atlas(Vos)", "It is {last}.")), "Where?", (ToolSpec("atlas", "None"),), 6, 2),  # 'None'
]


@graded("run_agent")
def check_run_agent(fn) -> None:
    earlier = _Earlier("run_agent")

    def one(args):
        (want_answer, want_messages), want_log = _episode(run_agent, args, "reference")
        out, log = _episode(fn, args, "run_agent")
        answer, messages = _read_episode(out, "run_agent")
        if (answer, messages, log) == (want_answer, want_messages, want_log):
            earlier.passed((answer, messages))
            return
        hint = _known_mistake(AGENT_MISTAKES, _episode, args, ((answer, messages), log))
        if hint:
            raise GradingError(f"run_agent: {hint}")
        earlier.stale((answer, messages), (want_answer, want_messages), log, want_log)
        raise GradingError(f"run_agent: {_first_difference(answer, messages, log, want_answer, want_messages, want_log)}.")

    tried = holds("run_agent", _episodes(), one, AGENT_EXAMPLES, max_examples=80, reference=run_agent)
    print(f"✓ run_agent: passed {tried} episodes drawn at random (scripted policies, tools that time out or fail, "
          "budgets of 0 to 6 steps and 0 to 3 retries), edge cases included.")  # fmt: skip


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


def _plan_variant(scope="all", propagate=True, rethink=True, stop=True, count_last=False, believe_all=False,
                  differs=lambda a, b: a != b, answer="observed", as_planned=False, list_failure=True,
                  count_failure=False, lookups=1) -> Callable:  # fmt: skip
    """Known mistakes: which steps are rewritten, what a surprise is and counts, what is returned."""

    def execute(plan, lookup, believe):
        steps = [dict(step) for step in plan]
        executed, replans = [], 0
        for i, step in enumerate(steps):
            for _ in range(lookups - 1):
                lookup(step["subject"], step["relation"])
            observed = lookup(step["subject"], step["relation"])
            if observed is not None or list_failure:
                executed.append({**(plan[i] if as_planned else step), "observed": observed})
            if observed is None and stop:
                return None, replans + count_failure, executed
            if differs(observed, step["expect"]) and (i + 1 < len(steps) or count_last):
                replans += 1
                renamed = {step["expect"]: observed}
                for later in steps[i + 1 : i + 2] if scope == "next" else steps[i + 1 :]:
                    if later["subject"] in renamed or believe_all:
                        later["subject"] = renamed.get(later["subject"], later["subject"])
                        expect = believe(later["subject"], later["relation"]) if rethink else later["expect"]
                        if expect != later["expect"] and propagate:
                            renamed[later["expect"]] = expect
                        later["expect"] = expect
        return executed[-1][answer], replans, executed

    return execute


def _lazy_replan(plan, lookup, believe):
    """Rewrites a step when it is reached, not at the surprise."""
    steps, renamed = [dict(step) for step in plan], {}
    executed, replans = [], 0
    for i, step in enumerate(steps):
        if step["subject"] in renamed:
            step["subject"] = renamed[step["subject"]]
            expect = believe(step["subject"], step["relation"])
            if expect != step["expect"]:
                renamed[step["expect"]] = expect
            step["expect"] = expect
        observed = lookup(step["subject"], step["relation"])
        executed.append({**step, "observed": observed})
        if observed is None:
            return None, replans, executed
        if observed != step["expect"] and i + 1 < len(steps):
            replans += 1
            renamed[step["expect"]] = observed
    return executed[-1]["observed"], replans, executed


def _loose(a, b) -> bool:
    return not (isinstance(a, str) and isinstance(b, str) and a.strip().lower() == b.strip().lower())


PLAN_MISTAKES = [
    (_plan_variant(propagate=False), "when a rewritten step's expectation changes, its old expectation is stale too: "
                                     "rewrite the later steps that use it (propagate the renaming)."),  # fmt: skip
    (_plan_variant(scope="next"), "rewrite every remaining step that uses the stale value, not only the next one."),
    (_plan_variant(rethink=False), "a rewritten step needs a new expectation: ask believe(new subject, relation)."),
    (_plan_variant(stop=False), "stop at the first lookup that returns None: the plan cannot go on."),
    (_plan_variant(count_last=True), "a surprise at the last step leaves nothing to re-plan: it is not a re-plan."),
    (_plan_variant(count_failure=True), "a lookup that returns None ends the plan: it is not a re-plan."),
    (_plan_variant(believe_all=True), "call believe only for the steps whose subject you rewrote (each call is a "
                                      "model call)."),  # fmt: skip
    (_lazy_replan, "rewrite the remaining steps at the surprise, all at once (asking believe then), not when each "
                   "step is reached: the check compares the calls to lookup and believe, in order."),  # fmt: skip
    (_plan_variant(differs=_loose), "compare the observation with the expectation exactly (==): values that differ "
                                    "only in case or spaces differ, so that is a surprise."),  # fmt: skip
    (_plan_variant(answer="expect"), "the answer is the last observation (what lookup returned), not the plan's "
                                     "expectation."),  # fmt: skip
    (_plan_variant(as_planned=True), "list each step as it was executed, after rewriting (its new subject and "
                                     "expectation), not as the plan first wrote it."),  # fmt: skip
    (_plan_variant(list_failure=False), "the step whose lookup returned None was executed too: list it in "
                                        "`executed` with observed None."),  # fmt: skip
    (_plan_variant(lookups=2), "call lookup once per step: the check compares the calls to lookup and believe."),
]


def _plan_run(fn: Callable, args: tuple, name: str):
    """Run fn on a drawn plan; lookup and believe read the drawn tables and log every call, in order."""
    plan, current, beliefs = args
    calls = []

    def lookup(subject, relation):
        calls.append(("lookup", subject, relation))
        try:
            found = current.get((subject, relation))
        except TypeError:  # an unhashable subject
            return None
        return None if found is None else "".join(list(found))  # an equal string, not the plan's own object

    def believe(subject, relation):
        calls.append(("believe", subject, relation))
        try:
            return "".join(list(beliefs.get((subject, relation), "?")))
        except TypeError:
            return "?"

    return call(fn, (plan, lookup, believe), name), calls


def _read_plan_result(out, name: str) -> tuple:
    triple = expect_list(out, name, what="a triple (answer, re-plans, executed steps)")
    if len(triple) != 3:
        raise GradingError(f"{name} should return (answer, number of re-plans, executed steps), got {len(triple)} items.")
    answer, replans, executed = triple[0], triple[1], expect_list(triple[2], name, what="the executed steps as a list")
    if answer is not None and not isinstance(answer, str) or not isinstance(replans, int) or isinstance(replans, bool):
        raise GradingError(f"{name}: return (answer: str or None, re-plans: int, ...), got ({describe(answer)}, "
                           f"{describe(replans)}, ...).")  # fmt: skip
    for step in executed:
        if not isinstance(step, dict) or set(step) != {"subject", "relation", "expect", "observed"}:
            raise GradingError(f"{name}: each executed step should be a dict with keys subject, relation, expect and "
                               f"observed, got {describe(step)}.")  # fmt: skip
    return answer, replans, executed


@st.composite
def _plans(draw) -> tuple:
    """(plan, directory, beliefs): a world of made-up names, the directory as it is now ({(subject, relation):
    object}, some subjects unknown) and a model's beliefs (right, outdated, in another case, invented or missing);
    a plan of 1 to 5 steps written from the beliefs, each step's subject the expectation of an earlier step (a
    chain, a branch) or a fresh subject."""
    entities = draw(names(3, 6))
    relations = draw(names(1, 3, capital=False))
    pairs = [(e, r) for e in entities for r in relations]
    current = {pair: draw(st.sampled_from(entities)) for pair in pairs if draw(st.integers(0, 5))}  # 1 in 6 unknown
    beliefs = {}
    for pair in pairs:
        kind, truth = draw(st.sampled_from(["right"] * 4 + ["outdated", "case", "invented", "none"])), current.get(pair)
        if kind == "right" and truth is not None:
            beliefs[pair] = truth
        elif kind == "outdated":
            beliefs[pair] = draw(st.sampled_from(entities))
        elif kind == "case" and truth is not None:
            beliefs[pair] = draw(st.sampled_from([truth.lower(), truth.upper(), f"{truth} "]))
        elif kind == "invented":
            beliefs[pair] = draw(made_up().map(str.capitalize))  # not in the directory: its lookups return None
    plan = []
    for i in range(draw(st.integers(1, 5))):
        source = draw(st.sampled_from(["previous"] * 3 + ["earlier", "fresh"])) if i else "fresh"
        subject = (draw(st.sampled_from(entities)) if source == "fresh" else plan[-1]["expect"] if source == "previous"
                   else plan[draw(st.integers(0, i - 1))]["expect"])  # fmt: skip
        relation = draw(st.sampled_from(relations))
        plan.append({"subject": subject, "relation": relation, "expect": beliefs.get((subject, relation), "?")})
    return plan, current, beliefs


def _step(subject, relation, expect) -> dict:
    return {"subject": subject, "relation": relation, "expect": expect}


PLAN_EXAMPLES = [
    ([_step("Xo", "employer", "Vorta"), _step("Vorta", "seat", "Kel"), _step("Vorta", "ceo", "Ana"),
      _step("Kel", "country", "Ru")],
     {("Xo", "employer"): "Stava", ("Stava", "seat"): "Kel", ("Stava", "ceo"): "Ana", ("Kel", "country"): "Ru"},
     {("Stava", "seat"): "Kel", ("Stava", "ceo"): "Ana"}),  # a branch: two steps use the stale value
    ([_step("Xo", "employer", "Vorta"), _step("Vorta", "seat", "Brelos"), _step("Brelos", "country", "Tumuki")],
     {("Xo", "employer"): "Stava", ("Stava", "seat"): "Kel", ("Kel", "country"): "Tumuki"},
     {("Stava", "seat"): "Kel", ("Kel", "country"): "Tumuki"}),  # the statement's example: one re-plan, propagated
    ([_step("Xo", "employer", "Vorta")], {("Xo", "employer"): "Stava"}, {}),  # a surprise at the last step
    ([_step("Xo", "employer", "Vorta"), _step("Vorta", "seat", "Kel"), _step("Kel", "country", "Ru")],
     {("Xo", "employer"): "Vorta", ("Kel", "country"): "Ru"}, {}),  # None half-way: the plan ends there
    ([_step("Zu", "employer", "Vorta"), _step("Kel", "country", "Tumuki")],
     {("Zu", "employer"): "Stava", ("Kel", "country"): "Tumuki"}, {}),  # a re-plan no later step uses
    ([_step("Xo", "employer", "vorta"), _step("vorta", "seat", "Kel")],
     {("Xo", "employer"): "Vorta", ("Vorta", "seat"): "Kel"}, {("Vorta", "seat"): "Kel"}),  # only the case differs
    ([_step("Xo", "employer", "Vorta"), _step("Vorta", "seat", "Kel"), _step("Kel", "country", "Ru"),
      _step("Ru", "language", "Oskan")],
     {("Xo", "employer"): "Vorta", ("Vorta", "seat"): "Brelos", ("Brelos", "country"): "Ru", ("Ru", "language"): "Oskan"},
     {("Brelos", "country"): "Ru"}),  # a new expectation equal to the old one: nothing to propagate
    ([_step("X", "r", "A"), _step("A", "r", "W"), _step("Z", "q", "F"), _step("W", "p", "H")],
     {("X", "r"): "B", ("B", "r"): "A", ("Z", "q"): "G", ("A", "p"): "H", ("B", "p"): "H"},
     {("B", "r"): "A", ("A", "p"): "H", ("B", "p"): "K"}),  # two surprises: each renames only its own stale value
    ([_step("X", "r", "Ka"), _step("Kaka", "q", "D")], {("X", "r"): "Lo", ("Kaka", "q"): "D"},
     {("Loka", "q"): "E"}),  # a subject that merely contains the stale value is not renamed
    ([_step("X", "r", "Vorta "), _step("Vorta ", "q", "Kel")], {("X", "r"): "Vorta", ("Vorta", "q"): "Kel"},
     {("Vorta", "q"): "Kel"}),  # a trailing space is a difference
]


@graded("execute_plan")
def check_execute_plan(fn) -> None:
    earlier = _Earlier("execute_plan")

    def one(args):
        expected = _plan_run(execute_plan, args, "reference")
        out, calls = _plan_run(fn, args, "execute_plan")
        result = _read_plan_result(out, "execute_plan")
        if (result, calls) == expected:
            earlier.passed(result)
            return
        hint = _known_mistake(PLAN_MISTAKES, _plan_run, args, (result, calls))
        if hint:
            raise GradingError(f"execute_plan: {hint}")
        earlier.stale(result, expected[0], calls, expected[1])
        (answer, replans, executed), ((want_answer, want_replans, want_executed), want_calls) = result, expected
        for i, (mine, want) in enumerate(zip(executed, want_executed, strict=False)):
            if mine != want:
                raise GradingError(f"execute_plan: executed step {i} is {mine}, expected {want}."[:400])
        if calls != want_calls:
            raise GradingError(f"execute_plan called lookup and believe as {show(calls, 150)}, expected "
                               f"{show(want_calls, 150)}.")  # fmt: skip
        raise GradingError(f"execute_plan returned answer {answer!r} after {replans} re-plans and {len(executed)} "
                           f"steps; expected {want_answer!r}, {want_replans}, {len(want_executed)} steps.")  # fmt: skip

    tried = holds("execute_plan", _plans(), one, PLAN_EXAMPLES, max_examples=80, reference=execute_plan)
    print(f"✓ execute_plan: passed {tried} plans in worlds drawn at random (chains, branches, surprises, unknown "
          "subjects), edge cases included.")  # fmt: skip


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
    """A MemoryStore that counts the transactions that changed something."""

    def __init__(self, rows=()):
        super().__init__()
        super().add_many(rows)  # what an earlier policy left: not a transaction of the student's
        self.transactions = 0

    def add_many(self, rows, delete_ids=()):
        rows, delete_ids = list(rows), list(delete_ids)
        self.transactions += bool(rows or delete_ids)
        return super().add_many(rows, delete_ids)


def replay(memories_before: list[tuple], experiences: list[tuple]) -> list[tuple]:
    """What the reference does: after each experience, (memories (step, key, answer, correct, kind), transactions)."""
    return _replay(write_policy, (memories_before, experiences), "reference")


def _replay(policy: Callable, args: tuple, name: str) -> list[tuple]:
    rows, experiences = args
    store, states = _RecordingStore(rows), []
    for step, label, query, right, answer, correct, confidence in experiences:
        store.transactions = 0
        call(policy, (store, step, Task(label, query, right), answer, correct, confidence), name, mutable=(0,))
        states.append(([(m.step, m.key, m.answer, m.correct, m.kind) for m in store.all()], store.transactions))
    return states


def _write_variant(dedup=True, overwrite=True, forget="same", notes=False, flag=True, one_transaction=True,
                   same_key=lambda a, b: a == b, same_answer=lambda a, b: a == b, collapse=False,
                   forgotten=lambda task, answer: answer) -> Callable:  # fmt: skip
    """Known mistakes: which memories count, which are replaced or deleted, and how."""

    def policy(store, step, task, answer, correct, confidence):
        mine = [m for m in store.all() if (notes or m.kind == "experience") and same_key(m.key, task.key)]
        if not correct:
            wrong = forgotten(task, answer)
            stale = [m.id for m in mine if forget == "all" or (forget == "same" and same_answer(m.answer, wrong))]
            if stale:
                store.add_many([], delete_ids=stale)
        elif not mine or not dedup:
            store.add(step, task.key, answer, True if flag else None)
        elif overwrite and (any(not same_answer(m.answer, answer) for m in mine) or (collapse and len(mine) > 1)):
            if one_transaction:
                store.add_many([(step, task.key, answer, True, "experience")], delete_ids=[m.id for m in mine])
            else:
                store.add_many([], delete_ids=[m.id for m in mine])
                store.add(step, task.key, answer, True)

    return policy


def _replace_the_others(store, step, task, answer, correct, confidence):
    """On a success, deletes the memories of the key with another answer, keeps those of this one, adds nothing."""
    same_key = [m for m in store.all() if m.kind == "experience" and m.key == task.key]
    if not correct:
        write_policy(store, step, task, answer, correct, confidence)
    elif not same_key:
        store.add(step, task.key, answer, True)
    elif any(m.answer != answer for m in same_key):
        store.add_many([], delete_ids=[m.id for m in same_key if m.answer != answer])


def _loosely(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


WRITE_MISTAKES = [  # the most specific first: a hint is the first whose replay matches
    (lambda s, st, t, a, c, p: p > 0.5 and write_policy(s, st, t, a, c, p), "confidence is ignored: follow the "
                                                                            "feedback `correct`, whatever the confidence."),  # fmt: skip
    (_write_variant(forget="none"), "when an answer is marked wrong, delete the memory of that key that gives this "
                                    "same answer: it is stale."),  # fmt: skip
    (_write_variant(forget="all"), "on a failure, delete only the memory whose answer was just marked wrong, not "
                                   "every memory of the key."),  # fmt: skip
    (_write_variant(forgotten=lambda task, answer: task.answer), "on a failure, delete the memories that hold "
                                                                 "`answer` (the one just marked wrong), not task.answer."),  # fmt: skip
    (lambda s, st, t, a, c, p: c and s.add(st, t.key, a, True), "don't add a copy of a key that is already in memory "
                                                                 "with the same answer."),  # fmt: skip
    (_write_variant(dedup=False), "don't add a copy of a key that is already in memory with the same answer."),
    (_write_variant(overwrite=False), "when the key is in memory with a different answer, replace it: the "
                                      "environment just said the new answer is right (the world changed)."),  # fmt: skip
    (_replace_the_others, "when the key is in memory with another answer, delete every experience of that key and "
                          "add the new one, in one add_many call."),  # fmt: skip
    (_write_variant(collapse=True), "a success whose answer every memory of the key already holds stores nothing and "
                                    "deletes nothing: copies an earlier policy left stay as they are."),  # fmt: skip
    (_write_variant(notes=True), "notes (kind 'note') are not experiences: never count, replace or delete them."),
    (_write_variant(same_key=_loosely), "a memory is of this key only if its key equals task.key exactly (case and "
                                        "spaces count)."),  # fmt: skip
    (_write_variant(same_answer=_loosely), "compare answers exactly (==): answers that differ only in case or spaces "
                                           "are different answers."),  # fmt: skip
    (_write_variant(flag=False), "store the feedback with the experience: correct=True."),
    (_write_variant(one_transaction=False), "replace in one transaction, store.add_many([new row], delete_ids=[...]), "
                                            "so that the memory never lacks the key half-way."),  # fmt: skip
]


@st.composite
def _replays(draw) -> tuple:
    """(memories before, experiences): a store an earlier policy left (notes, copies, keys and answers in another
    case), then 0 to 16 experiences (step, label, query, right answer, answer, correct, confidence) from a world
    whose right answers change half-way; answers are right, outdated, wrong, or right but in another case."""
    labels, queries = draw(names(1, 2, capital=False)), draw(names(1, 3))
    keys = [(label, query) for label in labels for query in queries]
    truth = dict(zip(keys, draw(st.lists(made_up().map(str.capitalize), min_size=len(keys), max_size=len(keys))),
                     strict=True))  # fmt: skip
    later = {key: draw(st.sampled_from([truth[key], truth[key] + "ia"])) for key in keys}  # the world changes
    pool = sorted({*truth.values(), *later.values()})

    def answers(right: str) -> st.SearchStrategy[str]:
        return st.sampled_from([right, right, *pool, right.lower(), right + " "])

    rows = []
    for _ in range(draw(st.integers(0, 6))):
        label, query = draw(st.sampled_from(keys))
        key = draw(st.sampled_from([f"{label}: {query}"] * 3 + [f"{label.capitalize()}: {query}", f"{label}: {query} "]))
        kind = draw(st.sampled_from(["experience", "experience", "note"]))
        feedback = draw(st.sampled_from([True, True, False, None])) if kind == "experience" else None
        rows.append((0, key, draw(answers(truth[label, query])), feedback, kind))  # an experience is its kind
    experiences, step = [], draw(st.integers(1, 50))
    n = draw(st.integers(0, 16))
    change = draw(st.integers(0, n))
    for i in range(n):
        label, query = draw(st.sampled_from(keys))
        right = (truth if i < change else later)[label, query]
        answer = draw(answers(right))
        correct = draw(st.sampled_from([answer == right] * 3 + [answer != right]))  # the feedback, even when wrong
        experiences.append((step, label, query, right, answer, correct, draw(st.sampled_from([0.05, 0.5, 0.95]))))
        step += draw(st.integers(1, 3))
    return rows, experiences


WRITE_EXAMPLES = [
    ([], []),  # nothing happens: nothing is stored
    ([(0, "capital: Kel", "Tumuki", None, "note")],  # a note is no experience of its key
     [(1, "capital", "Kel", "Tumuki", "Tumuki", True, 0.3), (2, "capital", "Kel", "Tumuki", "Tumuki", True, 0.9),
      (3, "capital", "Vos", "Ra", "Ra", True, 0.4)]),
    ([(0, "capital: Vos", "Ra", True, "experience")] * 2,  # copies an earlier policy left stay, until the world changes
     [(3, "capital", "Vos", "Ra", "Ra", True, 0.7), (4, "capital", "Vos", "Raia", "Raia", True, 0.8)]),
    ([(0, "language: Brelos", "Trevic", True, "experience"), (0, "language: Brelos", "Oskan", True, "experience"),
      (0, "language: Brelos", "Oskan", None, "note")],  # a failure deletes the experiences of that answer only
     [(5, "language", "Brelos", "Trevic", "Oskan", False, 0.7)]),
    ([(0, "Language: Brelos", "Trevic", True, "experience"), (0, "language: Brelos", "trevic", True, "experience")],
     [(6, "language", "Brelos", "Trevic", "Trevic", True, 0.6), (7, "language", "Brelos", "Trevic", "Trevic ", False, 0.9)]),
    ([(0, "capital: Vos", "Ra", True, "experience")] * 2,  # a failure with low confidence deletes both copies,
     [(3, "capital", "Vos", "Raia", "Ra", False, 0.1)]),  # in one transaction
    ([(0, "capital: Vos", "Ra", False, "experience")],  # an experience stored with correct=False is still one;
     [(3, "capital", "Vos", "Ra", "ra", True, 0.5)]),  # the answer given is stored (task.answer is ignored)
]  # fmt: skip


STATEFUL = ("write_policy left other memories when the same experiences were replayed again into the same store: "
            "does it keep state between calls (a set of keys, a counter)? Read what is stored from the store itself.")


@graded("write_policy")
def check_write_policy(fn) -> None:
    """Replay drawn experiences into a store that already holds notes and copies; compare what is stored."""

    def one(args):
        expected = _replay(write_policy, args, "reference")
        out = _replay(fn, args, "write_policy")
        if out == expected:
            return
        if _replay(fn, args, "write_policy") != out:
            raise GradingError(STATEFUL)
        hint = _known_mistake(WRITE_MISTAKES, _replay, args, out)
        if hint:
            raise GradingError(f"write_policy: {hint}")
        i, ((rows, transactions), (want_rows, want_transactions)) = next(
            (i, pair) for i, pair in enumerate(zip(out, expected, strict=True)) if pair[0] != pair[1])
        step, label, query, _, answer, correct, _ = args[1][i]
        after = f"after experience {i} (step {step}, key {label}: {query}, answer {answer!r}, correct={correct})"
        if rows == want_rows:
            raise GradingError(f"write_policy stores the right memories {after}, but in {transactions} transactions "
                               f"where {want_transactions} suffice{'s' if want_transactions == 1 else ''}: one "
                               "add_many call per experience at most.")  # fmt: skip
        raise GradingError(f"write_policy: {after}, the store holds {show(rows, 150)} (step, key, answer, correct, kind), "
                           f"expected {show(want_rows, 150)}.")  # fmt: skip

    if _replay(fn, WRITE_EXAMPLES[1], "write_policy") != _replay(fn, WRITE_EXAMPLES[1], "write_policy"):
        raise GradingError(STATEFUL)  # a fresh state (a set of keys it wrote) shows on the first replay repeated
    tried = holds("write_policy", _replays(), one, WRITE_EXAMPLES, max_examples=60, reference=replay)
    print(f"✓ write_policy: passed {tried} replays drawn at random, into stores that already held notes and copies, "
          "in worlds that change.")  # fmt: skip


# --- Exercise 4: tool selection from descriptions and a usage log ------------------------------------------


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


ASKING = ("please", "tell", "me", "now", "quickly", "so")  # a question's own words: in no description, no log


@st.composite
def _toolboxes(draw) -> tuple:
    """(question, tools, usage, k): 1 to 5 tools whose names say nothing (made-up codes); descriptions and past
    questions of made-up words, each tool its own. The question shares 3 words with one tool (in its description,
    in the past questions it answered, or both), sometimes 1 word with another, and none with the rest; the log
    sometimes holds a tool that is not offered, whose past question shares even more words with the question."""
    n = draw(st.integers(1, 5))
    k = draw(st.integers(0, n + 1))
    right = draw(st.integers(0, n - 1))
    evidence = draw(st.sampled_from(["description", "log", "both"]))
    second = draw(st.none() | st.sampled_from([i for i in range(n) if i != right] or [None]))
    style = draw(st.sampled_from(["plain", "Capitals", "punctuation;"]))
    unoffered = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))  # the words: drawn fast, not shrunk
    vocabulary = iter(dict.fromkeys(rng.choice(SYLLABLES) + rng.choice(SYLLABLES) + rng.choice(SYLLABLES)
                                    for _ in range(400)))  # fmt: skip
    tools, usage, asked = [], [], []
    for i in range(n):
        own = [next(vocabulary) for _ in range(8)]  # a tool's own words: 3 in its description, 5 in its log
        name = f"{rng.choice(['tool', 'fn', 'svc'])}_{next(vocabulary)}"
        tools.append({"name": name, "description": f"Return the {own[0]} {own[1]} of a {own[2]}."})
        logged = [f"What is the {own[3]} {own[4]} for {next(vocabulary).capitalize()}?", f"Which {own[5]} {own[6]} {own[7]} is it?"]
        kept = 2 if i == right and evidence != "description" else rng.choice([0, 1, 2])
        usage += [(past, name) for past in logged[:kept]]
        if i == right:
            asked += {"description": own[:3], "log": own[5:], "both": [own[0], own[1], own[7]]}[evidence]
        elif i == second:  # one word of its description or of a past question it answered
            asked.append(rng.choice(own[:3] + own[3:5] * (kept > 0) + own[5:] * (kept > 1)))
    if unoffered:  # a tool the log remembers but that is not offered: its past question matches best
        extra = next(vocabulary)
        usage.append((f"{' '.join(asked[:3])} {extra} for {next(vocabulary).capitalize()}?", f"tool_{next(vocabulary)}"))
        asked.append(extra)
    rng.shuffle(usage)
    asked += rng.sample(ASKING, rng.randint(1, 3))
    rng.shuffle(asked)
    if style == "Capitals":
        asked = [w.capitalize() if rng.random() < 0.7 else w.upper() for w in asked]
    elif style == "punctuation;":
        asked = [w + rng.choice([",", ";", ":", "!", "..."]) for w in asked]
    return " ".join(asked).capitalize() + "?", tools, usage, k


def _shared(question: str, tools: list[dict], usage: list) -> list[int]:
    """How many of the question's words each tool's description and past questions hold."""
    asked = set(words(question))
    past = defaultdict(set)
    for q, name in usage:
        past[name] |= set(words(q))
    return [len(asked & (set(words(t["description"])) | past[t["name"]])) for t in tools]


def _expected_order(question: str, tools: list[dict], usage: list) -> list[str]:
    """The tools the check can grade: the one sharing the most words (3), then the one sharing 1 if there is one."""
    shared = _shared(question, tools, usage)
    ranked = sorted(range(len(tools)), key=lambda i: -shared[i])
    graded_tools = [tools[ranked[0]]["name"]]
    if len(tools) > 1 and shared[ranked[1]] == 1 and (len(tools) < 3 or shared[ranked[2]] == 0):
        graded_tools.append(tools[ranked[1]]["name"])
    if shared[ranked[0]] < 3 or (len(tools) > 1 and shared[ranked[1]] > 1):
        raise ValueError(f"grader for select_tools: no clear first tool, shared words {shared}")
    return graded_tools


def _cleaned(question: str, tools: list[dict], usage: list, k: int) -> tuple:
    """The same input in lowercase, without punctuation: what a selector that splits on spaces can read."""
    clean = [{**t, "description": " ".join(words(t["description"]))} for t in tools]
    return " ".join(words(question)), clean, [(" ".join(words(q)), name) for q, name in usage], k


def _descriptions_in_log(question: str, tools: list[dict], usage: list, k: int) -> tuple:
    """The same evidence, every description moved into the log as a past question of its tool."""
    return question, [{**t, "description": ""} for t in tools], usage + [(t["description"], t["name"]) for t in tools], k


def _log_in_descriptions(question: str, tools: list[dict], usage: list, k: int) -> tuple:
    """The same evidence, the past questions of every tool moved into its description, the log empty."""
    past = defaultdict(list)
    for q, name in usage:
        past[name].append(q)
    return question, [{**t, "description": " ".join([t["description"], *past[t["name"]]])} for t in tools], [], k


def _diagnosis(fn: Callable, args: tuple, first: str, earlier: set) -> str:
    """Why the selection does not start with `first`: the student's function, run again on the same evidence laid
    out otherwise, tells whether it reads case and punctuation, descriptions, the log, or sorts the wrong way."""
    question, tools, usage, _ = args
    names = [t["name"] for t in tools]

    def finds(derived: tuple) -> bool:
        return _selection(fn, derived, earlier)[0] == first

    if finds(_cleaned(*args)):
        return ("compare words without case and punctuation ('Glorp?' is 'glorp'): lowercase the texts and split them "
                "into words (re.findall(r'\\w+', ...)).")  # fmt: skip
    if finds(_descriptions_in_log(*args)):
        return (f"only the description of {first!r} shares words with this question (tool names say nothing here): "
                "score each tool's description too.")  # fmt: skip
    if finds(_log_in_descriptions(*args)):
        return (f"only the past questions that {first!r} answered share words with this question: add the words of "
                "the usage log's questions to each tool's document.")  # fmt: skip
    everything = [(question, order, usage, len(tools)) for order in (tools, tools[::-1])]
    if len(tools) > 1 and all(_selection(fn, derived, earlier)[-1] == first for derived in everything):
        return "return the most relevant tool first (sort by score, descending)."
    return (f"{first!r} shares the most words with the question (in its description and past questions) and must "
            f"come first; you returned {_selection(fn, args, earlier)!r} among {names!r}.")


def _selection(fn: Callable, args: tuple, earlier: set) -> list[str]:
    """The student's selection, checked for what every selection must be; `earlier`: names of earlier toolboxes."""
    question, tools, usage, k = args
    want = min(k, len(tools))
    out = expect_list(call(fn, args, "select_tools"), "select_tools", what="a list of tool names")
    if not all(isinstance(x, str) for x in out):
        raise GradingError(f"select_tools should return tool names (str), got {describe(out)}.")
    unknown = [x for x in out if x not in {t["name"] for t in tools}]
    if unknown and not {x for x in unknown} & {name for _, name in usage} and set(unknown) <= earlier:
        raise GradingError(f"select_tools returned {unknown[:3]!r}, tools of an earlier toolbox, not of the one it was "
                           f"given: {CACHED}")  # fmt: skip
    earlier |= {t["name"] for t in tools}
    if unknown:
        raise GradingError(f"select_tools returned names that are not in the toolbox it was given: {unknown[:3]!r} "
                           "(the usage log may mention tools that are not offered).")  # fmt: skip
    if len(out) != want or len(set(out)) != want:
        raise GradingError(f"select_tools should return min(k, len(tools)) = {want} distinct tool names (k={k}, "
                           f"{len(tools)} tools), got {out!r}."[:300])  # fmt: skip
    return out


@graded("select_tools")
def check_select_tools(fn) -> None:
    earlier = set()

    def one(args):
        question, tools, usage, k = args
        graded_tools = _expected_order(question, tools, usage)[:k]
        out = _selection(fn, args, earlier)
        if out[: len(graded_tools)] == graded_tools:
            return
        if out[0] != graded_tools[0]:
            raise GradingError(f"select_tools: {_diagnosis(fn, args, graded_tools[0], earlier)}"[:400])
        raise GradingError(f"select_tools: {graded_tools[1]!r} shares one word with the question and the other tools "
                           f"none, so it comes second; you returned {out!r}."[:400])  # fmt: skip

    examples = [
        ("Tell me glorp fenty, Zarvo?", [{"name": "svc_kalo", "description": "Return the glorp fenty of a zarvo."},
                                         {"name": "svc_rumi", "description": "Return the weather of a city."}],
         [("What is the glorp fenty of Zarvo now?", "tool_gone")], 1),  # the log's best match is not offered
        ("GLORP, Fenty; WIBBLE!", [{"name": "fn_a", "description": "Return the zork of a kip."},
                                   {"name": "fn_b", "description": "Return the glorp fenty of a wibble."}], [], 5),
        ("Which tarn brisk moll is it now?", [{"name": "op_x", "description": "Return the glorp of a fenty."},
                                              {"name": "op_y", "description": "Return the dask of a pell."},
                                              {"name": "op_z", "description": "Return the tarn of a vole."}],
         [("Which tarn brisk moll is it?", "op_y"), ("What vole?", "op_z")], 3),  # only the log points to op_y
        ("Glorp fenty wibble?", [{"name": "only_one", "description": "Return the glorp fenty of a wibble."}], [], 0),
        ("Glorp fenty wibble?", [{"name": "only_one", "description": "Return the glorp fenty of a wibble."}], [], 2),
    ]  # fmt: skip
    tried = holds("select_tools", _toolboxes(), one, examples, max_examples=60, reference=select_tools)
    print(f"✓ select_tools: passed {tried} toolboxes drawn at random (names that say nothing, descriptions, usage "
          "logs with tools not offered, k from 0 to more than the tools), edge cases included.")  # fmt: skip


# --- The study: a report with intervals --------------------------------------------------------------------


def _columns(table, name: str) -> dict:
    """A dict of name -> values from a dict (or any mapping) or a pandas DataFrame (one column each)."""
    if hasattr(table, "columns") and hasattr(table, "__getitem__"):
        return {column: table[column] for column in table.columns}
    if not isinstance(table, Mapping):
        raise GradingError(f"run_study: {name} should be a dict of name -> values, got {describe(table)}.")
    return dict(table)


def _flags(values, what: str, length: int | None = None) -> list[bool]:
    """0/1 values as bools: a list or tuple of bools, 0/1 numbers, numpy or torch scalars; a numpy array, a torch
    tensor or a pandas Series of them."""
    if hasattr(values, "tolist") and not isinstance(values, list | tuple):
        values = values.tolist()  # numpy, pandas and torch
    values = expect_list(values, "run_study", length=length, what=what)
    flags = []
    for v in values:
        v = v.item() if hasattr(v, "item") and getattr(v, "ndim", 0) == 0 and not isinstance(v, str) else v
        if isinstance(v, str) or not isinstance(v, int | float) or v not in (0, 1):
            raise GradingError(f"run_study: {what} should hold True/False (or 1/0), one per item; got {describe(v)}.")
        flags.append(bool(v))
    return flags


@graded("run_study")
def check_agent_study(fn, min_items: int = 30) -> dict:
    """Check a study's report and print it: each condition's rate and its difference from the control, with 95%
    intervals (paired over the same items), overall and within each subset of items."""
    study = call(fn, (), "run_study")
    if not isinstance(study, dict) or not {"question", "control", "conditions"} <= set(study):
        raise GradingError(f"run_study should return a dict with keys 'question', 'control', 'conditions' (and "
                           f"optionally 'subsets'), got {describe(study)}.")  # fmt: skip
    question, control = study["question"], study["control"]
    if not isinstance(question, str) or len(question.split()) < 3:
        raise GradingError("run_study: state the question the study answers, as a sentence of at least three words, "
                           "in study['question'].")
    conditions = _columns(study["conditions"], "'conditions'")
    if len(conditions) < 2:
        raise GradingError(f"run_study: 'conditions' should map at least two names to outcomes (the control and a "
                           f"condition); got {describe(conditions)}.")  # fmt: skip
    if control not in conditions:
        near = [name for name in conditions if str(name).strip().lower() == str(control).strip().lower()]
        hint = f" (names are compared exactly: did you mean {near[0]!r}?)" if near else ""
        raise GradingError(f"run_study: the control {control!r} is not one of the conditions {list(conditions)!r}"
                           f"{hint}."[:400])  # fmt: skip
    outcomes = {name: _flags(values, f"the outcomes of {name!r}") for name, values in conditions.items()}
    n = len(outcomes[control])
    if any(len(v) != n for v in outcomes.values()) or n < min_items:
        raise GradingError(f"run_study: every condition needs one outcome per item, the same {min_items}+ items in "
                           f"the same order (paired); got lengths {[len(v) for v in outcomes.values()]}.")  # fmt: skip
    subsets = {"all items": [True] * n}
    for name, mask in _columns(study.get("subsets", {}), "'subsets'").items():
        subsets[name] = _flags(mask, f"the subset {name!r} (a boolean per item)", length=n)
    print(f"Question: {question}")
    for subset, mask in subsets.items():
        print(f"  {subset}:")
        base = [o for o, m in zip(outcomes[control], mask, strict=True) if m]
        for name, values in outcomes.items():
            kept = [o for o, m in zip(values, mask, strict=True) if m]
            versus = "" if name == control or len(kept) < 2 else f"   vs {control}: {fmt_difference(kept, base)}"
            print(f"    {name!s:28} {fmt_rate(kept) if kept else 'no items'}{versus}")
    print("✓ run_study: a paired comparison with a control, reported with 95% intervals.")
    return {**study, "conditions": outcomes, "subsets": subsets}
