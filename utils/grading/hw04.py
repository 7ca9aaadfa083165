"""Graders for homework 04 (reasoning): the unbiased pass@k estimator, majority vote over parsed answers,
Math-Shepherd step labels from rollouts, GRPO's group advantages and clipped loss, and Kimi's length reward.
The study reuses homework 02's `check_study` (fit and evaluation apart, a control, an interval).

Every check draws its inputs over the statement's whole domain (Hypothesis, seeded by the check's name), the rules'
edge cases included, and runs the student's function through `core.call`: expected values first, deep copies
handed over. Answers are read with the workbook's one parser, `tasks.parse_answer`.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Callable

import numpy as np
import torch
from hypothesis import strategies as st

from utils.grading import draws
from utils.grading.core import (
    GradingError,
    call,
    check_property,
    compare,
    confirmed,
    copies,
    describe,
    expect_list,
    graded,
    holds,
    same,
    same_as,
    show,
    tolerance,
)
from utils.grading.hw02 import check_study
from utils.tinyworld.reasoning import SEP, THINK_CLOSE, THINK_OPEN
from utils.tinyworld.tasks import parse_answer

__all__ = ["check_clipped_loss", "check_group_advantages", "check_length_reward", "check_majority_vote",
           "check_pass_at_k", "check_shepherd_labels", "check_study"]  # fmt: skip

FLOAT32_EPS = torch.finfo(torch.float32).eps


def _number(out, name: str) -> float:
    try:
        return float(out)
    except (TypeError, ValueError):
        raise GradingError(f"{name} should return a number, got {describe(out)}.") from None


# --- Exercise 1: pass@k ---------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): the chance that k of the n samples, drawn without replacement, hold a right one.
    C(n - c, k) is 0 when n - c < k: then pass@k is 1."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@st.composite
def _pass_inputs(draw) -> tuple[int, int, int]:
    """n small (so the same n comes back with other c and k) or in the thousands; k and c often at their edges."""
    n = draw(st.one_of(st.integers(1, 10), st.sampled_from([200, 2000, 10_000]), st.integers(11, 3000)))
    k = draw(st.one_of(st.sampled_from([1, n]), st.integers(1, n)))
    edges = sorted(c for c in {0, n, n - k, n - k + 1, n - k - 1} if 0 <= c <= n)  # n - c = k, and either side
    return n, draw(st.one_of(st.sampled_from(edges), st.integers(0, n))), k


def _pass_tolerance(c: int, k: int) -> float:
    """A float32 product of c factors (or of k, the other product form) is exact only to about sqrt(c) roundings."""
    return 2e-6 + 8 * FLOAT32_EPS * math.sqrt(max(c, k))


@graded("pass_at_k")
def check_pass_at_k(fn: Callable) -> None:
    examples = [(10, 3, 1), (10, 5, 1), (10, 3, 4), (10, 6, 4), (10, 7, 4), (16, 0, 8), (16, 16, 1), (5, 2, 5),
                (12, 1, 12), (1, 0, 1), (1, 1, 1), (2000, 37, 1000), (10_000, 2, 100)]  # fmt: skip
    too_few_wrong = "fewer than k samples are wrong (n - c < k): every k-subset holds a right one, so pass@k is 1."

    def one(args):
        n, c, k = args
        want = pass_at_k(n, c, k)
        try:
            out = _number(call(fn, args, "pass_at_k"), "pass_at_k")
        except GradingError as exc:
            raise GradingError(f"{exc} Here {too_few_wrong}" if n - c < k and "raised" in str(exc) else str(exc)) from None
        if math.isclose(out, want, rel_tol=1e-5, abs_tol=_pass_tolerance(c, k)):
            return
        near = lambda x: math.isclose(out, x, rel_tol=1e-6, abs_tol=1e-9)  # noqa: E731
        if not math.isfinite(out):
            raise GradingError(f"pass_at_k returned {out}: C(n, k) overflows a float for large n; use math.comb "
                               "on integers, or the product form prod(1 - k / i for i in range(n - c + 1, n + 1)).")
        if n - c < k:
            raise GradingError(f"pass_at_k returned {out:.6g}, expected 1: {too_few_wrong}")
        if n - c == k and near(1.0):
            raise GradingError(f"pass_at_k returned 1, expected {want:.6g}: when n - c = k exactly one k-subset holds "
                               "no right sample (pass@k = 1 - 1 / C(n, k)); pass@k is 1 only when n - c < k.")
        if near(1 - (1 - c / n) ** k):
            raise GradingError(f"pass_at_k returned {out:.6g}, expected {want:.6g}: that is 1 - (1 - c/n)^k, which "
                               "draws WITH replacement and is biased for small n; count the k-subsets of the n samples "
                               "that hold no right one: 1 - C(n-c, k) / C(n, k).")  # fmt: skip
        if near(c / n):
            raise GradingError(f"pass_at_k returned {out:.6g} = c/n, the pass@1 estimate, expected {want:.6g}: k matters.")
        if near(1 - want):
            raise GradingError(f"pass_at_k returned {out:.6g}, expected {want:.6g}: C(n-c, k) / C(n, k) is the chance "
                               "that NO sample of the k is right; pass@k is one minus it.")  # fmt: skip
        raise GradingError(f"pass_at_k returned {out:.6g}, expected {want:.6g}.")

    tried = holds("pass_at_k", _pass_inputs(), one, examples, max_examples=80, reference=pass_at_k)
    print(f"✓ pass_at_k: passed on {tried} (n, c, k), n up to 10,000, n - c = k and the other edges included.")


# --- Exercise 2: majority vote --------------------------------------------------------------------------------


def majority_vote(replies: list[str]) -> int | None:
    votes = [a for a in map(parse_answer, replies) if a is not None]
    if not votes:
        return None
    counts = Counter(votes)
    best = max(counts.values())
    return next(a for a in votes if counts[a] == best)  # a tie: the tied answer whose first vote comes first


VALUES = st.sampled_from([7, -3, 0, 12, 42, 105])  # few values: ties are common
THOUGHT = st.integers(200, 299)  # numbers in the thinking are never answers: a reply read wrong shows


def _thinking(b: int, c: int) -> str:
    return f"{THINK_OPEN} {b} + {c} = {b + c}{SEP}{b + c} - 1 = {b + c - 1} {THINK_CLOSE}"


@st.composite
def _answering(draw, a: int) -> str:
    """A reply whose answer is a, with numbers in its thinking and any of the endings that still end an integer."""
    space = draw(st.sampled_from([" ", "  ", "\n"]))
    end = draw(st.sampled_from([".", "", "!", " apples.", ",", ".\n", "?", ";", ":"]))
    return f"{_thinking(draw(THOUGHT), draw(THOUGHT))} The answer is{space}{a}{end}"


@st.composite
def _reply(draw) -> str:
    """A reply ending in one of the ways the parser's rule is about."""
    a, c = draw(VALUES), draw(VALUES)
    thinking = _thinking(draw(THOUGHT), draw(THOUGHT))
    kind = draw(st.sampled_from(["answer", "answer", "cut off", "twice", "not an integer", "dangling", "lower case",
                                 "in the thinking", "plus sign"]))  # fmt: skip
    if kind == "cut off":  # ran out of tokens mid-thought
        return thinking[: draw(st.integers(0, len(thinking)))]
    if kind == "twice":  # a reply that changes its mind: the last answer counts
        return f"{THINK_OPEN} The answer is {c}. wait, " + draw(_answering(a))[len(THINK_OPEN) + 1 :]
    if kind == "not an integer":
        return f"{thinking} The answer is {a}{draw(st.sampled_from(['.5', '.25.', 'x', ',5', '/2', '.0']))}"
    if kind == "in the thinking":  # the last "The answer is" comes before </think>, and still counts
        return f"{THINK_OPEN} {draw(THOUGHT)} + 1 = {draw(THOUGHT)}{SEP}The answer is {a} {THINK_CLOSE} Done."
    if kind == "plus sign":  # "+5" is no integer the parser reads
        return f"{thinking} The answer is +{a}."
    if kind == "dangling":  # nothing readable after the last "The answer is"
        return f"{thinking} The answer is {a}. So The answer is{draw(st.sampled_from(['', ' unclear.', ' twelve.']))}"
    if kind == "lower case":
        return f"{thinking} the answer is {a}."
    return draw(_answering(a))


def _after_last(pattern: str) -> Callable:
    """A parser that reads `pattern` right after the last "The answer is"."""
    return lambda text: (int(m.group(1)) if len(tail := text.rsplit("The answer is", 1)) == 2
                         and (m := re.match(pattern, tail[1])) else None)  # fmt: skip


def _split_parser(text: str) -> int | None:
    """The next word after the last "The answer is", a trailing full stop removed."""
    tail = text.rsplit("The answer is", 1)
    words = tail[1].split() if len(tail) == 2 else []
    word = words[0].rstrip(".") if words else ""
    return int(word) if word.lstrip("-").isdigit() else None


def _last_anywhere(text: str) -> int | None:
    found = re.findall(r"The answer is\s*(-?\d+)(?=$|\s|[.,;:!?](?!\d))", text)
    return int(found[-1]) if found else None


def _first_answer(text: str) -> int | None:
    return parse_answer("The answer is" + text.split("The answer is", 2)[1]) if "The answer is" in text else None


def _first_number(text: str) -> int | None:
    return next((int(w) for w in text.replace(".", " ").split() if w.isdigit()), None)


READ = "read each reply's answer with tasks.parse_answer: "
VOTE_MISTAKES = [  # (how a reply is read, whether a reply without an answer votes None, the hint)
    (parse_answer, True, "replies that never state an answer (cut off mid-thought) do not vote; vote among the "
     "replies that do."),
    (_first_number, False, "read the FINAL answer (after 'The answer is'), not a number from the thinking."),
    (_after_last(r"\s*(\d+)(?=$|\s|[.,;:!?](?!\d))"), False, READ + "a minus sign belongs to the answer "
     "('The answer is -3.' votes -3)."),
    (_after_last(r"\s*(-?\d+)"), False, READ + "'The answer is 52.5' or '4x' states no integer answer: the integer "
     "must end the text or be followed by a space or by punctuation that does not start a decimal."),
    (_split_parser, False, READ + "punctuation right after the integer ('42!', '42,', '42?') ends it: it still votes."),
    (_last_anywhere, False, READ + "only the integer RIGHT AFTER the last 'The answer is' counts; if none follows it, "
     "the reply does not vote."),
    (_first_answer, False, "a reply that states an answer twice means its LAST one."),
    (lambda t: parse_answer(re.sub("(?i)the answer is", "The answer is", t)), False, READ + "the phrase is "
     "'The answer is', case included: 'the answer is 5' does not vote."),
]  # fmt: skip


def _vote_with(parse: Callable, none_votes: bool) -> Callable:
    def vote(replies):
        answers = [a for a in map(parse, replies) if none_votes or a is not None]
        return Counter(answers).most_common(1)[0][0] if answers else None

    return vote


def _as_answer(out) -> int | None:
    """The student's winner as an int (or None); an int-valued number of any kind is accepted."""
    if out is None:
        return None
    if isinstance(out, torch.Tensor) and out.numel() == 1 or isinstance(out, np.ndarray) and out.size == 1:
        out = out.item()
    number = isinstance(out, int | float | np.integer | np.floating) and not isinstance(out, bool)
    if not number or not float(out).is_integer():
        raise GradingError(f"majority_vote should return the winning answer as an int (or None), got {describe(out)}.")
    return int(out)


def _vote_inputs() -> st.SearchStrategy:
    """Lists of replies (none at all included); and lists where two answers tie, in every order."""
    tied = st.tuples(VALUES, VALUES, st.integers(1, 3)).filter(lambda t: t[0] != t[1]).flatmap(
        lambda t: st.permutations([t[0], t[1]] * t[2])).flatmap(lambda order: st.tuples(*map(_answering, order)))
    return st.one_of(st.lists(_reply(), max_size=7), tied.map(list)).map(lambda replies: (replies,))


@graded("majority_vote")
def check_majority_vote(fn: Callable) -> None:
    t = lambda a, tail=".": f"{THINK_OPEN} 45 + 7 = 52{SEP}52 - 9 = 43 {THINK_CLOSE} The answer is {a}{tail}"  # noqa: E731
    cut = f"{THINK_OPEN} 45 + 7 = 52{SEP}52 - 9 = 43{SEP}43 +"
    examples = [
        ([t(42), t(7), t(7), t(42)],),  # a tie: 42's first vote comes first, though 7 reaches two votes first
        ([t(7), t(42), t(7), t(42)],),  # the same length, an order that is not a palindrome: 7, not the last voted
        ([cut, cut, cut, t(-3), t(-3), t(8)],),  # most replies never answer; a negative answer wins
        ([t(52, ".5"), t(52, ".5"), t(9, " apples."), t(4, "x")],),  # "52.5" and "4x" are no answers
        ([t(12) + " wait, " + t(9), t(9, "!"), t(12, ",")],),  # the LAST "The answer is" counts
        ([t(7), t(12).replace("The", "the"), t(12).replace("The", "the")],),  # the phrase's case matters
        ([t(7), t(12) + " So The answer is", t(12) + " So The answer is"],),  # no integer after the last phrase
        ([f"{THINK_OPEN} The answer is 5 {THINK_CLOSE} Done.", f"{THINK_OPEN} The answer is 5 {THINK_CLOSE} Done.",
          t(7)],),  # the last "The answer is" may sit inside the thinking
        ([t(42, ";"), t(42, ":"), t(7)],),  # ";" and ":" end an integer
        ([t(42, ".0"), t(42, ".0"), t("+5"), t("+5"), t(7)],),  # "42.0" and "+5" are no answers
        ([cut, "The answer is"],),  # nobody answers
        ([],),
    ]

    def one(args):
        (replies,) = args
        want = majority_vote(list(replies))
        got = _as_answer(call(fn, args, "majority_vote"))
        if got == want:
            return
        answers = [parse_answer(r) for r in replies]
        counts = Counter(a for a in answers if a is not None)
        for parse, none_votes, message in VOTE_MISTAKES:
            if _vote_with(parse, none_votes)(replies) == got:
                raise GradingError(f"majority_vote returned {got!r}, expected {want!r}: {message}")
        if got in counts and counts[got] == counts[want]:
            raise GradingError(f"majority_vote: on a tie, return the tied answer whose first vote comes first among "
                               f"the replies (here {want}), not {got}; the answers are {answers}.")  # fmt: skip
        raise GradingError(f"majority_vote returned {got!r}, expected {want!r}; the replies' answers, read by "
                           f"tasks.parse_answer, are {answers}.")  # fmt: skip

    tried = holds("majority_vote", _vote_inputs(), one, examples, max_examples=80, reference=majority_vote)
    print(f"✓ majority_vote: passed on {tried} lists of replies (cut-off and unparsable replies, negative answers, "
          "ties in any order).")


# --- Exercise 3: Math-Shepherd step labels ---------------------------------------------------------------------


class Rollouts:
    """A sampler the student has never seen. The share of a prefix's continuations that reach the answer is drawn
    by a hash of (salt, prefix), and whether continuation i of it does by a hash of (salt, prefix, i): labels cannot
    be guessed from the steps, and any call order that rolls each prefix out n times gets the same ones. Wrong
    continuations hold the traps of answer parsing (the answer in the thinking, a decimal, a negative, cut off)."""

    def __init__(self, answer: int, salt: int):
        self.answer, self.salt, self.seen = answer, salt, Counter()

    def __call__(self, prefixes: list[str]) -> list[str]:
        if isinstance(prefixes, str):
            raise TypeError("rollout takes a LIST of prefixes, not one string")
        out = []
        for prefix in prefixes:
            out.append(self.continuation(prefix, self.seen[prefix]))
            self.seen[prefix] += 1
        return out

    def _u(self, *parts) -> float:
        return zlib.crc32("|".join(map(str, (self.salt, *parts))).encode()) / 2**32

    def continuation(self, prefix: str, i: int) -> str:
        a, rate = self.answer, (0.0, 0.3, 0.5, 0.7, 1.0)[int(self._u(prefix) * 5)]
        other, kind = a + 1 + int(self._u(prefix, i, "other") * 5), int(self._u(prefix, i, "kind") * 5)
        if self._u(prefix, i) < rate:
            return [f"{SEP}{a - 3} + 3 = {a} {THINK_CLOSE} The answer is {a}.", f" {THINK_CLOSE} The answer is {a}",
                    f"{SEP}wait, {other} {THINK_CLOSE} The answer is {other}. No: The answer is  {a}!",
                    f" {THINK_CLOSE} The answer is {a} apples.",
                    f"{SEP}The answer is {a} {THINK_CLOSE} Done."][kind]  # fmt: skip
        return [f"{SEP}{a} + 1 = {other} {THINK_CLOSE} The answer is {other}.", f" {THINK_CLOSE} The answer is {a}.5",
                f"{SEP}{a} - 2 =", f" {THINK_CLOSE} The answer is {a}. wait, The answer is {-a if a else 1}.",
                f"{SEP}The answer is {other} {THINK_CLOSE} Done."][kind]  # fmt: skip


def _prefixes(prompt: str, steps: list[str]) -> list[str]:
    return [f"{prompt}{THINK_OPEN} {SEP.join(steps[: k + 1])}" for k in range(len(steps))]


def shepherd_labels(prompt: str, steps: list[str], answer: int, rollout: Callable, n: int) -> list[float]:
    prefixes = _prefixes(prompt, steps)
    replies = rollout([p for p in prefixes for _ in range(n)])
    return [sum(parse_answer(r) == answer for r in replies[k * n : (k + 1) * n]) / n for k in range(len(steps))]


def _shepherd_variant(before: bool = False, hard: bool = False, trailing: bool = False, first_number: bool = False,
                      interleaved: bool = False):  # fmt: skip
    def variant(prompt, steps, answer, rollout, n):
        prefixes = [f"{prompt}{THINK_OPEN} {SEP.join(steps[: k if before else k + 1])}" + (SEP if trailing else "")
                    for k in range(len(steps))]  # fmt: skip
        replies = rollout([p for p in prefixes for _ in range(n)])
        groups = [replies[k :: len(steps)] if interleaved else replies[k * n : (k + 1) * n] for k in range(len(steps))]
        parse = _first_number if first_number else parse_answer
        hits = [[parse(r) == answer for r in group] for group in groups]
        return [float(any(h)) if hard else sum(h) / n for h in hits]

    return variant


SHEPHERD_MISTAKES = [
    (_shepherd_variant(before=True), "the label of step k scores the prefix that ENDS with step k (steps[:k+1]): it "
     "asks whether the solution is still on track after that step."),
    (_shepherd_variant(trailing=True), "build each prefix exactly as the statement says, prompt + '<think> ' + "
     "' ; '.join(steps[:k+1]), with no separator after the last step: the model continues with ' ; next step' or "
     "' </think>'."),
    (_shepherd_variant(hard=True), "the label is the SHARE of the n continuations that reach the right answer "
     "(Math-Shepherd's soft estimate), not whether any of them does."),
    (_shepherd_variant(first_number=True), "read each continuation's final answer with tasks.parse_answer (after "
     "the last 'The answer is'), not the first number it writes."),
    (_shepherd_variant(interleaved=True), "rollout returns the continuations in the order of the prefixes you pass: "
     "with every prefix repeated n times, continuations k*n to k*n + n - 1 belong to step k."),
]  # fmt: skip

STEP = st.builds(lambda x, y, wait, pad: f"{pad}{'wait, ' if wait else ''}{x} + {y} = {x + y}{pad}",
                 st.integers(2, 99), st.integers(2, 9), st.booleans(), st.sampled_from(["", "", " "]))  # fmt: skip


@st.composite
def _shepherd_inputs(draw) -> tuple:
    """(prompt, steps, answer, n, salt): up to 4 steps (none included, spaces around some), n from 1, answers
    negative and 0 too; some prompts hold a worked example whose "The answer is" gives the right answer (only the
    continuation may be read)."""
    answer = draw(st.one_of(st.sampled_from([0, -7]), st.integers(-50, 150)))
    example = draw(st.sampled_from(["", "", f"Example: 1 + 1? The answer is {answer}.\n"]))
    prompt = f"{example}What is {draw(st.integers(2, 99))} + {draw(st.integers(2, 99))}?"
    prompt += draw(st.sampled_from(["", " ", "\n"]))
    return prompt, draw(st.lists(STEP, max_size=4)), answer, draw(st.integers(1, 5)), draw(st.integers(0, 2**16))


def _drawn(prompt, steps, answer, n, sampler_seed):
    """How a drawn case is shown: shepherd_labels got these and a sampler seeded by `sampler_seed` as `rollout`."""


def _same_labels(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(got, want, strict=True))


@graded("shepherd_labels")
def check_shepherd_labels(fn: Callable) -> None:
    two = ["40 + 2 = 42", "42 + 0 = 42"]  # one solution under two samplers: labels [0.25, 1.0], then [1.0, 0.0]
    few_shot = "Example: 1 + 1? The answer is 42.\nWhat is 40 + 2? "  # only the continuation may be read
    examples = [("What is 40 + 2? ", two, 42, 4, 1), ("What is 40 + 2? ", two, 42, 4, 9), (few_shot, two, 42, 4, 2),
                ("What is 40 + 2? ", two, 42, 3, 8),  # labels 1/3 and 2/3
                ("Q", ["1 + 2 = 3", "3 + 4 = 7", "wait, 3 + 4 = 7"], -7, 4, 3), ("Q", [], 5, 3, 4)]  # fmt: skip

    probes = [("Example: The answer is 42.\nWhat is 40 + 2? ", [" 40 + 1 = 41", "41 + 1 = 42"], 42, Rollouts(42, 5), 3),
              ("Q", ["1 + 2 = 3", "3 + 4 = 7", "wait, 3 + 4 = 7"], -7, Rollouts(-7, 3), 4)]  # the mistakes differ here

    def read_labels(out) -> list[float]:
        return [float(x) for x in expect_list(out, "shepherd_labels")]

    def one(args):
        prompt, steps, answer, n, salt = args
        want = shepherd_labels(prompt, list(steps), answer, Rollouts(answer, salt), n)
        rollout = Rollouts(answer, salt)
        out = call(fn, (prompt, steps, answer, rollout, n), "shepherd_labels", mutable=(3,))
        got = [float(x) for x in expect_list(out, "shepherd_labels", len(steps), "a list of floats, one per step")]
        if _same_labels(got, want):
            if any(count != n for count in rollout.seen.values()):
                raise GradingError(f"shepherd_labels: roll each prefix out exactly n = {n} times; counts were "
                                   f"{sorted(rollout.seen.values())}.")  # fmt: skip
            return
        if steps and not rollout.seen:
            raise GradingError("shepherd_labels never called `rollout`: the labels come from the continuations it "
                               "returns, not from a test of your own.")  # fmt: skip
        mistakes = confirmed(fn, "shepherd_labels", SHEPHERD_MISTAKES, got, (prompt, steps, answer, Rollouts(answer, salt), n),
                             probes, lambda got, wrong, _: _same_labels(got, wrong), read_labels, mutable=(3,))  # fmt: skip
        if mistakes:
            raise GradingError(f"shepherd_labels: {mistakes[0]}")
        expected = _prefixes(prompt, steps)
        unknown = [p for p in rollout.seen if p not in expected]
        if unknown:
            raise GradingError(f"shepherd_labels rolled out the prefix {unknown[0]!r}, which is none of the prefixes "
                               f"prompt + '<think> ' + ' ; '.join(steps[:k+1]) ({show(expected)}).")  # fmt: skip
        if any(rollout.seen[p] != n for p in expected):
            raise GradingError(f"shepherd_labels: roll each prefix out exactly n = {n} times; counts were "
                               f"{[rollout.seen[p] for p in expected]}.")  # fmt: skip
        raise GradingError(f"shepherd_labels returned {show(got)}, expected {show(want)}: each label is the share of "
                           "its prefix's n continuations whose answer (tasks.parse_answer) is the right one.")  # fmt: skip

    tried = holds("shepherd_labels", _shepherd_inputs(), one, examples, max_examples=50, reference=_drawn)
    print(f"✓ shepherd_labels: passed on {tried} solutions, with samplers you have not seen.")


# --- Exercise 4: GRPO --------------------------------------------------------------------------------------------


def group_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """(r - group mean) / (group std + 1e-4), std unbiased; rewards are (groups, samples per group)."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    return (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + 1e-4)


def _advantage_variant(population: bool = False, no_std: bool = False, global_mean: bool = False,
                       over_groups: bool = False, eps_in_sqrt: bool = False, no_eps: bool = False):  # fmt: skip
    def variant(rewards):
        r = torch.as_tensor(rewards, dtype=torch.float64)
        dim = 0 if over_groups else -1
        centred = r - (r.mean() if global_mean else r.mean(dim, keepdim=True))
        if no_std:
            return centred
        deviations = (r - r.mean(dim, keepdim=True)).pow(2).sum(dim, keepdim=True)
        variance = deviations / (r.shape[dim] - (0 if population else 1))  # NaN, not a warning, for one group
        if eps_in_sqrt:
            return centred / (variance + 1e-4).sqrt()
        std = variance.sqrt()
        return torch.where(std > 0, centred / std, 0.0) if no_eps else centred / (std + 1e-4)

    return variant


NICE = [0.0, 1.0, 0.5, -1.0, 2.0]  # their means are exact in float32: a group of equal ones has advantages 0 exactly


@st.composite
def _rewards(draw) -> tuple[torch.Tensor]:
    """(groups, samples) rewards in float32 or float64: right / wrong (0 / 1) or graded; some groups all equal."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    shape = (draw(st.integers(1, 4)), draw(st.integers(2, 6)))
    graded_values = st.one_of(st.sampled_from(NICE), draws.floats(-10.0, 10.0, 32 if dtype == torch.float32 else 64))
    rewards = draw(draws.tensors(shape, draw(st.sampled_from([st.sampled_from([0.0, 1.0]), graded_values])), dtype))
    equal = st.sampled_from([*NICE, 0.7, 9.9, 0.1])  # 0.7, 9.9, 0.1: not exact in float32 (a one-pass variance < 0)
    for row, value in enumerate(draw(st.lists(st.one_of(st.none(), equal), min_size=shape[0], max_size=shape[0]))):
        if value is not None:
            rewards[row] = value
    return (rewards,)


def _within_float32_rounding(out, rewards) -> bool:
    """Within float32 rounding of each group's formula: the mean's rounding, divided by that group's std + 1e-4 (a
    group whose equal rewards have an inexact float32 mean gets advantages of about 1e-3 instead of 0)."""
    r, want = rewards.double(), group_advantages(rewards)
    atol = 1e-5 + 8 * FLOAT32_EPS * r.abs().amax(-1, keepdim=True) / (r.std(-1, keepdim=True) + 1e-4)
    return out.shape == want.shape and bool(((out.double() - want).abs() <= atol + 1e-4 * want.abs()).all())


def _half_precision(out, rewards) -> bool:
    return out.dtype in (torch.float16, torch.bfloat16)


_half_precision.exact = True  # a diagnosis by itself, before any other


@graded("group_advantages")
def check_group_advantages(fn: Callable) -> None:
    examples = [
        (torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]),),  # a group all right: advantage 0, not NaN
        (torch.tensor([[0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0]]),),  # the same shape, other rewards
        (torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]]),),  # ... and the same mean
        (torch.full((1, 5), 0.7),), (torch.full((1, 3), 9.9),),  # equal rewards float32 cannot hold: std 0, not NaN
        (torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64),),  # an advantage of exactly 0
        (torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),),  # the smallest group
        (torch.tensor([[1.0, 1.001, 1.0, 0.999]], dtype=torch.float64),),  # rewards that barely differ: the 1e-4 shows
    ]
    hints = [
        (_half_precision, "compute in float32 or float64: float16 rounds the + 1e-4 away and the advantages with it."),
        (same_as(_advantage_variant(global_mean=True)), "subtract each GROUP's mean (the samples of one prompt), "
         "not the batch's."),
        (same_as(_advantage_variant(over_groups=True)), "normalise within each group: the mean and std of each ROW "
         "(over the last dimension, the samples of one prompt), not of each column."),
        (same_as(_advantage_variant(no_std=True)), "divide by the group's standard deviation (+ 1e-4)."),
        (same_as(_advantage_variant(population=True)), "use the unbiased standard deviation (torch's default, "
         "dividing by n - 1)."),
        (same_as(_advantage_variant(eps_in_sqrt=True)), "add 1e-4 to the standard deviation itself, not to the "
         "variance under the square root."),
        (same_as(_advantage_variant(no_eps=True)), "divide by (std + 1e-4), as stated: the 1e-4 also damps groups "
         "whose rewards barely differ."),
    ]  # fmt: skip
    check_property(fn, group_advantages, "group_advantages", _rewards(), examples, hints, max_examples=60,
                   nonfinite_hint="a group whose rewards are all equal has std 0: divide by (std + 1e-4), which keeps "
                                  "its advantages 0.", tol=tolerance(torch.float32), accept=_within_float32_rounding)  # fmt: skip


def clipped_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                 clip: float = 0.2) -> torch.Tensor:  # fmt: skip
    ratio = (logp_new - logp_old).exp()
    a = advantages[:, None]
    per_token = -torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    mask = mask.to(per_token.dtype)
    return (torch.where(mask.bool(), per_token, 0.0).sum(-1) / mask.sum(-1)).mean()  # padding may hold anything


def _loss_variant(token_mean: bool = False, no_min: bool = False, max_: bool = False, no_mask: bool = False,
                  sign: bool = False, no_exp: bool = False, exp_ratio: bool = False, fixed_clip: bool = False,
                  mask_from_logp: bool = False, min_of_ratios: bool = False, upper_only: bool = False):  # fmt: skip
    def variant(logp_new, logp_old, advantages, mask, clip=0.2):
        clip = 0.2 if fixed_clip else clip
        if no_exp:
            ratio = logp_new - logp_old
        else:
            ratio = logp_new.exp() / logp_old.exp() if exp_ratio else (logp_new - logp_old).exp()
        a = advantages[:, None]
        clipped_ratio = ratio.clamp(max=1 + clip) if upper_only else ratio.clamp(1 - clip, 1 + clip)
        pick = torch.maximum if max_ else torch.minimum
        if min_of_ratios:
            objective = torch.minimum(ratio, clipped_ratio) * a
        else:
            objective = clipped_ratio * a if no_min else pick(ratio * a, clipped_ratio * a)
        per_token = objective if sign else -objective
        m = torch.ones_like(per_token) if no_mask else (logp_new != 0) if mask_from_logp else mask
        m = m.to(per_token.dtype)
        if token_mean:
            return (per_token * m).sum() / m.sum()
        return ((per_token * m).sum(-1) / m.sum(-1)).mean()

    return variant


MASK = ("use the `mask` you are given: padding positions (mask 0) are not part of a reply; a real token can have a "
        "log-probability of exactly 0, and padding need not hold 0.")
UNDERFLOW = ("compute the ratio as exp(logp_new - logp_old): exp(logp) underflows to 0 for log-probabilities near "
             "-1000 (a rare token), and 0 / 0 is NaN.")  # fmt: skip


@st.composite
def _loss_inputs(draw) -> tuple:
    """(logp_new, logp_old, advantages, mask[, clip]) in float32 or float64, edges drawn on purpose: ratios at
    exactly 1 ± clip and 1, log-probabilities of exactly 0 and near -1000, advantages of 0 and of both signs,
    masks of ints, floats or bools with holes anywhere (every reply keeps a token), padding filled with 0 or not."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    width = 32 if dtype == torch.float32 else 64
    replies, tokens = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    clip = draw(st.one_of(st.sampled_from([0.2, 0.1, 0.3]), draws.floats(0.05, 0.5)))
    old = draw(draws.tensors((replies, tokens), st.one_of(st.just(0.0), draws.floats(-6.0, 0.0, width)), dtype))
    old = old + draw(st.sampled_from([0.0, 0.0, -1000.0]))  # a rare token: exp(logp) is 0 in float32 and float64
    at = draw(draws.tensors((replies, tokens), st.integers(0, 3), torch.int64))  # 0, 1: at a clip edge; 2: ratio 1
    delta = draw(draws.tensors((replies, tokens), draws.floats(-1.5, 1.5, width), dtype))
    edges = torch.tensor([math.log(1 + clip), math.log(1 - clip), 0.0], dtype=dtype)
    delta = torch.where(at < 3, edges[at.clamp(max=2)], delta)
    new = old + delta
    mask = draw(draws.tensors((replies, tokens), st.booleans(), torch.bool))
    mask[torch.arange(replies), draw(draws.tensors((replies,), st.integers(0, tokens - 1), torch.int64))] = True
    if draw(st.booleans()):  # padding holds 0, as a padded batch often does
        new, old = new.masked_fill(~mask, 0.0), old.masked_fill(~mask, 0.0)
    advantages = draw(draws.tensors((replies,), st.one_of(st.sampled_from([0.0, 1.0, -1.0]),
                                                          draws.floats(-3.0, 3.0, width)), dtype))  # fmt: skip
    mask = mask.to(draw(st.sampled_from([torch.int64, torch.float32, torch.bool])))
    return (new, old, advantages, mask) if clip == 0.2 and draw(st.booleans()) else (new, old, advantages, mask, clip)


def _float32_rounding(logp_new, logp_old) -> float:
    """The relative change of a ratio when its log-probabilities are rounded to float32 (6e-5 near -1000)."""
    return 2 * FLOAT32_EPS * (1 + max(float(logp_new.abs().max()), float(logp_old.abs().max())))


def _at_a_clip_edge(logp_new, logp_old, advantages, mask, clip=0.2) -> torch.Tensor:
    """Tokens whose ratio is 1 ± clip up to float32 rounding: the loss has a kink there (or autograd takes a
    one-sided derivative of the clamp), so any value between the two one-sided derivatives is a right gradient."""
    ratio = (logp_new - logp_old).double().exp()
    band = 1e-6 + 2 * _float32_rounding(logp_new, logp_old)
    near = lambda edge: (ratio - edge).abs() <= band * edge  # noqa: E731
    return mask.bool() & (near(1 + clip) | near(1 - clip))


def _gradient_ok(grad: torch.Tensor, args: tuple, tol: dict) -> bool:
    """The reference's gradient w.r.t. logp_new, or at a clip edge anything between the one-sided derivatives."""
    new = args[0].detach().clone().requires_grad_()
    clipped_loss(new, *args[1:]).backward()
    want, grad = new.grad.double(), grad.double()
    close = (grad - want).abs() <= tol["atol"] + tol["rtol"] * want.abs()
    logp_new, logp_old, advantages, mask = args[:4]
    m = mask.double()
    unclipped = -(advantages.double()[:, None] * (logp_new - logp_old).double().exp() * m / m.sum(-1, keepdim=True))
    unclipped = unclipped / len(m)
    low, high = torch.minimum(unclipped, torch.zeros(())), torch.maximum(unclipped, torch.zeros(()))
    between = (grad >= low - tol["atol"]) & (grad <= high + tol["atol"])
    return bool((close | (_at_a_clip_edge(*args) & between)).all())


@graded("clipped_loss")
def check_clipped_loss(fn: Callable) -> None:
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(3, 4, generator=g).double() * 3
    new = old + torch.tensor([[0.5, -0.5, math.log(1.2), 0.0], [math.log(0.8), 0.1, 0.0, 0.0], [0.3, 0.0, -2.0, 1.0]],
                             dtype=torch.float64)  # fmt: skip
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 0]])
    examples = [
        (new, old, torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64), mask),
        (new, old, torch.tensor([-0.5, 2.0, -1.0], dtype=torch.float64), mask, 0.1),  # the same shapes, other values
        (new.float() - 1000, old.float() - 1000, torch.tensor([1.0, 0.0, -1.0]), mask.float()),  # rare tokens
        (torch.zeros(2, 3), torch.tensor([[0.0, -0.5, 0.0], [-1.0, 0.0, 0.0]]), torch.tensor([1.0, -2.0]),
         torch.tensor([[True, True, False], [True, True, True]]), 0.3),  # log-probabilities of exactly 0
        (torch.tensor([[math.log(4.0), 0.0]]), torch.zeros(1, 2), torch.tensor([-1.0]), torch.tensor([[1, 1]])),  # no
    ]  # floor on a ratio of 4 with a negative advantage (dual-clip PPO's) in this objective
    hints = [
        (same_as(_loss_variant(sign=True)), "return the LOSS to minimise: the negative of the clipped objective."),
        (same_as(_loss_variant(no_exp=True)), "the ratio is pi_new / pi_old = exp(logp_new - logp_old)."),
        (same_as(_loss_variant(exp_ratio=True)), UNDERFLOW),
        (same_as(_loss_variant(max_=True)), "take the minimum of the unclipped and clipped terms (a pessimistic "
         "bound), not the maximum."),
        (same_as(_loss_variant(no_min=True)), "keep the unclipped term too: the objective is "
         "min(ratio * A, clip(ratio) * A), so the clip only removes the incentive to move further."),
        (same_as(_loss_variant(min_of_ratios=True)), "take the minimum of the two PRODUCTS ratio * A and "
         "clip(ratio) * A, not of the two ratios: with a negative advantage the order flips."),
        (same_as(_loss_variant(upper_only=True)), "clip the ratio on both sides, to [1 - clip, 1 + clip]."),
        (same_as(_loss_variant(fixed_clip=True)), "use the `clip` argument (epsilon), not a fixed 0.2."),
        (same_as(_loss_variant(no_mask=True)), MASK),
        (same_as(_loss_variant(mask_from_logp=True)), MASK),
        (same_as(_loss_variant(token_mean=True)), "average over each reply's own tokens first, then over replies "
         "(GRPO's 1/G sum_i 1/|o_i| sum_t), not over all tokens of the batch at once."),
    ]  # fmt: skip

    def one(args):
        want = clipped_loss(*copies(args))
        new = args[0].detach().clone().requires_grad_()  # the student's own copy, whose gradient is checked
        out = call(fn, (new, *args[1:]), "clipped_loss", mutable=(0,))
        if not same(new.detach(), args[0]):
            raise GradingError("clipped_loss modified its input `logp_new` in place; use out-of-place operations.")
        if not isinstance(out, torch.Tensor):
            raise GradingError(f"clipped_loss should return the loss as a 0-d torch.Tensor, got {describe(out)}.")
        tol = tolerance(out.dtype, want.dtype)
        if torch.float32 in (out.dtype, want.dtype):  # float32 rounds the ratios, the sums, the means
            terms = float((args[0] - args[1]).double().exp().max() * args[2].double().abs().max())
            tol["atol"] += terms * (8 * FLOAT32_EPS + _float32_rounding(args[0], args[1]))
        compare(out, want.detach(), "clipped_loss", args, hints, nonfinite_hint=UNDERFLOW, **tol)
        if not out.requires_grad or out.grad_fn is None:
            raise GradingError("clipped_loss: the loss carries no gradient to logp_new; do not detach it or convert "
                               "it to a number.")  # fmt: skip
        try:
            out.backward()
        except RuntimeError as exc:
            raise GradingError(" ".join(f"clipped_loss: backpropagating through the returned loss failed ({exc}"[:200]
                                        .split()) + "...); compute a new loss from logp_new on every call.") from None
        if new.grad is None or not _gradient_ok(new.grad, args, tol):
            raise GradingError("clipped_loss: the value is right but its gradient w.r.t. logp_new is not; the old "
                               "log-probabilities and the advantages are constants (no gradient through them).")

    tried = holds("clipped_loss", _loss_inputs(), one, examples, max_examples=60, reference=clipped_loss)
    print(f"✓ clipped_loss: values and gradients passed on {tried} batches (ratios at 1 ± clip, log-probabilities "
          "of 0 and near -1000, advantages of 0 and both signs).")


# --- Exercise 5: Kimi's length reward ------------------------------------------------------------------------


def length_reward(lengths, correct) -> torch.Tensor:
    """lambda = 0.5 - (len - min) / (max - min) over the group (0 if all lengths are equal); a right reply gets
    lambda, a wrong one min(0, lambda)."""
    lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.float64)
    correct = torch.as_tensor(np.asarray(correct)).bool()
    spread = lengths.max() - lengths.min()
    lam = 0.5 - (lengths - lengths.min()) / spread if spread > 0 else torch.zeros_like(lengths)
    return torch.where(correct, lam, lam.clamp(max=0))


def _length_variant(wrong_too: bool = False, correct_only: bool = False, by_max: bool = False,
                    wrong_zero: bool = False, longer_better: bool = False, equal_half: bool = False):  # fmt: skip
    def variant(lengths, correct):
        lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.float64)
        correct = torch.as_tensor(np.asarray(correct)).bool()
        pool = lengths[correct] if correct_only and correct.any() else lengths
        lo, hi = (torch.tensor(0.0, dtype=torch.float64), pool.max()) if by_max else (pool.min(), pool.max())
        if hi > lo:
            lam = 0.5 - (lengths - lo) / (hi - lo)
        else:
            lam = torch.full_like(lengths, 0.5 if equal_half else 0.0)
        lam = -lam if longer_better else lam
        if wrong_too:
            return lam
        return torch.where(correct, lam, 0.0 if wrong_zero else lam.clamp(max=0))

    return variant


ARRAY_LIKES = {"list": lambda xs: xs, "tensor": torch.tensor, "numpy": np.array}


@st.composite
def _length_inputs(draw) -> tuple:
    """One group of 1 to 6 replies: lengths often tied (at the min, the max, or all equal), 0 and 100,000 included;
    lengths as a list, a tensor or a numpy array; `correct` as bools or 0/1, in a list, a tensor or a numpy array."""
    size = draw(st.integers(1, 6))
    length = st.one_of(st.sampled_from([40, 41, 60, 200]), st.sampled_from([0, 100_000]), st.integers(0, 5000))
    lengths = draw(st.lists(length, min_size=size, max_size=size))
    if draw(st.integers(0, 4)) == 0:
        lengths = [lengths[0]] * size
    correct = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    if draw(st.booleans()):
        correct = [int(c) for c in correct]
    return (ARRAY_LIKES[draw(st.sampled_from(list(ARRAY_LIKES)))](lengths),
            ARRAY_LIKES[draw(st.sampled_from(list(ARRAY_LIKES)))](correct))  # fmt: skip


@graded("length_reward")
def check_length_reward(fn: Callable) -> None:
    examples = [
        ([120, 80, 200, 95, 150, 60], [True, True, False, True, False, False]),
        ([120, 80, 200, 95, 150, 60], [False, True, True, False, True, True]),  # the same lengths, other verdicts
        ([40, 40, 40], [True, False, True]),  # equal lengths: no length signal
        ([7], [1]),  # a group of one
        (torch.tensor([33, 71, 33, 90, 90]), torch.tensor([1, 0, 0, 1, 0])),  # ties at the min and the max
        (np.array([300, 50, 180, 75]), np.array([False, True, True, False])),
    ]
    hints = [
        (same_as(_length_variant(wrong_too=True)), "a wrong reply may be penalised for length but never rewarded: "
         "it gets min(0, lambda)."),
        (same_as(_length_variant(wrong_zero=True)), "a wrong reply still gets min(0, lambda): a long wrong reply is "
         "penalised, not left at 0."),
        (same_as(_length_variant(correct_only=True)), "min_len and max_len are over ALL the group's replies, right "
         "and wrong (Kimi k1.5)."),
        (same_as(_length_variant(by_max=True)), "normalise by the range: (len - min_len) / (max_len - min_len)."),
        (same_as(_length_variant(longer_better=True)), "the SHORTEST reply gets +0.5 and the longest -0.5: "
         "lambda = 0.5 - (len - min_len) / (max_len - min_len)."),
        (same_as(_length_variant(equal_half=True)), "when all lengths are equal, every reward is 0."),
    ]  # fmt: skip
    check_property(fn, length_reward, "length_reward", _length_inputs(), examples, hints, max_examples=60,
                   nonfinite_hint="when all lengths are equal, max - min = 0: lambda is 0 then.")
