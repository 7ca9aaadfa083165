"""The agents plumbing: the SQLite memory, the task stream and its runner, log-probabilities and embeddings."""

import pytest
import torch

from utils.agents import (
    MemoryAgent,
    MemoryStore,
    Task,
    demo_prompt,
    first_line,
    fit_prompt,
    option_logprobs,
    real_world_tasks,
    run_stream,
    running_accuracy,  # fmt: skip
    task_stream,
    tinyworld_tasks,
    toolbox,
)
from utils.embedding import embed
from utils.generation import complete, continuation_logprobs
from utils.models import load_model
from utils.tinyworld.world import load_world


@pytest.fixture(scope="module")
def chat_model():
    return load_model("tinyworld-chat")


def test_memory_survives_reopening(tmp_path):
    path = tmp_path / "memory.sqlite"
    store = MemoryStore(path)
    store.add(0, "capital: Brelos", "Kato", True)
    store.add(1, "language: Brelos", "Oskan")
    store.close()
    reopened = MemoryStore(path)
    assert [(m.step, m.key, m.answer, m.correct) for m in reopened.all()] == [
        (0, "capital: Brelos", "Kato", True), (1, "language: Brelos", "Oskan", None)]  # fmt: skip


def test_interrupted_write_leaves_nothing_half_done(tmp_path):
    store = MemoryStore(tmp_path / "memory.sqlite")
    first = store.add(0, "capital: Brelos", "Kato", True)

    def rows():
        yield (1, "capital: Vos", "Lim", True, "experience")
        raise KeyboardInterrupt  # the user stops the kernel half-way through a batch

    with pytest.raises(KeyboardInterrupt):
        store.add_many(rows(), delete_ids=[first.id])
    assert [m.key for m in store.all()] == ["capital: Brelos"]
    with pytest.raises(ValueError, match="key"):
        store.add(2, "", "x")
    assert len(MemoryStore(tmp_path / "memory.sqlite")) == 1  # a second connection sees the committed state


def test_reflection_replaces_memories_in_one_transaction():
    store = MemoryStore()
    old = [store.add(i, f"capital: C{i}", f"K{i}", True) for i in range(3)]
    store.add_many([(3, "capital: task", "C0 -> K0 | C1 -> K1", True, "note")], delete_ids=[m.id for m in old])
    assert [(m.kind, m.key) for m in store.all()] == [("note", "capital: task")]


def test_task_streams():
    world = load_world()
    source = tinyworld_tasks(world)
    stream = task_stream(source, 200, seed=3)
    assert stream == task_stream(source, 200, seed=3) and stream != task_stream(source, 200, seed=4)
    assert {t.label for t in stream} == set(source)
    assert all(world.lookup(t.query, t.label) == t.answer for t in stream)
    real = real_world_tasks()
    assert len(real) == 5 and all(len(pairs) >= 20 for pairs in real.values())
    assert ("France", "Paris") in real["capital"]


def test_toolbox_is_well_formed():
    tools, questions = toolbox(load_world())
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names)) == 32 and len(questions) == 64
    assert all("{" not in q for q, _ in questions) and {right for _, right in questions} == set(names)


def test_running_accuracy():
    assert running_accuracy([True, False, True, True]) == [1.0, 0.5, 2 / 3, 0.75]


def test_fit_prompt_keeps_the_latest_examples(chat_model):
    _, tok = chat_model
    examples = [(f"Query{i}", f"Answer{i}") for i in range(200)]
    prompt = fit_prompt(tok, examples, "Last", 100)
    assert len(tok(prompt, add_special_tokens=False).input_ids) <= 100
    assert "Query199 -> Answer199\nLast ->" in prompt and "Query0 " not in prompt
    assert fit_prompt(tok, examples[:2], "Last", 100) == demo_prompt(tok, examples[:2], "Last")


def test_complete_logprobs_match_scoring_and_keep_order(chat_model):
    model, tok = chat_model
    world = load_world()
    people = list(world.people)[:6]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
               for q in [f"Where was {p} born?" for p in people] + ["What is 12 * 34?"]]  # fmt: skip
    texts, logprobs = complete(model, tok, prompts, max_new_tokens=12, batch_size=3, logprobs=True)
    assert texts == [complete(model, tok, [p], max_new_tokens=12)[0] for p in prompts]  # sorting by length is undone
    assert texts[0] == f"{world.people[people[0]]['birthplace']}."
    scored = continuation_logprobs(model, tok, prompts, texts)
    assert torch.allclose(torch.stack([lp.sum() for lp in logprobs]), torch.tensor(scored), atol=1e-3)
    assert all(len(lp) == len(tok(t, add_special_tokens=False).input_ids) and (lp <= 0).all()
               for t, lp in zip(texts, logprobs, strict=True))  # one per generated token


def test_run_stream_learns_from_successes(chat_model):
    model, tok = chat_model
    stream = [Task("employer", p, attrs["employer"]) for p, attrs in list(load_world().people.items())[:30]]

    def read(store, task):
        return [(m.key.split(": ")[1], m.answer) for m in store.all()][-4:]

    def write(store, step, task, answer, correct, confidence):
        assert 0 <= confidence <= 1
        if correct:
            store.add(step, task.key, answer, True)

    def seed_memory(step, agents):  # a hook: hand the learning agent one worked example after the first step
        if step == 0:
            agents[1].store.add(0, f"employer: {stream[0].query}", stream[0].answer, True)

    agents = [MemoryAgent("none"), MemoryAgent("memory", read, write)]
    results = run_stream(model, tok, agents, stream, hooks=[seed_memory], progress=False)
    # without examples a bare name is ambiguous: the model names one of the person's attributes, rarely the employer
    assert sum(results["memory"][1:]) >= 0.9 * 29 and sum(results["none"]) <= 0.25 * 30


def test_embeddings_are_unit_vectors(chat_model):
    encoder, tok = load_model("tinyworld-chat", kind="encoder")
    vectors = embed(encoder, tok, ["capital: Brelos", "capital: Vos", "a"], batch_size=2)
    assert vectors.shape == (3, encoder.config.hidden_size)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(embed(encoder, tok, ["capital: Vos"])[0], vectors[1], atol=1e-5)  # padding changes nothing


def test_option_logprobs_match_scoring_the_whole_text(chat_model):
    model, tok = chat_model
    prompt = tok.apply_chat_template([{"role": "user", "content": "Tools:\ncalculator: arithmetic\nWhat is 3 * 4?"}],
                                     add_generation_prompt=True, tokenize=False)  # fmt: skip
    options = ["<|call|>calculator(", "<|call|>weather_in_a_city(", "The answer is 12."]
    expected = continuation_logprobs(model, tok, [prompt] * len(options), options)
    assert torch.allclose(torch.tensor(option_logprobs(model, tok, prompt, options)), torch.tensor(expected), atol=1e-3)


def test_agents_keep_raw_outputs_and_parse_answers(chat_model):
    model, tok = chat_model
    person, attrs = next(iter(load_world().people.items()))
    said = first_line(complete(model, tok, [demo_prompt(tok, [], person)], max_new_tokens=8)[0])
    assert said in attrs.values()  # a person's bare name: the model names one of their attributes
    relation = next(r for r, value in attrs.items() if value == said)
    stream = [Task(relation, person, said)] * 2
    agents = [MemoryAgent("plain"), MemoryAgent("shouting", parse=lambda output: output.strip().upper())]
    results = run_stream(model, tok, agents, stream, progress=False)
    assert results == {"plain": [True, True], "shouting": [False, False]}
    assert agents[0].outputs == agents[1].outputs and agents[0].outputs[0].strip().startswith(said)
