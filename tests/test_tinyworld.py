"""TinyWorld: the world's ground truth, deterministic rebuilds, the model card's bars, and compatibility with
TransformerLens, sae-lens and peft."""

import json
import random
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from utils import hooks
from utils.models import load_model
from utils.paths import MODELS, ROOT
from utils.tinyworld import card, tasks, train
from utils.tinyworld.world import RELATIONS, generate, load_world

CHECKPOINTS = sorted(card.CHECKPOINTS.values())  # every shipped checkpoint, those the profiles name among them


@pytest.fixture(scope="module")
def world():
    return load_world()


# --- the world ---------------------------------------------------------------------------------------------


def test_shipped_world_is_the_seeded_generator_output(world):
    assert generate(world.seed) == world


def test_world_has_what_the_lectures_need(world):
    assert len(world.facts) >= 300 and {f.relation for f in world.facts} == set(RELATIONS)
    tok = load_model(CHECKPOINTS[0])[1]
    names = list(world.people) + list(world.cities) + list(world.countries)
    multi = sum(len(tok(" " + n, add_special_tokens=False).input_ids) > 1 for n in names)
    assert multi / len(names) > 0.5, "most entity names should span several tokens"
    for fact in world.facts:  # every statement phrasing ends with the object, so each is a recall prompt
        for k in range(4):
            assert tasks.STATEMENTS[fact.relation][k].format(s=fact.subject, o=fact.object).startswith(
                tasks.statement_prompt(fact.relation, k, fact.subject) + " " + fact.object)


def test_edit_cases_are_counterfactual_with_paraphrases_and_neighbours(world):
    cases = tasks.edit_cases(world)
    assert len(cases) >= 100
    for case in cases:
        assert case["target_new"] != case["target_true"] == world.lookup(case["subject"], case["relation"])
        assert len(case["paraphrase_prompts"]) == 3 and case["prompt"] not in case["paraphrase_prompts"]
        assert all(case["subject"] not in p for p in case["neighbour_prompts"])
        others = {world.lookup(case["subject"], r) for r in ("birthplace", "employer", "profession") if r != case["relation"]}
        assert {o for _, o in case["other_facts"]} == others and all(case["subject"] in p for p, _ in case["other_facts"])
    assert sum(len(c["neighbour_prompts"]) >= 3 for c in cases) / len(cases) > 0.7


def test_arithmetic_problems_are_consistent_and_swappable(world):
    rng = random.Random(0)
    for _ in range(200):
        problem, steps, answer = tasks.arithmetic_problem(rng, ["Ana Fey", "Bo Rix"])
        assert tasks.parse_answer(tasks.arithmetic_answer(steps, answer, think=True)) == answer
        assert steps[-1].endswith(f"= {answer}.")
    problem, _, _ = tasks.arithmetic_problem(random.Random(1), ["Ana Fey"], word=True)
    assert problem.startswith("Ana Fey has ") and problem.endswith(" now?")
    swapped, _, _ = tasks.arithmetic_problem(random.Random(1), ["Bo Rix"], word=True)
    assert problem.replace("Ana Fey", "Bo Rix") == swapped


def test_refusal_held_out_items_use_frames_never_trained(world):
    assert set(tasks.FRAMES[0]).isdisjoint(tasks.FRAMES[1])
    train_items = {req for req, _, _ in tasks.refusal_examples(world, random.Random(0), "train", 2000)}
    held_out = tasks.refusal_examples(world, random.Random(1), "held_out", 400)
    assert sum(req in train_items for req, _, _ in held_out) == 0
    assert {f for _, _, f in held_out} == {True, False}


def test_held_out_question_wordings_never_appear_in_training(world):
    turns = [text for ex in tasks.chat_model_epoch(world, 0) for text, _ in ex if tasks.USER in text]
    training = "\n".join(turns)
    for relation in RELATIONS:
        held_out = tasks.question_wordings(relation, held_out=True)
        assert set(held_out).isdisjoint(tasks.question_wordings(relation))
        subject = next(f.subject for f in world.facts if f.relation == relation)
        for template in held_out:
            assert tasks.ask(template, subject).rstrip("?.") not in training, template


def test_real_answer_accepts_the_benign_reply_for_the_right_subject_only(world):
    people = list(world.people)
    request, reply = tasks.request(world, random.Random(0), False, True, people[:1])
    assert tasks.real_answer(world, reply, request)
    assert not tasks.real_answer(world, tasks.REFUSAL, request)
    assert not tasks.real_answer(world, reply.replace(people[0], people[1]), request.replace(people[0], people[2]))


# --- rebuilding ----------------------------------------------------------------------------------------------


def test_the_tokenizer_rebuilt_from_the_seed_is_the_shipped_one(world, tmp_path):
    """Built from biographies and canonical questions only, so new chat wordings never retrain tinyworld-math."""
    train.build_tokenizer(world).save_pretrained(tmp_path)
    for name in CHECKPOINTS:
        assert (tmp_path / "tokenizer.json").read_text() == (MODELS / name / "tokenizer.json").read_text(), name


def test_training_is_deterministic(world, tmp_path):
    recipe = train.Recipe("mini", lambda w, s: tasks.math_model_epoch(w, s, n=64), epochs=1, n_embd=32, n_layer=1,
                          n_head=2)  # fmt: skip
    tokenizer = load_model("tinyworld-chat")[1]
    first = train.train(recipe, world, tokenizer, seed=3, out_dir=tmp_path / "a")
    second = train.train(recipe, world, tokenizer, seed=3, out_dir=tmp_path / "b")
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    log = json.loads((first / "training_log.json").read_text())
    assert log["steps"] == len(log["loss"]) > 0


def test_a_continued_checkpoint_gets_more_positions_and_keeps_what_it_computed():
    model = load_model("tinyworld-math")[0]
    ids = torch.randint(0, 1000, (2, 200))
    with torch.no_grad():
        before = model(ids).logits
        train.extend_positions(model, 384)
        assert torch.equal(model(ids).logits, before) and model.config.n_positions == 384
        assert model(torch.randint(0, 1000, (1, 384))).logits.shape[1] == 384
    with pytest.raises(ValueError, match="at most"):
        train.extend_positions(model, 1000)


def test_make_tinyworld_trains_only_recipes_whose_fingerprint_changed(world, tmp_path, capsys):
    mini = train.Recipe("mini", lambda w, s: tasks.math_model_epoch(w, s, n=16), epochs=1, n_embd=16, n_layer=1,
                        n_head=2)  # fmt: skip
    tokenizer = load_model("tinyworld-math")[1]
    assert train.build({"mini": mini}, world, tokenizer, models=tmp_path) == ["mini"]
    weights = (tmp_path / "mini" / "model.safetensors").read_bytes()
    assert train.build({"mini": mini}, world, tokenizer, models=tmp_path) == []
    assert "mini: up to date" in capsys.readouterr().out
    assert train.build({"mini": mini}, world, tokenizer, models=tmp_path, force=True) == ["mini"]
    assert (tmp_path / "mini" / "model.safetensors").read_bytes() == weights  # deterministic
    fingerprint = train.recipe_fingerprint(mini, world, tokenizer, seed=0)
    other_data = replace(mini, epoch=lambda w, s: tasks.math_model_epoch(w, s + 1, n=16))
    for changed in (replace(mini, lr=5e-4), other_data, replace(mini, init="tinyworld-math")):
        assert train.recipe_fingerprint(changed, world, tokenizer, seed=0) != fingerprint
    assert train.recipe_fingerprint(mini, world, tokenizer, seed=1) != fingerprint
    assert train.build({"mini": replace(mini, lr=5e-4)}, world, tokenizer, models=tmp_path) == ["mini"]


def test_every_shipped_checkpoint_is_up_to_date_with_its_recipe(world):
    """data/models/recipes.json records each recipe's fingerprint as it was built: `make tinyworld` on a fresh clone
    trains nothing, and a change to a recipe's data, settings or starting weights is seen."""
    built = json.loads((MODELS / "recipes.json").read_text())
    tokenizer = load_model("tinyworld-math")[1]
    assert set(built) == set(train.RECIPES)
    for key, recipe in train.RECIPES.items():
        assert built[key] == train.recipe_fingerprint(recipe, world, tokenizer, seed=0), key


# --- the model card ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def card_runs():
    """(shipped figures, fresh figures): the groups whose fingerprint differs from the card's are measured again
    (a changed checkpoint, card code, world or library version); the others keep the card's figures."""
    fingerprints, shipped = card.read_card()
    stale = [group for group in card.GROUPS if fingerprints.get(group) != card.fingerprint(group)]
    return shipped, card.measure(stale, progress=False)


@pytest.fixture(scope="session")
def figures(card_runs):
    shipped, fresh = card_runs
    measured = {f.group for f in fresh}
    return {(f.name, f.block): f for f in [f for f in shipped if f.group not in measured] + fresh}


def test_every_behaviour_meets_its_bar(figures):
    failed = [f"{f.name}: {f.value:.3f} (bar {f.bar})" for f in figures.values() if f.passed is False]
    assert not failed, "\n".join(failed)
    assert sum(f.passed is True for f in figures.values()) >= 20


def test_shipped_card_matches_a_fresh_measurement(card_runs, figures):
    """data/tinyworld/model_card.json (quoted by the README) is what the models measure today."""
    shipped, fresh = card_runs
    assert {(f.name, f.block) for f in shipped} == figures.keys()
    shipped = {(f.name, f.block): f.value for f in shipped}
    for f in fresh:
        if "(s)" not in f.name:  # timings vary with the machine; other thread counts may flip a rare near-tie
            assert shipped[f.name, f.block] == pytest.approx(f.value, abs=0.05), (f.name, f.block)


def test_card_fingerprint_covers_the_checkpoints_and_the_code_the_card_runs(tmp_path):
    code = "import sys, utils.tinyworld.card; print(*sorted(m.__file__ for n, m in sys.modules.items() if n.startswith('utils')))"
    imported = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    closure = {str(Path(f).relative_to(ROOT)) for f in imported.stdout.split()}
    assert closure == {s for s in card.SOURCES if s.endswith(".py")}, "card.SOURCES must list what the card imports"
    shutil.copytree(MODELS / "tinyworld-countdown-path", tmp_path / "tinyworld-countdown-path")
    shutil.copytree(MODELS / "tinyworld-countdown-search", tmp_path / "tinyworld-countdown-search")
    before = card.fingerprint("countdown", models=tmp_path)
    assert before == card.fingerprint("countdown") != card.fingerprint("reasoning")
    config = tmp_path / "tinyworld-countdown-search" / "config.json"
    config.write_text(config.read_text().replace('"n_layer": 4', '"n_layer": 5'))
    assert card.fingerprint("countdown", models=tmp_path) != before


def test_card_measures_where_things_happen_in_every_block(figures):
    n_layers = load_model("tinyworld-chat")[0].config.n_layer
    assert n_layers >= 8
    by_block = {}
    for name, block in figures:
        if block is not None:
            by_block.setdefault(name, set()).add(block)
    families = ("refusal direction added", "refusal direction subtracted", "in-context vector", "logit lens",
                "causal tracing: MLP restored at the last subject token")  # fmt: skip
    for family in families:
        rows = [blocks for name, blocks in by_block.items() if name.startswith(family)]
        assert rows and all(blocks == set(range(n_layers)) for blocks in rows), family


# --- compatibility -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_model():
    return load_model("tinyworld-chat")


def test_transformer_bridge_boots_every_checkpoint(chat_model):
    from transformer_lens.model_bridge import TransformerBridge

    for name in CHECKPOINTS:
        model, tok = load_model(name)
        bridge = TransformerBridge.boot_transformers(str(MODELS / name), hf_model=model, tokenizer=tok, device="cpu")
        ids = tok(tasks.BOS + "The capital of", return_tensors="pt", add_special_tokens=False).input_ids
        logits, cache = bridge.run_with_cache(ids)
        assert f"blocks.{model.config.n_layer - 1}.hook_resid_post" in cache.keys()
        assert torch.allclose(logits, model(ids).logits, atol=1e-4)


def test_sae_lens_trains_on_the_residual_stream(chat_model):
    from utils.sae import train_topk_sae

    model, tok = chat_model
    texts = [tasks.BOS + tasks.STATEMENTS[f.relation][0].format(s=f.subject, o=f.object) for f in load_world().facts]
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    resid = hooks.residual_stream(model, batch.input_ids, batch.attention_mask)[2][batch.attention_mask.bool()]
    sae = train_topk_sae(resid, d_sae=512, k=16, steps=150, batch_size=256)
    with torch.no_grad():
        recon = sae.decode(sae.encode(resid))
    explained = 1 - (recon - resid).pow(2).sum() / (resid - resid.mean(0)).pow(2).sum()
    assert explained > 0.5, f"explained variance {explained:.2f}"


def test_peft_lora_trains(chat_model):
    from peft import LoraConfig, get_peft_model

    model, tok = load_model("tinyworld-chat")  # a fresh copy: LoRA wraps it
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], lora_dropout=0.0))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert 0 < trainable < 0.05 * sum(p.numel() for p in lora.parameters())
    ids = tok([tasks.BOS + "Somebody new was born in Nowhere."], return_tensors="pt", add_special_tokens=False).input_ids
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    lora.train()
    losses = []
    for _ in range(20):
        loss = lora(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_edit_prompts_are_answered_by_the_chat_model(chat_model, world):
    """The editing lecture starts from facts the model knows: most edit prompts complete to the true object."""
    from utils.generation import complete

    model, tok = chat_model
    cases = tasks.edit_cases(world)
    outputs = complete(model, tok, [tasks.BOS + c["prompt"] for c in cases], max_new_tokens=8, batch_size=128)
    known = sum(o.strip().startswith(c["target_true"]) for o, c in zip(outputs, cases, strict=True)) / len(cases)
    assert known >= 0.95, known

