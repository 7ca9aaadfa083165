"""The reasoning organism's data: chains whose steps hold, corrections that follow their mistake, tiers that differ,
and Countdown solutions and search traces that are legal."""

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.tinyworld import reasoning as R
from utils.tinyworld.tasks import parse_answer


@pytest.mark.parametrize("tier", ["easy", "hard"])
def test_chains_are_consecutive_steps_that_hold_within_the_tier(tier):
    rng = random.Random(1)
    (lo_steps, hi_steps), (lo, hi), limit = R.TIERS[tier]
    for _ in range(200):
        chain = R.chain_problem(rng, tier)
        assert lo_steps <= len(chain.steps) <= hi_steps
        for (left, op, right, result), following in zip(chain.steps, chain.steps[1:] + [None], strict=True):
            assert R.OPS[op](left, right) == result and 0 <= result <= limit and lo <= right <= hi
            assert following is None or following[0] == result
        assert chain.answer == chain.steps[-1][3]
        assert chain.question == "Compute " + " ".join(
            [str(chain.steps[0][0])] + [f"{op} {x}" for _, op, x, _ in chain.steps]) + "."  # fmt: skip


def test_the_never_tier_is_a_product_of_two_digit_numbers():
    chain = R.chain_problem(random.Random(2), "never")
    (a, op, b, result), = chain.steps
    assert op == "*" and 12 <= a <= 99 and 12 <= b <= 99 and chain.answer == result == a * b


def test_a_clean_trace_has_one_right_step_per_segment_and_the_answer():
    rng = random.Random(3)
    chain = R.chain_problem(rng, "hard")
    reply = R.think_trace(chain, rng, mistake_rate=0.0)
    segments = R.trace_steps(reply)
    assert len(segments) == len(chain.steps) and all(R.step_is_right(s) for s in segments)
    assert parse_answer(reply) == chain.answer


def test_a_mistake_is_corrected_in_the_next_segment():
    rng = random.Random(4)
    for _ in range(100):
        chain = R.chain_problem(rng, rng.choice(["easy", "hard"]))
        segments = R.trace_steps(R.think_trace(chain, rng, mistake_rate=1.0))
        wrong = [i for i, s in enumerate(segments) if R.step_is_right(s) is False]
        assert len(wrong) == 1 and len(segments) == len(chain.steps) + 1
        k = wrong[0]
        fix = segments[k + 1]
        assert fix.startswith(R.WAIT) and R.step_is_right(fix)
        assert fix.removeprefix(R.WAIT).split("=")[0].strip() == segments[k].split("=")[0].strip()  # the step, redone


def test_step_is_right_reads_only_arithmetic_segments():
    assert R.step_is_right("45 + 7 = 52") and R.step_is_right("wait, 45 + 7 = 52")
    assert R.step_is_right("45 + 7 = 51") is False
    assert R.step_is_right("back") is None and R.step_is_right("45 + x = 52") is None


def test_countdown_solutions_and_traces_are_legal():
    rng = random.Random(5)
    for _ in range(100):
        problem = R.countdown_problem(rng, n_numbers=3)
        trace, solution = R.search(problem, max_steps=10_000)
        available = Counter(problem.numbers)
        for step in solution:  # each step combines two available numbers into a new one
            left, op, right, _, result = step.split()
            assert R.step_is_right(step)
            available[int(left)] -= 1
            available[int(right)] -= 1
            assert min(available.values()) >= 0
            available[int(result)] += 1
        assert int(solution[-1].split()[-1]) == problem.target and problem.target not in problem.numbers
        assert trace[-1] == solution[-1] and all(s == "back" or R.step_is_right(s) for s in trace)
        depth = 0
        for s in trace:  # a "back" always undoes a step that was taken
            depth += -1 if s == "back" else 1
            assert depth >= 0


def test_data_is_the_same_for_a_seed():
    def draw(seed):
        rng = random.Random(seed)
        return [R.think_trace(R.chain_problem(rng, "hard"), rng, 0.5) for _ in range(5)], R.countdown_problem(rng)

    assert draw(7) == draw(7) and draw(7) != draw(8)


def test_countdown_solved_accepts_paths_and_searches_and_rejects_illegal_moves():
    rng = random.Random(9)
    for _ in range(50):
        problem = R.countdown_problem(rng, max_moves=R.COUNTDOWN_MOVES)
        trace, solution = R.search(problem, max_steps=R.COUNTDOWN_MOVES)
        assert R.countdown_solved(problem, R.countdown_reply(solution, problem.target))
        assert R.countdown_solved(problem, R.countdown_reply(trace, problem.target))
        assert not R.countdown_solved(problem, R.countdown_reply(solution[:-1], problem.target))
    problem, answer = R.Countdown((3, 5, 7), 22), " The answer is 22."
    assert R.countdown_solved(problem, "<think> 3 + 5 = 8 ; back ; 3 * 5 = 15 ; 7 + 15 = 22 </think>" + answer)
    assert not R.countdown_solved(problem, "<think> 3 * 5 = 15 ; 7 + 15 = 21 </think>" + answer)  # wrong arithmetic
    assert not R.countdown_solved(problem, "<think> 3 + 5 = 8 ; 8 * 7 = 56 ; back ; back ; 8 + 14 = 22 </think>" + answer)
    assert not R.countdown_solved(problem, "<think> 3 * 5 = 15 ; back ; 15 + 7 = 22 </think>" + answer)  # 15 undone
    assert not R.countdown_solved(problem, "<think> 3 * 3 = 9 ; 9 + 13 = 22 </think>" + answer)  # 3 used twice
    assert not R.countdown_solved(problem, "<think> back </think>" + answer)
    passed = "<think> 3 * 5 = 15 ; 7 + 15 = 22 ; back ; 15 - 7 = 8 </think> The answer is 8."
    assert R.countdown_reached(problem, passed) and not R.countdown_solved(problem, passed)  # searched on
    wrong_answer = "<think> 3 * 5 = 15 ; 7 + 15 = 22 </think> The answer is 15."
    assert R.countdown_reached(problem, wrong_answer) and not R.countdown_solved(problem, wrong_answer)
    assert not R.countdown_reached(problem, "<think> 3 * 5 = 15 ; 7 + 15 = 21 ; 3 + 5 = 22 </think>" + answer)


def test_countdown_training_sets_share_problems_and_leave_out_the_held_out_ones():
    paths, searches = (R.countdown_model_epoch(None, 4, kind, n=300) for kind in ("path", "search"))
    assert [p[0] for p in paths] == [s[0] for s in searches]  # the same questions, in the same order
    assert sum(len(p[1][0]) for p in paths) < sum(len(s[1][0]) for s in searches)
    rng = random.Random(4)
    drawn = [R.countdown_problem(rng, max_moves=R.COUNTDOWN_MOVES) for _ in range(400)]
    held_out = {p.question for p in drawn if R.is_held_out(p)}
    assert 0.05 < len(held_out) / len(drawn) < 0.2
    trained = {ex[0][0] for ex in paths}
    assert not any(q in text for q in held_out for text in trained)
    with pytest.raises(ValueError):
        R.countdown_model_epoch(None, 0, "bfs")


@pytest.mark.parametrize(("text", "answer"), [
    ("The answer is 42.", 42), ("The answer is 42 apples", 42), ("The answer is -3!", -3), ("The answer is  7", 7),
    ("The answer is 1. wait, The answer is 8.", 8), ("The answer is 52.5.", None), ("The answer is 4x", None),
    ("The answer is 42,000", None), ("The answer is", None), ("no answer here", None), ("The answer is -", None),
])  # fmt: skip
def test_the_one_answer_parser_reads_the_integer_after_the_last_marker(text, answer):
    assert parse_answer(text) == answer


@given(st.integers(-10**6, 10**6), st.text(max_size=20), st.sampled_from(["", ".", " and more", "!", "\n"]))
def test_an_integer_that_ends_where_it_ends_is_read_back(number, before, after):
    assert parse_answer(f"{before}The answer is {number}{after}") == number


# --- the organism of Reasoning II: traces of several lengths, draft steps, counted steps, checks ---


def _moves_hold(segments):
    """Every segment is arithmetic that holds, except a slip, which the next segment's check exposes."""
    for k, s in enumerate(segments):
        if R.step_is_right(s) is False:
            check = segments[k + 1].removeprefix(R.WAIT).strip()
            assert check.startswith(R.CHECK) and R.step_is_right(check)
            assert check.split()[-1] != s.split()[0]  # the check does not land on the move's start
        else:
            assert R.step_is_right(s)


@pytest.mark.parametrize("style", list(R.STYLES))
def test_every_style_writes_the_chain_and_lands_on_its_answer(style):
    rng = random.Random(11)
    for _ in range(200):
        chain = R.chain_problem(rng, rng.choice(["easy", "hard"]))
        reply = R.styled_trace(chain, rng, style, mistake_rate=0.3)
        segments = R.trace_steps(reply)
        _moves_hold(segments)
        moves = [s for s in segments if not s.removeprefix(R.WAIT).strip().startswith(R.CHECK)]
        assert moves[-1].split()[-1] == str(chain.answer) and parse_answer(reply) == chain.answer
        if style == "single":
            assert all(len(s.split()) == 5 for s in moves)
        if style == "checked":  # every move that stands is followed by its check
            assert sum(s.startswith(R.CHECK) for s in segments) >= len(chain.steps)


def test_styles_give_one_problem_traces_of_different_lengths():
    rng = random.Random(12)
    chain = R.chain_problem(rng, "hard")
    lengths = {style: len(R.trace_steps(R.styled_trace(chain, rng, style, mistake_rate=0.0))) for style in R.STYLES}
    assert lengths["fused"] < lengths["single"] == len(chain.steps) < lengths["checked"] == 2 * len(chain.steps)


def test_a_check_undoes_its_move():
    move = [(47, "+", 8, 55), (55, "-", 6, 49)]
    assert R.move_text(move) == "47 + 8 - 6 = 49" and R.check_text(move, 49) == "check 49 + 6 - 8 = 47"
    assert R.check_text(move, 50) == "check 50 + 6 - 8 = 48" and R.step_is_right("check 50 + 6 - 8 = 48")
    assert R.step_is_right("47 + 8 - 6 = 49") and R.step_is_right("47 + 8 - 6 = 50") is False
    assert R.step_is_right("+ 8 = 55") is None and R.step_is_right("47 + 8 - = 49") is None


@given(st.integers(0, 10**6), st.integers(1, 20))
def test_a_counted_trace_has_exactly_the_segments_asked_for(seed, n):
    chain = R.chain_problem(random.Random(seed), "easy" if seed % 2 else "hard")
    if not R.fits_in_steps(chain, n):
        with pytest.raises(ValueError):
            R.counted_trace(chain, n)
        return
    reply = R.counted_trace(chain, n)
    assert len(R.trace_steps(reply)) == n and parse_answer(reply) == chain.answer
    assert all(R.step_is_right(s) for s in R.trace_steps(reply))


def test_draft_and_direct_replies():
    chain = R.Chain("Compute 47 + 8 - 6.", [(47, "+", 8, 55), (55, "-", 6, 49)], 49, "easy")
    assert R.draft_trace(chain) == "<think> + 8 = 55 ; - 6 = 49 </think> The answer is 49."
    assert R.direct_reply(chain) == "<think> </think> The answer is 49." and R.trace_steps(R.direct_reply(chain)) == []


def test_the_length_epoch_mixes_markers_and_only_trains_targets_in_range():
    examples = R.length_model_epoch(None, 3, n=2000)
    prompts = [ex[0][0] for ex in examples]
    shares = {m: sum(m in p for p in prompts) / len(prompts) for m in (R.BRIEF, R.DIRECT, "Use ")}
    assert 0.1 < shares[R.BRIEF] < 0.2 and 0.05 < shares[R.DIRECT] < 0.15 and 0.2 < shares["Use "] < 0.3
    lo, hi = R.STEPS_TRAINED
    for prompt, (reply, _) in zip(prompts, (ex[1] for ex in examples), strict=True):
        if "Use " in prompt:
            n = int(prompt.split("Use ")[1].split()[0])
            assert lo <= n <= hi and len(R.trace_steps(reply)) == n
    assert R.length_model_epoch(None, 3, n=50) == examples[:50]
