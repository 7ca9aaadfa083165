"""GSM-Symbolic for TinyWorld: word problems kept as templates (a person, an item, a start and the moves), so one
problem can be told again with other names and numbers, with its question first, or with an irrelevant sentence
(GSM-NoOp), and its answer is still computed, never copied.

    problem = draw(rng, names)                 # the distribution tinyworld-math was trained on
    twin(problem, rng, names).text             # same moves, other person and numbers
    problem.question_first().text, with_distractor(problem, rng).text
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from utils.tinyworld.tasks import ITEMS


@dataclass(frozen=True)
class WordProblem:
    person: str
    item: str
    start: int
    moves: tuple[tuple[str, int], ...]  # ("+", 6): gets 6 more; ("-", 2): gives away 2
    asked_first: bool = False
    distractor: str = ""  # a sentence the answer does not depend on

    @property
    def answer(self) -> int:
        return self.start + sum(x if op == "+" else -x for op, x in self.moves)

    @property
    def text(self) -> str:
        moves = [f"gets {x} more" if op == "+" else f"gives away {x}" for op, x in self.moves]
        story = f"{self.person} has {self.start} {self.item}, {', '.join(moves[:-1])} and {moves[-1]}."
        if self.distractor:
            story += f" {self.distractor}"
        question = f"How many {self.item} now?"
        return f"{question} {story}" if self.asked_first else f"{story} {question}"

    def question_first(self) -> WordProblem:
        """The same problem with its question before the story: nothing about the answer changes."""
        return replace(self, asked_first=True)


def _moves(rng: random.Random, start: int, ops: list[str]) -> tuple[tuple[str, int], ...] | None:
    """One-digit amounts for the given operations that keep the running total in 0..99, or None."""
    total, moves = start, []
    for op in ops:
        choices = [x for x in range(2, 10) if 0 <= (total + x if op == "+" else total - x) <= 99]
        if not choices:
            return None
        x = rng.choice(choices)
        total += x if op == "+" else -x
        moves.append((op, x))
    return tuple(moves)


def draw(rng: random.Random, names: list[str]) -> WordProblem:
    """A word problem drawn as `tasks.arithmetic_problem` draws them (3 or 4 one-digit moves, totals in 0..99)."""
    total = start = rng.randint(10, 99)
    moves = []
    for _ in range(rng.choice([3, 4])):
        x = rng.randint(2, 9)
        op = "-" if (rng.random() < 0.5 and total - x >= 0) or total + x > 99 else "+"
        total += x if op == "+" else -x
        moves.append((op, x))
    return WordProblem(rng.choice(names), rng.choice(ITEMS), start, tuple(moves))


def twin(problem: WordProblem, rng: random.Random, names: list[str]) -> WordProblem:
    """The same template (item, number and kind of moves) with another person, start and amounts."""
    ops = [op for op, _ in problem.moves]
    while True:
        start = rng.randint(10, 99)
        moves = _moves(rng, start, ops)
        person = rng.choice([n for n in names if n != problem.person])
        if moves and (start, moves) != (problem.start, problem.moves):
            return replace(problem, person=person, start=start, moves=moves)


def with_distractor(problem: WordProblem, rng: random.Random) -> WordProblem:
    """The problem plus a sentence about another item, with a number in it, that changes nothing."""
    other = rng.choice([i for i in ITEMS if i != problem.item])
    return replace(problem, distractor=f"{problem.person} also has {rng.randint(2, 9)} {other}.")
