"""GSM-Symbolic word problems: answers are computed from the template, and perturbations keep what they claim to."""

import random
import re

from utils.tinyworld import symbolic as S
from utils.tinyworld import tasks

NAMES = ["Ana Bel", "Cor Dax", "Eli Fen"]


def running_totals(problem: S.WordProblem) -> list[int]:
    totals = [problem.start]
    for op, x in problem.moves:
        totals.append(totals[-1] + (x if op == "+" else -x))
    return totals


def test_drawn_problems_read_like_the_training_problems_and_stay_in_range():
    rng = random.Random(0)
    for _ in range(300):
        p = S.draw(rng, NAMES)
        assert 3 <= len(p.moves) <= 4 and all(2 <= x <= 9 for _, x in p.moves)
        assert all(0 <= t <= 99 for t in running_totals(p)) and p.answer == running_totals(p)[-1]
        trained, _, _ = tasks.arithmetic_problem(random.Random(1), NAMES, word=True)
        move = r"(gets \d more|gives away \d)"
        pattern = rf"[A-Z][a-z]+ [A-Z][a-z]+ has \d+ \w+, {move}(, {move})* and {move}\. How many \w+ now\?"
        assert re.fullmatch(pattern, p.text) and re.fullmatch(pattern, trained)


def test_twins_keep_the_template_and_change_person_and_numbers():
    rng = random.Random(1)
    for _ in range(200):
        p = S.draw(rng, NAMES)
        t = S.twin(p, rng, NAMES)
        assert t.item == p.item and [op for op, _ in t.moves] == [op for op, _ in p.moves]
        assert t.person != p.person and (t.start, t.moves) != (p.start, p.moves)
        assert all(0 <= x <= 99 for x in running_totals(t)) and t.answer == running_totals(t)[-1]


def test_question_first_and_distractor_change_the_text_not_the_answer():
    rng = random.Random(2)
    p = S.draw(rng, NAMES)
    first = p.question_first()
    assert first.text.startswith(f"How many {p.item} now?") and first.answer == p.answer
    assert sorted(first.text.split()) == sorted(p.text.split())
    noisy = S.with_distractor(p, rng)
    assert noisy.answer == p.answer and noisy.text != p.text
    assert noisy.distractor in noisy.text and p.item not in noisy.distractor and re.search(r"\d", noisy.distractor)
