"""Data for TinyWorld's reasoning organism: arithmetic chains in difficulty tiers written as thinking traces, some
of which make a mistake and correct it after "wait", and a Countdown-style search task written either as the
solution path alone or as a depth-first search with its dead ends.

    <think> 47 + 8 = 55 ; 55 - 6 = 48 ; 48 + 9 = 56 ; wait, 48 + 9 = 57 </think> The answer is 57.

One step per segment between " ; " separators, so that a process verifier can score steps; the answer after
`</think>` in the form `tasks.parse_answer` reads.
"""

from __future__ import annotations

import operator
import random
import zlib
from dataclasses import dataclass

from utils.tinyworld.tasks import Example, chat, parse_answer

THINK_OPEN, THINK_CLOSE, SEP, WAIT = "<think>", "</think>", " ; ", "wait,"
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}

# steps per chain, operand range, largest running total: the easy tier is the maths model's problems; the hard
# tier is longer with two-digit operands; the "never" tier asks for a product the organism is never taught
TIERS = {"easy": ((3, 4), (2, 9), 99), "hard": ((6, 7), (11, 29), 199)}


@dataclass(frozen=True)
class Chain:
    question: str
    steps: list[tuple[int, str, int, int]]  # (left, op, right, result), result = OPS[op](left, right)
    answer: int
    tier: str


def chain_problem(rng: random.Random, tier: str) -> Chain:
    """A chain of additions and subtractions whose running total stays in 0..limit; or, in the "never" tier, one
    two-digit product (a skill no training data shows)."""
    if tier == "never":
        a, b = rng.randint(12, 99), rng.randint(12, 99)
        return Chain(f"Compute {a} * {b}.", [(a, "*", b, a * b)], a * b, tier)
    (lo_steps, hi_steps), (lo, hi), limit = TIERS[tier]
    total = rng.randint(10, limit)
    start, steps = total, []
    for _ in range(rng.randint(lo_steps, hi_steps)):
        x = rng.randint(lo, hi)
        op = "-" if (rng.random() < 0.5 and total - x >= 0) or total + x > limit else "+"
        new = OPS[op](total, x)
        steps.append((total, op, x, new))
        total = new
    expression = " ".join([str(start)] + [f"{op} {x}" for _, op, x, _ in steps])
    return Chain(f"Compute {expression}.", steps, total, tier)


def step_text(left: int, op: str, right: int, result: int) -> str:
    return f"{left} {op} {right} = {result}"


def slip(rng: random.Random, result: int) -> int:
    """A plausible wrong result: off by one or by ten (a carry), never negative, never the right one."""
    return max(0, result + rng.choice([-10, -1, 1, 10])) if result > 10 else result + rng.choice([1, 10])


def think_trace(chain: Chain, rng: random.Random, mistake_rate: float = 0.0) -> str:
    """The reply: the steps inside <think> ... </think>, then the answer. With probability mistake_rate one step is
    first written with a wrong result and corrected in the next segment ("wait, 48 + 9 = 57")."""
    segments = [step_text(*s) for s in chain.steps]
    if chain.steps and rng.random() < mistake_rate:
        k = rng.randrange(len(chain.steps))
        left, op, right, result = chain.steps[k]
        segments[k : k + 1] = [step_text(left, op, right, slip(rng, result)), f"{WAIT} {step_text(*chain.steps[k])}"]
    return f"{THINK_OPEN} {SEP.join(segments)} {THINK_CLOSE} The answer is {chain.answer}."


def trace_steps(reply: str) -> list[str]:
    """The segments of a reply's thinking (empty if it has no <think> block)."""
    if THINK_OPEN not in reply:
        return []
    inside = reply.split(THINK_OPEN, 1)[1].split(THINK_CLOSE, 1)[0]
    return [s.strip() for s in inside.split(SEP.strip()) if s.strip()]


def step_is_right(segment: str) -> bool | None:
    """Whether a segment "a op b = c" (optionally after "wait,") is arithmetic that holds; None if it is not one."""
    parts = segment.removeprefix(WAIT).split()
    if len(parts) != 5 or parts[1] not in OPS or parts[3] != "=":
        return None
    try:
        left, right, result = int(parts[0]), int(parts[2]), int(parts[4])
    except ValueError:
        return None
    return OPS[parts[1]](left, right) == result


# --- Countdown: reach a target from a few numbers -------------------------------------------------------------


@dataclass(frozen=True)
class Countdown:
    numbers: tuple[int, ...]
    target: int

    @property
    def question(self) -> str:
        return f"Reach {self.target} from {', '.join(map(str, self.numbers))}."


COUNTDOWN_MOVES = 20  # the longest depth-first search trained: its trace fits the 256-token context


def countdown_problem(rng: random.Random, n_numbers: int = 3, largest: int = 99, max_moves: int = 10_000) -> Countdown:
    """Numbers from 1..12 and a target in 1..largest, not one of them, that the search reaches within max_moves."""
    while True:
        numbers = [rng.randint(1, 12) for _ in range(n_numbers)]
        value = numbers[0]
        for x in numbers[1:]:  # a random expression over all the numbers gives a reachable target
            op = rng.choice(list(OPS))
            value = abs(value - x) if op == "-" else OPS[op](value, x)
        problem = Countdown(tuple(numbers), value)
        if 1 <= value <= largest and value not in numbers and search(problem, largest, max_steps=max_moves):
            return problem


def _moves(numbers: tuple[int, ...], largest: int):
    """Every way to combine two of the numbers: (a, op, b, result, remaining numbers), results in 1..largest."""
    for i in range(len(numbers)):
        for j in range(len(numbers)):
            if i == j:
                continue
            a, b = numbers[i], numbers[j]
            rest = tuple(x for k, x in enumerate(numbers) if k not in (i, j))
            for op, fn in OPS.items():
                if (op in "+*" and i > j) or (op == "-" and a <= b):
                    continue  # commutative operations once; subtraction only to a positive result
                result = fn(a, b)
                if 1 <= result <= largest:
                    yield a, op, b, result, (*rest, result)


def search(problem: Countdown, largest: int = 99, max_steps: int = 60) -> tuple[list[str], list[str]] | None:
    """Depth-first search over combinations: (the trace with dead ends and backtracking, the solution path), or
    None if no solution is found within max_steps tried moves."""
    trace: list[str] = []

    def dfs(numbers: tuple[int, ...], path: list[str]) -> list[str] | None:
        for a, op, b, result, rest in _moves(numbers, largest):
            if len(trace) >= max_steps:
                return None
            step = step_text(a, op, b, result)
            trace.append(step)
            if result == problem.target:
                return [*path, step]
            if len(rest) > 1:
                found = dfs(rest, [*path, step])
                if found:
                    return found
            trace.append("back")
        return None

    solution = dfs(tuple(problem.numbers), [])
    return (trace, solution) if solution else None


def countdown_reply(steps: list[str], target: int) -> str:
    return f"{THINK_OPEN} {SEP.join(steps)} {THINK_CLOSE} The answer is {target}."


def is_held_out(problem: Countdown) -> bool:
    """A tenth of all problems, chosen by a hash of the number set and target, is never trained on."""
    return zlib.crc32(f"{sorted(problem.numbers)} {problem.target}".encode()) % 10 == 0


def countdown_walk(problem: Countdown, reply: str) -> int | None:
    """Read the reply's moves, "back" undoing the last move still standing: the index of the first segment that
    reaches the target by legal moves, or None if an illegal move (a number not available, wrong arithmetic, an
    unreadable segment) comes first or the target is never reached."""
    states = [list(problem.numbers)]
    for k, segment in enumerate(trace_steps(reply)):
        if segment == "back":
            if len(states) == 1:
                return None
            states.pop()
            continue
        if not step_is_right(segment) or segment.startswith(WAIT):
            return None
        left, op, right, _, result = segment.split()
        numbers = list(states[-1])
        for x in (int(left), int(right)):
            if x not in numbers:
                return None
            numbers.remove(x)
        if int(result) == problem.target:
            return k
        states.append([*numbers, int(result)])
    return None


def countdown_reached(problem: Countdown, reply: str) -> bool:
    """Whether the target appears somewhere in the reply's search by legal moves, even if the reply goes on."""
    return countdown_walk(problem, reply) is not None


def countdown_solved(problem: Countdown, reply: str) -> bool:
    """Whether the reply solves the problem: its moves reach the target legally, the move that reaches it is the
    trace's last, and the answer is the target. A search that passes the target and goes on has not found it."""
    k = countdown_walk(problem, reply)
    return k is not None and k == len(trace_steps(reply)) - 1 and parse_answer(reply) == problem.target


def countdown_model_epoch(world, seed: int, kind: str, n: int = 5000) -> list[Example]:
    """Stream of Search's two training sets: the same problems (held-out ones excluded) answered by the solution
    path alone (kind "path") or by the whole depth-first search with its dead ends and backtracking ("search")."""
    if kind not in ("path", "search"):
        raise ValueError(f"kind must be 'path' or 'search', not {kind!r}")
    rng = random.Random(seed)
    examples = []
    while len(examples) < n:
        problem = countdown_problem(rng, max_moves=COUNTDOWN_MOVES)
        if is_held_out(problem):
            continue
        trace, solution = search(problem, max_steps=COUNTDOWN_MOVES)
        examples.append(chat(problem.question, countdown_reply(solution if kind == "path" else trace, problem.target)))
    return examples


def reasoning_model_epoch(world, seed: int, n: int = 5000, mistake_rate: float = 0.15) -> list[Example]:
    """Chat examples: easy and hard chains (half each), every reply a thinking trace, mistake_rate of them with a
    corrected slip. The "never" tier is not trained. (`world` is unused: the signature of an epoch.)"""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        chain = chain_problem(rng, "easy" if i % 2 else "hard")
        examples.append(chat(chain.question, think_trace(chain, rng, mistake_rate)))
    return examples
