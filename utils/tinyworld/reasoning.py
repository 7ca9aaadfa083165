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

from utils.tinyworld.tasks import Example, chat, chat_prompt, parse_answer

THINK_OPEN, THINK_CLOSE, SEP, WAIT, CHECK = "<think>", "</think>", " ; ", "wait,", "check"
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


# --- Traces of several lengths for one problem (Reasoning II: learning from outcomes, thinking just long enough) ---
# A move is one step or two fused into one segment ("47 + 8 - 6 = 49": shorter, harder); a checked move is followed
# by its inverse ("check 49 + 6 - 8 = 47", longer), which exposes a slip: the check lands away from the move's start
# and the move is redone. Prompt markers ask for draft steps (results only after the operation), a number of
# segments (length control), or no thinking at all.
BRIEF, DIRECT = "Be brief.", "Answer directly."
INVERSE = {"+": "-", "-": "+"}
STYLES = {"single": (0.0, 0.0), "fused": (0.8, 0.0), "checked": (0.0, 1.0), "mixed": (0.35, 0.35)}  # P(fuse), P(check)
STEPS_TRAINED = (2, 10)  # targets of "Use N steps." seen in training; longer ones are out of distribution


def steps_marker(n: int) -> str:
    return f"Use {n} steps."


def move_text(move: list[tuple[int, str, int, int]], result: int | None = None) -> str:
    """One or more consecutive steps as one segment, with their result (or a wrong one): "47 + 8 - 6 = 49"."""
    return " ".join([str(move[0][0])] + [f"{op} {x}" for _, op, x, _ in move]) + f" = {move[-1][3] if result is None else result}"


def check_text(move: list[tuple[int, str, int, int]], result: int) -> str:
    """The move undone from the result it wrote: "check 49 + 6 - 8 = 47" (lands on the move's start if it was right)."""
    value = result
    for _, op, x, _ in reversed(move):
        value = OPS[INVERSE[op]](value, x)
    return f"{CHECK} {result} " + " ".join(f"{INVERSE[op]} {x}" for _, op, x, _ in reversed(move)) + f" = {value}"


def write_moves(moves: list[list[tuple]], checked: list[bool], rng: random.Random, mistake_rate: float,
                recheck_rate: float = 0.05) -> list[str]:  # fmt: skip
    """Segments for the moves. With probability mistake_rate one move is first written with a slip; a slip is
    always followed by a check (after "wait," where the move is not checked anyway) and the move redone. Right moves
    that are not checked get a "wait, check" with probability recheck_rate, so that "wait" does not mean "wrong"."""
    slipped = rng.randrange(len(moves)) if moves and rng.random() < mistake_rate else None
    segments = []
    for k, (move, check) in enumerate(zip(moves, checked, strict=True)):
        if k == slipped:
            wrong = slip(rng, move[-1][3])
            segments += [move_text(move, wrong), ("" if check else f"{WAIT} ") + check_text(move, wrong)]
        segments.append(move_text(move))
        if check:
            segments.append(check_text(move, move[-1][3]))
        elif rng.random() < recheck_rate:
            segments.append(f"{WAIT} {check_text(move, move[-1][3])}")
    return segments


def styled_trace(chain: Chain, rng: random.Random, style: str, mistake_rate: float = 0.15) -> str:
    """A thinking trace in a style of STYLES: each move fuses two steps with probability P(fuse) and is checked with
    probability P(check)."""
    p_fuse, p_check = STYLES[style]
    moves, i = [], 0
    while i < len(chain.steps):
        width = 2 if i + 1 < len(chain.steps) and rng.random() < p_fuse else 1
        moves.append(list(chain.steps[i : i + width]))
        i += width
    checked = [rng.random() < p_check for _ in moves]
    return f"{THINK_OPEN} {SEP.join(write_moves(moves, checked, rng, mistake_rate))} {THINK_CLOSE} The answer is {chain.answer}."


def fits_in_steps(chain: Chain, n: int) -> bool:
    k = len(chain.steps)
    return (k + 1) // 2 <= n <= 2 * k


def counted_trace(chain: Chain, n: int) -> str:
    """A trace of exactly n segments: the first steps fused in pairs to shorten it, or the first moves checked to
    lengthen it; no slips."""
    if not fits_in_steps(chain, n):
        raise ValueError(f"{len(chain.steps)} steps cannot be written in {n} segments")
    k, steps = len(chain.steps), list(chain.steps)
    fused = max(0, k - n)
    moves = [steps[2 * j : 2 * j + 2] for j in range(fused)] + [[s] for s in steps[2 * fused :]]
    checked = [j < n - k for j in range(len(moves))]
    segments = write_moves(moves, checked, random.Random(0), mistake_rate=0.0, recheck_rate=0.0)
    return f"{THINK_OPEN} {SEP.join(segments)} {THINK_CLOSE} The answer is {chain.answer}."


def draft_trace(chain: Chain) -> str:
    """Chain of Draft: each step as its operation and result only, "+ 8 = 55"."""
    segments = [f"{op} {x} = {result}" for _, op, x, result in chain.steps]
    return f"{THINK_OPEN} {SEP.join(segments)} {THINK_CLOSE} The answer is {chain.answer}."


def direct_reply(chain: Chain) -> str:
    return f"{THINK_OPEN} {THINK_CLOSE} The answer is {chain.answer}."


def trace_steps(reply: str) -> list[str]:
    """The segments of a reply's thinking (empty if it has no <think> block)."""
    if THINK_OPEN not in reply:
        return []
    inside = reply.split(THINK_OPEN, 1)[1].split(THINK_CLOSE, 1)[0]
    return [s.strip() for s in inside.split(SEP.strip()) if s.strip()]


def step_is_right(segment: str) -> bool | None:
    """Whether a segment "a op b = c", "a op b op c = d" or "check ... = a" (optionally after "wait,") is arithmetic
    that holds, read left to right; None if it is not one."""
    parts = segment.removeprefix(WAIT).split()
    parts = parts[1:] if parts[:1] == [CHECK] else parts
    if len(parts) < 5 or len(parts) % 2 == 0 or parts[-2] != "=" or any(op not in OPS for op in parts[1:-2:2]):
        return None
    try:
        numbers = [int(x) for x in parts[0:-2:2]] + [int(parts[-1])]
    except ValueError:
        return None
    value = numbers[0]
    for op, x in zip(parts[1:-2:2], numbers[1:-1], strict=True):
        value = OPS[op](value, x)
    return value == numbers[-1]


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


def length_model_epoch(world, seed: int, n: int = 5000) -> list[Example]:
    """Chat examples for the reasoning organism of Reasoning II: easy and hard chains (half each); half of the
    prompts plain, answered in a style drawn from STYLES (so that right answers to one problem vary in length),
    the rest with a marker: "Be brief." (draft steps), "Use N steps." (exactly N segments, N in STEPS_TRAINED) or
    "Answer directly." (no thinking)."""
    rng = random.Random(seed)
    examples = []
    while len(examples) < n:
        chain = chain_problem(rng, "easy" if len(examples) % 2 else "hard")
        kind = rng.choices(["plain", "brief", "steps", "direct"], weights=[0.5, 0.15, 0.25, 0.1])[0]
        if kind == "plain":
            style = rng.choices(list(STYLES), weights=[0.35, 0.2, 0.2, 0.25])[0]
            examples.append(chat(chain.question, styled_trace(chain, rng, style)))
        elif kind == "brief":
            examples.append(chat(f"{chain.question} {BRIEF}", draft_trace(chain)))
        elif kind == "direct":
            examples.append(chat(f"{chain.question} {DIRECT}", direct_reply(chain)))
        else:
            lo, hi = STEPS_TRAINED
            targets = [m for m in range(lo, hi + 1) if fits_in_steps(chain, m)]
            target = rng.choice(targets)
            examples.append(chat(f"{chain.question} {steps_marker(target)}", counted_trace(chain, target)))
    return examples


def outcome_problems(seed: int, n: int = 4000, tier: str = "hard") -> list[tuple[str, int]]:
    """(prompt, answer) pairs for learning from outcomes: chains of a tier asked as the organism is asked, and the
    answer a reward checks. Evaluation draws its problems from other seeds."""
    rng = random.Random(seed)
    return [(chat_prompt(c.question), c.answer) for c in (chain_problem(rng, tier) for _ in range(n))]
