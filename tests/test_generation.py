"""The GPT-2 decoder behind `complete`: the tokens of `model.generate` when greedy, the model's own distribution
when sampling, log-probabilities that match a teacher-forced pass, and rows that leave the batch once ended."""

import random

import pytest
import torch

from utils.generation import complete, continuation_logprobs, decode_gpt2, teacher_forced, token_logprobs
from utils.models import load_model
from utils.tinyworld import reasoning, tasks


@pytest.fixture(scope="module")
def reasoner():
    model, tokenizer = load_model("tinyworld-reasoning")
    tokenizer.padding_side = "left"
    return model, tokenizer


def prompts(n: int = 24) -> list[str]:
    """Questions of every tier, so prompt lengths and reply lengths both differ (left padding, early ends)."""
    rng = random.Random(1)
    return [tasks.chat_prompt(reasoning.chain_problem(rng, ("easy", "hard", "never")[i % 3]).question) for i in range(n)]


@pytest.mark.parametrize("temperature", [0.0, 1.0, 0.7])
def test_tokens_are_those_of_generate_for_a_seed(reasoner, temperature):
    model, tokenizer = reasoner
    batch = tokenizer(prompts(), return_tensors="pt", padding=True, add_special_tokens=False)
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature else {"do_sample": False}
    torch.manual_seed(5)
    expected = model.generate(**batch, max_new_tokens=120, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id, **sampling)[:, batch.input_ids.shape[1] :]  # fmt: skip
    torch.manual_seed(5)
    tokens, _ = decode_gpt2(model, batch.input_ids, batch.attention_mask, 120, temperature, tokenizer.eos_token_id,
                            tokenizer.pad_token_id)  # fmt: skip
    width = max(expected.shape[1], tokens.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]), value=tokenizer.pad_token_id)  # noqa: E731
    assert torch.equal(pad(tokens), pad(expected))
    ended = (tokens == tokenizer.eos_token_id).any(1)
    assert ended.float().mean() > 0.5  # most rows end early and leave the batch


def test_logprobs_match_a_teacher_forced_pass(reasoner):
    """Each drawn token's log-probability is what the model gives it when the same tokens are fed back in."""
    model, tokenizer = reasoner
    batch = tokenizer(prompts(12), return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(3)
    tokens, logprobs = decode_gpt2(model, batch.input_ids, batch.attention_mask, 60, 1.0, tokenizer.eos_token_id,
                                   tokenizer.pad_token_id)  # fmt: skip
    for row in range(len(tokens)):
        prompt = batch.input_ids[row][batch.attention_mask[row].bool()]
        new = tokens[row][tokens[row] != tokenizer.pad_token_id]
        with torch.no_grad():
            forced = model(input_ids=torch.cat([prompt, new])[None]).logits[0].float().log_softmax(-1)
        expected = forced[len(prompt) - 1 : -1].gather(-1, new[:, None])[:, 0]
        assert torch.allclose(logprobs[row, : len(new)], expected, atol=1e-3)
        assert (logprobs[row, len(new) :] == 0).all()


def test_samples_follow_the_model_distribution(reasoner):
    """The first sampled token's frequencies over 4,000 draws match softmax(logits / T) (total variation < 0.05)."""
    model, tokenizer = reasoner
    prompt = tokenizer([tasks.BOS] * 4000, return_tensors="pt", add_special_tokens=False)  # a spread distribution
    with torch.no_grad():
        probs = (model(input_ids=prompt.input_ids[:1]).logits[0, -1].float() / 1.5).softmax(-1)
    torch.manual_seed(0)
    tokens, _ = decode_gpt2(model, prompt.input_ids, prompt.attention_mask, 1, 1.5, tokenizer.eos_token_id,
                            tokenizer.pad_token_id)  # fmt: skip
    freq = torch.bincount(tokens[:, 0], minlength=len(probs)).float() / len(tokens)
    assert 0.5 * (freq - probs).abs().sum() < 0.05
    assert probs.max() < 0.5  # the check means something only if the distribution is spread


def test_complete_is_the_same_greedy_at_any_batch_size(reasoner):
    model, tokenizer = reasoner
    assert complete(model, tokenizer, prompts(), 100, batch_size=5) == complete(model, tokenizer, prompts(), 100)


def test_hooks_still_steer_every_generated_token(reasoner):
    """A model with a forward hook (steering, ablation) is decoded through its own forward, so the hook applies to
    every new token, not only to the prompt."""
    from utils import hooks

    model, tokenizer = reasoner
    batch = prompts(6)
    plain = complete(model, tokenizer, batch, 40)
    push = torch.randn(model.config.n_embd, generator=torch.Generator().manual_seed(0)) * 8
    with hooks.add_to_residual(model, 1, push):
        steered = complete(model, tokenizer, batch, 40)
        tokens = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        expected = model.generate(**tokens, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id)[:, tokens.input_ids.shape[1] :]  # fmt: skip
    decoded = [tokenizer.decode([t for t in row if t != tokenizer.pad_token_id]).split(tokenizer.eos_token)[0]
               for row in expected.tolist()]  # fmt: skip
    assert steered == decoded and steered != plain


def test_token_logprobs_score_each_continuation_token_as_sampling_does(reasoner):
    """Teacher-forced scores of a sampled reply equal the log-probabilities recorded while sampling it."""
    model, tokenizer = reasoner
    questions = prompts(6)
    torch.manual_seed(4)
    texts, sampled = complete(model, tokenizer, questions, max_new_tokens=40, temperature=1.0, logprobs=True)
    scored = token_logprobs(model, tokenizer, questions, texts)
    for text, a, b in zip(texts, sampled, scored, strict=True):
        n = len(tokenizer(text, add_special_tokens=False).input_ids)
        assert len(b) == n and torch.allclose(a[:n], b, atol=1e-3)
    assert continuation_logprobs(model, tokenizer, questions, texts) == pytest.approx([t.sum().item() for t in scored])
    for text, (logprobs, tokens, top1) in zip(texts, teacher_forced(model, tokenizer, questions, texts), strict=True):
        assert tokens.tolist() == tokenizer(text, add_special_tokens=False).input_ids[: len(tokens)]
        assert len(top1) == len(logprobs) == len(tokens)
    greedy = complete(model, tokenizer, questions[:3], max_new_tokens=12)
    for _, tokens, top1 in teacher_forced(model, tokenizer, questions[:3], greedy):
        assert torch.equal(top1, tokens)  # a greedy reply is its own top-1 guess at every step
