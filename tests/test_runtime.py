"""start(): one banner, threads for the cores present, seeds that make re-runs identical."""

import torch

from utils import runtime


def test_start_prints_one_banner_with_the_profile(capsys, monkeypatch):
    monkeypatch.delenv("WORKBOOK_PROFILE", raising=False)
    session = runtime.start()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "profile: tiny (default)" in out and f"{session.threads} threads" in out
    assert session.device == "cpu"


def test_threads_match_available_cores_unless_fixed(monkeypatch):
    monkeypatch.delenv(runtime.THREADS, raising=False)
    assert runtime.set_threads() == runtime.available_cores() == torch.get_num_threads()
    monkeypatch.setenv(runtime.THREADS, "3")
    assert runtime.set_threads() == 3 == torch.get_num_threads()
    assert runtime.set_threads(2) == 2 == torch.get_num_threads()


def test_seeding_makes_runs_repeatable():
    runtime.seed_everything(7)
    first = torch.randn(4), torch.randint(100, (3,))
    runtime.seed_everything(7)
    second = torch.randn(4), torch.randint(100, (3,))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    runtime.seed_everything(8)
    assert not torch.equal(torch.randn(4), first[0])


def test_session_loads_a_role(capsys):
    model, tokenizer = runtime.start(quiet=True).load("interp")
    assert capsys.readouterr().out == ""
    assert model.config.vocab_size == len(tokenizer)


def test_interact_runs_once_at_the_starting_values_when_headless(monkeypatch):
    import ipywidgets

    from utils.profiles import HEADLESS
    from utils.runtime import interact

    monkeypatch.setenv(HEADLESS, "1")
    calls = []
    assert interact(lambda a, b: calls.append((a, b)), a=ipywidgets.IntSlider(value=3), b=ipywidgets.FloatSlider(value=0.5)) is None
    assert calls == [(3, 0.5)]
