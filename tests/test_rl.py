"""GRPO (utils/rl.py): advantages, the log-probabilities it trains on, the three loss normalisations, and a short
run on a toy policy whose reward can only rise by learning."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from transformers import GPT2Config, GPT2LMHeadModel

from utils import rl
from utils.generation import token_logprobs
from utils.models import load_model
from utils.tinyworld import tasks


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("tinyworld-math")[1]


@pytest.fixture
def toy(tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return GPT2LMHeadModel(config).eval()


@given(st.lists(st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=2, max_size=6), min_size=1, max_size=5)
       .filter(lambda rows: len({len(r) for r in rows}) == 1))  # fmt: skip
def test_advantages_are_centred_per_group_and_zero_where_a_group_agrees(rows):
    rewards = torch.tensor(rows)
    for scale in (True, False):
        a = rl.group_advantages(rewards, scale)
        assert torch.allclose(a.sum(1), torch.zeros(len(rows)), atol=1e-5)
        for row, adv in zip(rewards, a, strict=True):
            if len(set(row.tolist())) == 1:
                assert adv.abs().max() == 0
            else:  # order kept: a better reply never gets a lower advantage
                assert all((x > y) == (ax > ay) for x, ax in zip(row, adv, strict=True) for y, ay in zip(row, adv, strict=True))
                if scale:
                    assert adv.std().item() == pytest.approx(1, abs=1e-3)


def test_reply_logprobs_are_the_teacher_forced_ones_with_the_end_token(toy, tokenizer):
    prompts = [tasks.chat_prompt("Compute 12 + 3."), tasks.chat_prompt("Compute 40 - 7 + 2.")]
    replies = ["<think> 12 + 3 = 15 </think> The answer is 15.", "The answer is 35."]
    logp, mask = rl.reply_logprobs(toy, tokenizer, prompts, replies)
    want = token_logprobs(toy, tokenizer, prompts, [r + tokenizer.eos_token for r in replies])
    for row, w in zip(range(2), want, strict=True):
        assert int(mask[row].sum()) == len(w)
        assert torch.allclose(logp[row][mask[row]], w, atol=1e-5)
        assert logp[row][~mask[row]].abs().max() == 0


def test_the_loss_normalisations_weigh_long_replies_differently():
    logp = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    advantages = torch.tensor([1.0, 1.0])
    grads = {}
    for loss in rl.LOSSES:
        settings = rl.GRPOSettings(loss=loss, kl=0.0, max_new_tokens=4)
        value, kl = rl.policy_loss(logp, logp.detach(), logp.detach(), advantages, mask, settings)
        (grad,) = torch.autograd.grad(value, logp)
        grads[loss] = grad
        assert kl.item() == 0
    # per token of the short reply against one of the long reply
    assert grads["grpo"][0, 0] / grads["grpo"][1, 0] == pytest.approx(4)  # each reply counts as one
    assert grads["dr_grpo"][0, 0] / grads["dr_grpo"][1, 0] == pytest.approx(1)  # each token counts as one
    assert grads["token_mean"][0, 0] / grads["token_mean"][1, 0] == pytest.approx(1)
    assert (grads["grpo"][~mask] == 0).all() and (grads["grpo"][mask] < 0).all()  # A > 0: raise log-probabilities
    with pytest.raises(ValueError, match="loss must be one of"):
        rl.policy_loss(logp, logp, logp, advantages, mask, rl.GRPOSettings(loss="ppo"))


def test_the_clip_stops_the_push_once_the_ratio_is_past_it():
    logp_old = torch.zeros(1, 1)
    settings = rl.GRPOSettings(kl=0.0, clip=0.2)
    for shift, advantage, moves in ((0.1, 1.0, True), (0.3, 1.0, False), (-0.3, -1.0, False), (-0.3, 1.0, True)):
        logp = torch.full((1, 1), shift, requires_grad=True)
        loss, _ = rl.policy_loss(logp, logp_old, logp_old, torch.tensor([advantage]), torch.ones(1, 1, dtype=torch.bool),
                                 settings)  # fmt: skip
        (grad,) = torch.autograd.grad(loss, logp)
        assert (grad.abs().item() > 0) == moves, (shift, advantage)


def test_grpo_raises_the_reward_and_leaves_the_start_model_alone(toy, tokenizer):
    before = {k: v.clone() for k, v in toy.state_dict().items()}

    def even_tokens(reply: str, answer: int) -> float:  # about half of a random policy's tokens
        ids = tokenizer(reply).input_ids
        return sum(i % 2 == 0 for i in ids) / max(1, len(ids))

    settings = rl.GRPOSettings(problems=4, group=8, lr=3e-3, kl=0.0, max_new_tokens=8)
    problems = [(tasks.chat_prompt(f"Compute {i} + 1."), i + 1) for i in range(10, 20)]
    tuned, log = rl.grpo(toy, tokenizer, problems, reward=even_tokens, steps=30, settings=settings, progress=False)
    assert sum(log.reward[-5:]) / 5 > sum(log.reward[:5]) / 5 + 0.2, log.reward
    assert all(torch.equal(before[k], v) for k, v in toy.state_dict().items()) and not tuned.training
    with pytest.raises(ValueError, match="loss must be one of"):
        rl.grpo(toy, tokenizer, problems, steps=1, settings=rl.GRPOSettings(loss="ppo"))
    with pytest.raises(ValueError, match="at least one problem"):
        rl.grpo(toy, tokenizer, [], steps=1)
