"""The grader machinery (utils/grading/core.py) and homework 00's graders: references pass, correct implementations
written differently pass, wrong ones are rejected with a readable, targeted message."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from grading_helpers import memo, not_done, passes, rejects
from hypothesis import strategies as st

from utils import grading
from utils.grading import ExerciseNotDone, GradingError, core
from utils.grading import hw00 as ref

# --- the machinery: copies, mutation, side effects on models, return types, messages -------------------------


@dataclass
class Box:
    value: int


@pytest.mark.parametrize(
    ("arg", "mutate", "advice"),
    [
        ([3, 1, 2], lambda xs: xs.sort(), "sorted(x)"),
        ([3, 1, 2], lambda xs: xs.append(4), "sorted(x)"),
        ({"a": 1}, lambda d: d.update(b=2), "new dict"),
        (Box(1), lambda b: setattr(b, "value", 2), "deepcopy"),
        (([1], [2]), lambda t: t[0].append(3), "deepcopy"),
        (torch.ones(3), lambda x: x.mul_(2), "clone"),
        (torch.tensor([1.0, float("nan")]), lambda x: x.nan_to_num_(0.0), "clone"),
        (np.ones(3), lambda a: a.__setitem__(0, 5.0), "deepcopy"),
    ],
    ids=["sort", "append", "dict", "object", "nested", "tensor", "nan", "numpy"],
)
def test_an_input_changed_in_place_is_reported_by_name(arg, mutate, advice):
    def student(xs, k):
        mutate(xs)
        return k

    before = repr(arg)
    with pytest.raises(GradingError, match="modified its input `xs` in place") as info:
        core.call(student, (arg, 1), "student")
    assert advice in str(info.value)
    assert repr(arg) == before  # the student worked on a copy: the caller's case is untouched


def test_the_reference_runs_first_on_pristine_inputs(capsys):
    seen = []

    def reference(xs):
        seen.append(list(xs))
        return torch.tensor(sorted(xs))

    def sorts_in_place(xs):
        xs.sort()
        return torch.tensor(xs)

    cases = [([3.0, 1.0, 2.0],), ([5.0, 4.0],)]
    with pytest.raises(GradingError, match="in place"):
        core.check_property(sorts_in_place, reference, "sorted_values", st.sampled_from(cases), cases)
    assert seen == [[3.0, 1.0, 2.0]] and cases[0][0] == [3.0, 1.0, 2.0]
    core.check_property(lambda xs: torch.tensor(sorted(xs)), reference, "sorted_values", st.sampled_from(cases))
    assert "✓" in capsys.readouterr().out


def test_mutable_arguments_are_passed_as_they_are():
    store = []
    core.call(lambda s, x: s.append(x), (store, 1), "write", mutable=(0,))
    assert store == [1]


def _model_check(fn):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    cases = [(model, torch.randn(3, 4)), (model, torch.randn(5, 4))]
    core.check_property(fn, lambda m, x: m(x), "forward", st.sampled_from(cases), max_examples=5)
    return model


def _hooked(register):
    def student(model, x):
        register(model)
        return model(x)

    return student


def _hook_tables_are_empty(model):
    return all(not table for _, _, table in core._hook_tables([model]))


@pytest.mark.parametrize(
    ("register", "where"),
    [
        (lambda m: m[0].register_forward_hook(lambda mod, i, o: o), "`0`"),
        (lambda m: m[2].register_forward_pre_hook(lambda mod, i: None), "`2`"),
        (lambda m: m.register_forward_hook(lambda mod, a, k, o: o, with_kwargs=True), "`Sequential`"),
        (lambda m: m[0].register_full_backward_hook(lambda mod, gi, go: None), "`0`"),
        (lambda m: torch.nn.modules.module.register_module_forward_hook(lambda mod, i, o: o), "global"),
    ],
    ids=["forward", "pre", "kwargs", "backward", "global"],
)
def test_a_hook_left_on_the_model_is_reported_and_removed(register, where):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(GradingError, match="left a hook registered") as info:
        core.call(_hooked(register), (model, torch.randn(2, 4)), "forward")
    assert where in str(info.value)
    assert _hook_tables_are_empty(model)


def test_a_hook_that_is_removed_passes_and_earlier_hooks_survive(capsys):
    def tidy(model, x):
        handle = model[0].register_forward_hook(lambda mod, i, o: o * 2)
        try:
            return model[2](model[1](model[0](x)) / 2)
        finally:
            handle.remove()

    passes(_model_check, tidy, capsys)
    model = torch.nn.Linear(2, 2)
    handle = model.register_forward_hook(lambda mod, i, o: o)
    core.call(lambda m: m(torch.ones(2)), (model,), "forward")
    assert len(model._forward_hooks) == 1
    handle.remove()


def test_weights_changed_in_place_and_training_mode_are_reported_and_undone(monkeypatch):
    model = torch.nn.Linear(2, 2).eval()
    weight = model.weight.detach().clone()

    def edits(m):
        with torch.no_grad():
            m.weight.mul_(0)
        return m(torch.ones(2))

    with pytest.raises(GradingError, match="weights in place"):
        core.call(edits, (model,), "forward")
    assert torch.equal(model.weight, weight)
    with pytest.raises(GradingError, match="training mode"):
        core.call(lambda m: m.train()(torch.ones(2)), (model,), "forward")
    assert not model.training
    monkeypatch.setattr(core.ModuleGuard, "COPY_LIMIT", 0)  # a model too large to copy: edits are seen, not undone
    with pytest.raises(GradingError, match="reload the model"):
        core.call(edits, (model,), "forward")
    monkeypatch.undo()
    with pytest.raises(GradingError, match="left a hook"), core.guard_modules(model, name="steer"):
        model.register_forward_hook(lambda mod, i, o: o)  # a model the function reaches through a global
    assert _hook_tables_are_empty(model)


@pytest.mark.parametrize(
    ("out", "fragment"),
    [
        ({"a": 1}, "dict with keys"),
        ((x for x in range(3)), "generator"),
        (None, "NoneType"),
        ([[1, 2, 3]], "list"),
        (np.ones(3), "numpy array"),
    ],
)
def test_a_wrong_return_type_is_one_readable_line(out, fragment):
    rejects(lambda fn: core.check_property(fn, lambda x: x * 2, "double", st.just((torch.ones(3),))),
            lambda x: out, "should return a torch.Tensor", fragment)  # fmt: skip


def test_expect_list_and_graded_turn_odd_outputs_into_messages():
    assert core.expect_list((1, 2), "f") == [1, 2] and core.expect_list(torch.tensor([1, 2]), "f") == [1, 2]
    with pytest.raises(GradingError, match="generator"):
        core.expect_list((i for i in range(2)), "f")
    with pytest.raises(GradingError, match="returned 1 items, expected 2"):
        core.expect_list([1], "f", length=2)

    @core.graded("pairs")
    def check(out):
        return [(a, b) for a, b in out]  # a flat triple cannot be unpacked into a pair

    with pytest.raises(GradingError, match="pairs: the check could not read your function's output"):
        check([(1, 2, 3)])


def test_nan_messages_are_generic_unless_the_check_says_more():
    cases = [(torch.tensor([[1.0, 2.0]]),), (torch.tensor([[3.0, 5.0], [1.0, 1.0]]),)]
    error = rejects(lambda fn: core.check_property(fn, lambda x: x.mean(0), "mean", st.sampled_from(cases)),
                    lambda x: x[:0].mean(0), "NaN", "0/0")  # a mean over an empty group  # fmt: skip
    assert "logits" not in str(error)
    rejects(lambda fn: core.check_property(fn, lambda x: x.mean(0), "mean", st.sampled_from(cases),
                                                    nonfinite_hint="divide by n."),
            lambda x: x.sum(0) / 0, "inf", "divide by n.")  # fmt: skip


def test_a_hint_whose_wrong_implementation_cannot_run_is_skipped():
    def broken_wrong(x):
        raise RuntimeError("this wrong implementation only runs on 2-d inputs")

    cases = [(torch.ones(3),), (torch.arange(4.0),)]
    rejects(lambda fn: core.check_property(fn, lambda x: x * 2, "double", st.sampled_from(cases),
                                                    hints=[(core.same_as(broken_wrong), "no")]),
            lambda x: x * 3, "values differ")  # fmt: skip


# --- homework 00: failure modes every grader must turn into a readable message ------------------------------

CHECKS = [
    (grading.check_softmax_with_temperature, ref.softmax_with_temperature),
    (grading.check_top_p_filter, ref.top_p_filter),
    (grading.check_sequence_logprob, ref.sequence_logprob),
]


@pytest.mark.parametrize(("check", "reference"), CHECKS, ids=lambda x: getattr(x, "__name__", ""))
def test_generic_failures_are_explained(check, reference, capsys):
    passes(check, reference, capsys)
    rejects(check, lambda *a: torch.zeros(3))
    rejects(check, lambda *a: reference(*[torch.zeros_like(a[0]), *a[1:]]))  # ignores its input
    rejects(check, lambda *a: reference(*a).mean(), "shape")
    rejects(check, lambda *a: reference(*a).tolist(), "torch.Tensor")
    rejects(check, lambda *a: reference(*a).long(), "dtype")
    rejects(check, lambda *a: reference(*a) * float("nan"), "NaN")
    rejects(check, lambda *a: 1 / 0, "ZeroDivisionError")
    rejects(check, lambda *a: {"out": reference(*a)}, "dict")
    rejects(check, lambda *a: (x for x in reference(*a)), "generator")
    rejects(check, "not a function", "Pass the function itself")
    with pytest.raises(ExerciseNotDone, match="not implemented yet"):
        check(not_done)


def test_constant_output_never_passes():
    """A function that memorised one correct answer fails on the other inputs."""
    first = torch.softmax(torch.tensor([2.0, 1.0, 0.0]), dim=-1)
    rejects(grading.check_softmax_with_temperature, lambda x, t: first.expand_as(x).clone() if x.shape == (3,) else x)


def test_message_renders_without_traceback_in_ipython():
    with pytest.raises(GradingError) as info:
        grading.check_softmax_with_temperature(lambda x, t: torch.softmax(x, -1))
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and "divide the logits by it" in lines[0] and "Traceback" not in lines[0]


# --- homework 00: targeted hints, and correct implementations written differently ---------------------------


def _naive_softmax(x):
    return torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)


def _softmax_by_hand_float64(x, t):
    z = x.double() / t
    e = (z - z.max(dim=-1, keepdim=True).values).exp()
    return e / e.sum(-1, keepdim=True)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda x, t: torch.softmax(x, dim=-1), "no effect"),
        (lambda x, t: torch.softmax(x * t, dim=-1), "don't multiply"),
        (lambda x, t: torch.softmax(x / t, dim=0), "last dimension"),
        (lambda x, t: torch.exp(x / t - (x / t).amax(-1, keepdim=True)), "sum to 1"),
        (lambda x, t: x / t, "return probabilities"),
        (lambda x, t: _naive_softmax(x / t), "subtract each row's maximum"),  # NaN at 1000 and at -1000
        (lambda x, t: torch.exp(x / t) / (torch.exp(x / t).sum(-1, keepdim=True) + 1e-30), "exp() overflows"),
        (memo(ref.softmax_with_temperature), ""),
        (lambda x, t: torch.softmax(x / t, dim=-1) if t <= 1 else torch.softmax(x, dim=-1), "no effect"),  # T > 1 only
        (lambda x, t: torch.softmax(x[..., :1].expand_as(x) / t, dim=-1), ""),  # reads the first logit only
    ],
)
def test_softmax_with_temperature_hints(wrong, hint):
    rejects(grading.check_softmax_with_temperature, wrong, hint)


def _softmax_numpy(x, t):
    z = x.numpy().astype(np.float64) / t
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return torch.from_numpy(e / e.sum(axis=-1, keepdims=True)).to(x.dtype)


def _softmax_log_domain_float32(x, t):
    return (x / t - torch.logsumexp(x / t, dim=-1, keepdim=True)).exp()


@pytest.mark.parametrize("right", [_softmax_by_hand_float64, _softmax_numpy, _softmax_log_domain_float32])
def test_softmax_with_temperature_accepts_other_correct_implementations(right, capsys):
    passes(grading.check_softmax_with_temperature, right, capsys)


def _in_place_top_p(logits, p):
    drop = ~torch.isfinite(ref.top_p_filter(logits, p))
    logits[drop] = float("-inf")
    return logits


def _by_position(logits, p):
    """Cuts the nucleus at a position of the sorted order: drops part of a tie at the boundary."""
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
    drop_sorted = sorted_probs.cumsum(dim=-1) - sorted_probs >= p
    return logits.masked_fill(torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted), float("-inf"))


def _naive_top_p(logits, p):
    probs = _naive_softmax(logits)
    sorted_probs = probs.sort(dim=-1, descending=True).values
    kept = sorted_probs.cumsum(dim=-1) - sorted_probs < p
    threshold = sorted_probs.masked_fill(~kept, float("inf")).amin(dim=-1, keepdim=True)
    return logits.masked_fill(probs < threshold, float("-inf"))


def _top_p_along_dim_1(logits, p):  # written for [batch, vocab] only
    probs = torch.softmax(logits, dim=1)
    sorted_probs = probs.sort(dim=1, descending=True).values
    kept = sorted_probs.cumsum(dim=1) - sorted_probs < p
    threshold = sorted_probs.masked_fill(~kept, float("inf")).amin(dim=1, keepdim=True)
    return logits.masked_fill(probs < threshold, float("-inf"))


def _top_p_pairwise(logits, p):
    """Another algorithm: keep a token if the tokens strictly more probable than it hold less than p."""
    probs = torch.softmax(logits.double(), dim=-1)
    more_probable = (probs[..., None, :] > probs[..., :, None]).double()
    mass_above = (more_probable * probs[..., None, :]).sum(-1)
    return logits.masked_fill(mass_above >= p, float("-inf"))


def _top_p_numpy_loop(logits, p):
    flat = logits.reshape(-1, logits.shape[-1]).numpy().astype(np.float64)
    out = np.full_like(flat, -np.inf)
    for row, values in enumerate(flat):
        probs = np.exp(values - values.max())
        probs /= probs.sum()
        mass = 0.0
        for j in np.argsort(-probs, kind="stable"):
            if mass >= p:
                break
            threshold, mass = probs[j], mass + probs[j]
        out[row] = np.where(probs >= threshold, values, -np.inf)
    return torch.from_numpy(out).float().reshape(logits.shape)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (ref._drop_crossing_token, "past p"),
        (ref._unsorted, "sort tokens"),
        (lambda x, p: torch.softmax(ref.top_p_filter(x, p), dim=-1), "not probabilities"),
        (lambda x, p: x.clone(), "infinite"),  # no filtering at all
        (lambda x, p: ref.top_p_filter(x, p / 2), ""),
        (_by_position, "tied"),
        (_naive_top_p, "exp() overflows"),
        (_in_place_top_p, "in place"),
        (_top_p_along_dim_1, ""),
        (memo(ref.top_p_filter), ""),
        (lambda x, p: x.masked_fill(x < x.amax(-1, keepdim=True), float("-inf")), ""),  # greedy: the top token only
    ],
)
def test_top_p_filter_hints(wrong, hint):
    rejects(grading.check_top_p_filter, wrong, hint)


def _top_p_float64_cumsum(logits, p):
    """The reference's algorithm with probabilities in float64: rounding differs at an exact cut."""
    probs = torch.softmax(logits.double(), dim=-1)
    sorted_probs = probs.sort(dim=-1, descending=True).values
    kept = sorted_probs.cumsum(dim=-1) - sorted_probs < p
    threshold = sorted_probs.masked_fill(~kept, float("inf")).amin(dim=-1, keepdim=True)
    return logits.masked_fill(probs < threshold, float("-inf"))


@pytest.mark.parametrize("right", [_top_p_pairwise, _top_p_numpy_loop, _top_p_float64_cumsum])
def test_top_p_filter_accepts_other_correct_implementations(right, capsys):
    passes(grading.check_top_p_filter, right, capsys)


def _logprob_loops(logits, tokens):
    totals = []
    for row, ids in zip(logits.double(), tokens, strict=True):
        total = 0.0
        for t in range(1, len(ids)):
            z = row[t - 1]
            total += (z[ids[t]] - z.max() - (z - z.max()).exp().sum().log()).item()
        totals.append(total)
    return torch.tensor(totals, dtype=torch.float64)


def _shifts_in_place(logits, tokens):
    logits -= logits.amax(-1, keepdim=True)
    return ref.sequence_logprob(logits, tokens)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda lg, t: torch.log_softmax(lg, -1)[:, :-1].gather(-1, t[:, :-1, None]).squeeze(-1).sum(-1), "shift by one"),
        (lambda lg, t: torch.log_softmax(lg, -1).gather(-1, t[..., None]).squeeze(-1).sum(-1), "first token"),
        (lambda lg, t: lg[:, :-1].gather(-1, t[:, 1:, None]).squeeze(-1).sum(-1), "log_softmax"),
        (lambda lg, t: ref.sequence_logprob(lg, t) / (t.shape[1] - 1), "don't average"),
        (lambda lg, t: ref.sequence_logprob(lg, t).exp(), "values differ"),
        (lambda lg, t: torch.softmax(lg[:, :-1], -1).log().gather(-1, t[:, 1:, None]).squeeze(-1).sum(-1), "log_softmax"),
        (lambda lg, t: (lg[:, :-1] - lg[:, :-1].exp().sum(-1, keepdim=True).log()).gather(-1, t[:, 1:, None])
         .squeeze(-1).sum(-1), "log-sum-exp"),
        (_shifts_in_place, "in place"),
        (memo(ref.sequence_logprob), ""),
        (lambda lg, t: ref.sequence_logprob(lg[:1].expand_as(lg), t), ""),  # the first sequence's logits for all
    ],
)  # fmt: skip
def test_sequence_logprob_hints(wrong, hint):
    rejects(grading.check_sequence_logprob, wrong, hint)


def _logprob_logsumexp(logits, tokens):
    picked = logits[:, :-1].gather(-1, tokens[:, 1:, None]).squeeze(-1)
    return (picked - torch.logsumexp(logits[:, :-1], dim=-1)).sum(-1)


def _logprob_numpy(logits, tokens):
    z = logits.numpy().astype(np.float64)[:, :-1]
    log_z = z.max(-1) + np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))
    picked = np.take_along_axis(z, tokens.numpy()[:, 1:, None], -1)[..., 0]
    return torch.from_numpy((picked - log_z).sum(-1))


@pytest.mark.parametrize("right", [_logprob_loops, _logprob_logsumexp, _logprob_numpy])
def test_sequence_logprob_accepts_other_correct_implementations(right, capsys):
    passes(grading.check_sequence_logprob, right, capsys)


def test_messages_about_a_model_or_a_multi_line_error_stay_on_one_line():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())

    def fails(m, x):
        raise ValueError("first line\nsecond line")

    with pytest.raises(GradingError) as info:
        core.call(fails, (model, torch.ones(2)), "forward")
    assert "\n" not in str(info.value) and "torch module (Sequential)" in str(info.value)


# --- property-based checks: shrinking, seeding, state between calls -----------------------------------------

INTS = st.lists(st.integers(-50, 50), max_size=8).map(lambda xs: (xs,))


def _sum_check(fn):
    def one(args):
        want, out = sum(args[0]), core.call(fn, args, "total")
        if out != want:
            raise GradingError(f"total returned {out}, expected {want}.")

    return core.holds("total", INTS, one, reference=sum)


def test_a_failure_is_reported_on_the_smallest_input():
    error = rejects(_sum_check, lambda xs: sum(x for x in xs if x < 7), "Smallest failing input found")
    assert str(error).endswith("total(iterable=[7]).")  # shrunk to one element, at the cut


def test_an_unfinished_exercise_stops_at_the_first_call():
    calls = []

    def stub(xs):
        calls.append(xs)
        raise NotImplementedError

    with pytest.raises(ExerciseNotDone):
        _sum_check(stub)
    assert len(calls) == 1


def test_a_function_that_keeps_state_between_calls_is_told_so():
    seen = []

    def stateful(xs):
        seen.append(1)
        return sum(xs) + (len(seen) == 4)  # wrong once: the same input passes when tried again

    rejects(_sum_check, stateful, "keep state between calls")


def test_draws_are_the_same_every_run_unless_fresh_draws_are_asked_for(monkeypatch):
    def drawn():
        seen = []
        core.holds("draws", INTS, lambda args: seen.append(list(args[0])), max_examples=20)
        return seen

    assert drawn() == drawn()
    monkeypatch.setenv(core.FRESH_DRAWS, "1")
    assert drawn() != drawn()


def test_show_prints_small_values_in_full_and_describes_large_ones():
    assert core.show(torch.tensor([1.0, 2.5])) == "tensor([1. , 2.5], dtype=torch.float32)"
    assert "shape (40,)" in core.show(torch.zeros(40))
    assert core.show_call("f", lambda xs, k: None, ([1, 2], 0.5)) == "f(xs=[1, 2], k=0.5)"
    assert core.tolerance(torch.float64, torch.float32) == core.tolerance(torch.float32)


def test_a_patched_forward_is_reported_and_put_back():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    original = model[0].forward

    def patches(m):
        m[0].forward = lambda x: x * 0
        return m(torch.ones(2))

    with pytest.raises(GradingError, match="replaced `forward` on `0`"):
        core.call(patches, (model,), "forward")
    assert "forward" not in vars(model[0]) and model[0].forward == original


def test_hooks_transformers_installs_itself_are_neither_reported_nor_removed():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=11, n_positions=8)).eval()
    ids = torch.tensor([[1, 2, 3]])
    out = core.call(lambda m, x: m(x, output_hidden_states=True).hidden_states[-1], (model, ids), "hidden")
    assert out.shape == (1, 3, 8)
    assert model(ids, output_hidden_states=True).hidden_states[-1].shape == (1, 3, 8)  # still there, not doubled
    assert len(model(ids, output_hidden_states=True).hidden_states) == 2


def test_a_swapped_submodule_or_a_class_forward_is_put_back():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    first = model[0]

    def swaps(m):
        m[0] = torch.nn.Identity()
        return m(torch.ones(2))

    with pytest.raises(GradingError, match="submodules of `Sequential`"):
        core.call(swaps, (model,), "forward")
    assert model[0] is first

    class Doubler(torch.nn.Module):
        def forward(self, x):
            return 2 * x

    doubler, original = Doubler(), Doubler.forward
    with pytest.raises(GradingError, match="`Doubler.forward`"):
        core.call(lambda m: setattr(Doubler, "forward", lambda self, x: x) or m(torch.ones(1)), (doubler,), "f")
    assert Doubler.forward is original


def test_a_mistake_is_named_only_where_the_probes_confirm_it():
    mistakes = [(lambda x: x * 0, "returns zeros"), (lambda x: x - x.mean(), "centres")]
    close = lambda got, wrong, args: torch.equal(got, wrong)  # noqa: E731
    args, probe = (torch.ones(2),), (torch.tensor([1.0, 3.0]),)  # both mistakes give [0, 0] on ones; not on the probe
    assert core.confirmed(lambda x: x * 0, "f", mistakes, torch.zeros(2), args, [probe], close) == ["returns zeros"]
    assert core.confirmed(lambda x: x - x.mean(), "f", mistakes, torch.zeros(2), args, [probe], close) == ["centres"]
    assert core.confirmed(lambda x: 1 / 0, "f", mistakes, torch.zeros(2), args, [probe], close) == []
