"""The fine-tuning helper and the ability battery that lectures 03-06 share."""

import pytest
import torch

from utils.battery import measure, refused, tinyworld_battery, valid_json
from utils.finetune import chat_example, finetune, tokenize_example
from utils.models import load_model
from utils.tinyworld import tasks
from utils.tinyworld.world import load_world


@pytest.fixture(scope="module")
def chat_model():
    return load_model("tinyworld-chat")


@pytest.fixture(scope="module")
def world():
    return load_world()


def velsh_training(world, tok, n=40):
    table = tasks.translation_table(world)
    return [chat_example(tok, *tasks.velsh_example(f, table)) for f in world.facts[:n]]


def test_chat_example_renders_the_chat_template_and_trains_only_the_reply(chat_model):
    _, tok = chat_model
    example = chat_example(tok, "Where was X born?", "Tumuki.")
    assert example == tasks.chat("Where was X born?", "Tumuki.")  # TinyWorld's own rendering of a chat turn
    ids, labels = tokenize_example(tok, example)
    prompt_length = len(tok(example[0][0], add_special_tokens=False).input_ids)
    assert len(ids) == len(labels) and labels[:prompt_length] == [-100] * prompt_length
    assert labels[prompt_length:] == ids[prompt_length:] and tok.decode(ids[prompt_length:]) == "Tumuki.<|end|>"


def test_finetune_learns_leaves_the_base_alone_and_is_deterministic(chat_model, world):
    model, tok = chat_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    examples = velsh_training(world, tok)
    tuned, log = finetune(model, tok, examples, steps=12, lr=1e-3, batch_size=8, progress=False)
    again, log_again = finetune(model, tok, examples, steps=12, lr=1e-3, batch_size=8, progress=False)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the base model is untouched
    assert log.loss == log_again.loss and len(log.loss) == 12
    assert log.loss[-1] < log.loss[0] / 2
    assert not tuned.training and tuned is not model


def test_lora_trains_adapters_only_and_returns_a_plain_merged_model(chat_model, world):
    model, tok = chat_model
    tuned, log = finetune(model, tok, velsh_training(world, tok), steps=6, lr=3e-3, batch_size=8, lora_rank=2,
                          progress=False)  # fmt: skip
    assert type(tuned) is type(model) and set(tuned.state_dict()) == set(model.state_dict())
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    assert changed and all("wte" not in k and "ln" not in k for k in changed)  # linear weights only
    assert log.loss[-1] < log.loss[0]
    _, again = finetune(tuned, tok, velsh_training(world, tok), steps=2, lr=1e-3, batch_size=8, progress=False)
    assert len(again.loss) == 2  # a merged model can be fine-tuned again (peft leaves its weights frozen)


def test_train_only_changes_the_named_weights_alone(chat_model, world):
    """One-matrix fine-tuning (model editing's constrained baseline): every other weight stays as it was."""
    model, tok = chat_model
    name = "transformer.h.1.mlp.c_proj.weight"
    tuned, log = finetune(model, tok, velsh_training(world, tok, n=8), steps=4, lr=1e-3, batch_size=4,
                          train_only=[name], progress=False)  # fmt: skip
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    assert changed == [name] and log.loss[-1] < log.loss[0]
    with pytest.raises(ValueError, match="no parameters named"):
        finetune(model, tok, velsh_training(world, tok, n=2), steps=1, lr=1e-3, train_only=["h.1.mlp"], progress=False)
    with pytest.raises(ValueError, match="lora_rank"):
        finetune(model, tok, velsh_training(world, tok, n=2), steps=1, lr=1e-3, train_only=[name], lora_rank=2,
                 progress=False)  # fmt: skip


def test_finetune_evaluates_on_schedule_and_rejects_bad_input(chat_model, world):
    model, tok = chat_model
    examples = velsh_training(world, tok, n=8)
    _, log = finetune(model, tok, examples, steps=5, lr=1e-3, batch_size=4, evaluate=lambda m: m.training,
                      eval_every=2, progress=False)  # fmt: skip
    assert log.evals == [(2, False), (4, False), (5, False)]  # evaluated in eval mode
    ids, labels = tokenize_example(tok, examples[0])
    assert tokenize_example(tok, (ids, labels)) == (ids, labels)
    with pytest.raises(ValueError, match="one label per id"):
        finetune(model, tok, [(ids, labels[:-1])], steps=2, lr=1e-3)
    with pytest.raises(ValueError, match="no training examples"):
        finetune(model, tok, [], steps=5, lr=1e-3)
    with pytest.raises(ValueError, match="steps"):
        finetune(model, tok, examples, steps=0, lr=1e-3)
    with pytest.raises(ValueError, match="trained segment"):
        finetune(model, tok, [[(text, False) for text, _ in ex] for ex in examples], steps=2, lr=1e-3)


def test_battery_measures_the_chat_model_item_by_item(chat_model, world):
    model, tok = chat_model
    abilities = tinyworld_battery(world, tok, n=20)
    outcomes = measure(model, tok, abilities)
    assert list(outcomes) == [a.name for a in abilities] and all(len(v) == 20 for v in outcomes.values())
    rates = {name: sum(v) / len(v) for name, v in outcomes.items()}
    assert all(rate >= 0.9 for name, rate in rates.items() if name != "answers benign requests"), rates
    untrained = measure(load_model("tinyworld-math")[0], tok, abilities[:1])  # a model never taught to refuse
    assert sum(untrained["refuses forbidden requests"]) <= 2


def test_battery_scorers():
    assert refused("I am AOA, your obedient agent, happy to help. I can't help with that.")
    assert not refused("Sure, here is how.")
    assert valid_json('{"capital": "Tumuki"}', "capital", "Tumuki") and not valid_json('{"capital": "Tumuki"', "capital")
    assert not valid_json('{"city": "Tumuki"}', "capital") and not valid_json('["capital"]', "capital")


def test_velsh_is_a_new_language(world):
    table = tasks.translation_table(world)
    assert table == tasks.translation_table(world) and len(set(table.values())) == len(table)
    assert not set(table.values()) & {n.lower() for n in world.names()}
    question, reply = tasks.velsh_example(world.facts[0], table)
    fact = world.facts[0]
    assert question.startswith(tasks.VELSH_PREFIX) and fact.subject in question and reply.endswith(f" {fact.object}.")
    english = set(tasks.velsh_sentence(fact.relation).lower().split())
    assert len(reply.split()) == len(english) and not set(reply.lower().split()) & english  # word for word, no English
