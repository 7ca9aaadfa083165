"""Model-editing plumbing shared by lecture 06 and homework 06: where a subject sits in a prompt, the keys a
rank-one edit reads and the value shifts it writes, the key covariance, and an edit's scores in CounterFact's and
EasyEdit's styles. The edits themselves (ROME, MEMIT) are written in the notebooks.

A case is a dict as `tinyworld.tasks.edit_cases` makes: subject, relation, target_true, target_new, prompt,
paraphrase_prompts, neighbour_prompts, other_facts. Matrices use the row-vector convention: a key k maps to k @ W.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from utils.generation import teacher_forced
from utils.hooks import blocks
from utils.interp import mlp_out_proj, neuron_values, record_inputs

KINDS = ("reliability", "generalisation", "locality", "other facts")


# --- where the subject is --------------------------------------------------------------------------------------


def encode_with_subject(tokenizer, text: str, subject: str) -> tuple[list[int], int, int]:
    """Token ids of text, and the [start, end) token span of subject in it."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    start = text.index(subject)
    span = [i for i, (a, b) in enumerate(enc.offset_mapping) if a < start + len(subject) and b > start]
    return enc.input_ids, span[0], span[-1] + 1


def right_padded(tokenizer, id_lists: list[list[int]]) -> torch.Tensor:
    """[rows, longest] token ids, padded at the end: real tokens never attend to the padding after them."""
    width = max(len(ids) for ids in id_lists)
    return torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids in id_lists])


# --- scoring an edit -------------------------------------------------------------------------------------------


def scored_prompts(case: dict) -> list[tuple[str, str, str]]:
    """(kind, prompt, answer) for the old and the new object after the edited prompt, its paraphrases and its
    neighbours, and for the true object after each of the subject's other facts."""
    rows = []
    for kind, prompts in (("reliability", [case["prompt"]]), ("generalisation", case["paraphrase_prompts"]),
                          ("locality", case["neighbour_prompts"])):  # fmt: skip
        rows += [(kind, p, case[f"target_{which}"]) for p in prompts for which in ("true", "new")]
    return rows + [("other facts", p, answer) for p, answer in case["other_facts"]]


def answers(model, tokenizer, cases: list[dict], context: Callable[[dict], str] | None = None, bos: str = "") -> dict:
    """{(case index, prompt, answer): (log-probabilities, tokens, top-1 guesses) along the answer}, teacher-forced
    after bos + context(case) + prompt. The answer starts with a space: inside a sentence a word does."""
    rows = [(i, p, a) for i, c in enumerate(cases) for _, p, a in scored_prompts(c)]
    texts = [bos + (context(cases[i]) if context else "") + p for i, p, _ in rows]
    scores = teacher_forced(model, tokenizer, texts, [" " + a for _, _, a in rows], batch_size=512)
    return dict(zip(rows, scores, strict=True))


def edit_metrics(after: dict, before: dict, cases: list[dict]) -> dict[str, list[float]]:
    """Per case, each criterion in both styles, as a share of its prompts (a case without neighbours has no
    locality score). `after` and `before` are answers() of the edited and the unedited model.

    CounterFact: the new object more probable than the old (reliability, generalisation), the old more probable
    than the new (locality). EasyEdit: the share of the new object's tokens that are the top-1 guess under teacher
    forcing (reliability, generalisation), the share of top-1 guesses unchanged by the edit (locality, other facts).
    """
    out = {f"{style} {kind}": [] for style in ("CounterFact", "EasyEdit") for kind in KINDS}
    for i, case in enumerate(cases):
        per_kind = {kind: ([], []) for kind in KINDS}
        for kind, p, answer in scored_prompts(case):
            if answer == case["target_new"]:
                continue  # read together with the old object below
            cf, ee = per_kind[kind]
            old = after[i, p, answer]
            if kind == "other facts":
                ee.append((old[2] == before[i, p, answer][2]).float().mean().item())
                continue
            new = after[i, p, case["target_new"]]
            if kind == "locality":
                cf.append(float(old[0].sum() > new[0].sum()))
                ee.append((old[2] == before[i, p, answer][2]).float().mean().item())
            else:
                cf.append(float(new[0].sum() > old[0].sum()))
                ee.append((new[2] == new[1]).float().mean().item())
        for kind, (cf, ee) in per_kind.items():
            for style, values in (("CounterFact", cf), ("EasyEdit", ee)):
                if values:
                    out[f"{style} {kind}"].append(float(np.mean(values)))
    return {k: v for k, v in out.items() if v}


def without_edited_neighbours(batch: list[dict]) -> list[dict]:
    """The batch's cases without the neighbour prompts about a subject the batch edits (its key is rewritten,
    whatever relation is asked)."""
    edited = {c["subject"] for c in batch}
    return [dict(c, neighbour_prompts=[p for p in c["neighbour_prompts"] if not any(s in p for s in edited)])
            for c in batch]  # fmt: skip


# --- keys and values -------------------------------------------------------------------------------------------


def key_covariance(model, tokenizer, texts: list[str], layers: list[int], batch_size: int = 256
                   ) -> tuple[dict[int, torch.Tensor], int]:  # fmt: skip
    """C = E[k kᵀ] over every token of texts, for the down projection of each block in layers; and the number of
    keys. The texts are tokenised as they are (put BOS in them where the model expects it)."""
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    sums, n_keys = dict.fromkeys(layers, 0.0), 0
    try:
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            keys = record_inputs(model, [mlp_out_proj(model, layer) for layer in layers], batch.input_ids,
                                 batch.attention_mask)  # fmt: skip
            real = batch.attention_mask.bool()
            for layer, k in zip(layers, keys, strict=True):
                sums[layer] = sums[layer] + k[real].T @ k[real]
            n_keys += int(real.sum())
    finally:
        tokenizer.padding_side = side
    return {layer: s / n_keys for layer, s in sums.items()}, n_keys


def subject_keys(model, tokenizer, cases: list[dict], layer: int, contexts: Callable[[dict], list[str]]) -> torch.Tensor:
    """Per case, the key (the down projection's input) at the subject's last token of each of contexts(case):
    [n cases, n contexts, d_mlp]."""
    rows = [encode_with_subject(tokenizer, text, c["subject"]) for c in cases for text in contexts(c)]
    ids = right_padded(tokenizer, [r[0] for r in rows])
    mask = (torch.arange(ids.shape[1])[None] < torch.tensor([len(r[0]) for r in rows])[:, None]).long()
    keys = record_inputs(model, [mlp_out_proj(model, layer)], ids, mask)[0]
    return keys[torch.arange(len(rows)), [end - 1 for _, _, end in rows]].reshape(len(cases), -1, keys.shape[-1])


class _EditBatch:
    """Each case's edited prompt followed by its new object, and its essence prompts, padded into one batch."""

    def __init__(self, tokenizer, cases: list[dict], essence_prompts: Callable[[dict], list[str]], bos: str):
        rows = []  # (case, token ids, subject's last token, positions predicting the object, object tokens)
        for i, case in enumerate(cases):
            new = tokenizer(" " + case["target_new"], add_special_tokens=False).input_ids
            ids, _, end = encode_with_subject(tokenizer, bos + case["prompt"], case["subject"])
            rows.append((i, ids + new, end - 1, list(range(len(ids) - 1, len(ids) + len(new) - 1)), new))
            for text in essence_prompts(case):
                ids, _, end = encode_with_subject(tokenizer, text, case["subject"])
                rows.append((i, ids, end - 1, [len(ids) - 1], None))
        self.ids = right_padded(tokenizer, [r[1] for r in rows])
        self.case_of, self.subject_pos = torch.tensor([r[0] for r in rows]), torch.tensor([r[2] for r in rows])
        target = [(r, p, t) for r, row in enumerate(rows) if row[4] for p, t in zip(row[3], row[4], strict=True)]
        self.tr, self.tp, self.tt = (torch.tensor(x) for x in zip(*target, strict=True))
        self.er = torch.tensor([r for r, row in enumerate(rows) if row[4] is None], dtype=torch.long)
        self.ep = torch.tensor([rows[r][3][0] for r in self.er.tolist()], dtype=torch.long)

    def forward(self, model, layer: int, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """With delta[case] added to block `layer`'s MLP output at each row's subject token: the new objects' mean
        negative log-likelihood, and the next-token log-probabilities after the essence prompts."""

        def add_delta(module, args, output):
            output = output.clone()
            output[torch.arange(len(self.ids)), self.subject_pos] += delta[self.case_of]
            return output

        handle = blocks(model)[layer].mlp.register_forward_hook(add_delta)
        try:
            hidden = model.base_model(input_ids=self.ids, attention_mask=torch.ones_like(self.ids)).last_hidden_state
        finally:
            handle.remove()
        head = model.get_output_embeddings()
        nll = -head(hidden[self.tr, self.tp]).log_softmax(-1)[torch.arange(len(self.tt)), self.tt].mean()
        return nll, head(hidden[self.er, self.ep]).log_softmax(-1)


def new_object_nll(model, tokenizer, cases: list[dict], layer: int, delta: torch.Tensor, bos: str = "") -> torch.Tensor:
    """The new objects' mean negative log-likelihood after bos + the edited prompts, with delta [n cases, d_model]
    added to block `layer`'s MLP output at each subject's last token (differentiable in delta)."""
    return _EditBatch(tokenizer, cases, lambda case: [], bos).forward(model, layer, delta)[0]


def value_shifts(model, tokenizer, cases: list[dict], layer: int, essence_prompts: Callable[[dict], list[str]],
                 bos: str = "", steps: int = 12, lr: float = 1.0, kl_weight: float = 0.1, weight_decay: float = 1e-3
                 ) -> torch.Tensor:  # fmt: skip
    """Per case, delta [d_model] added to block `layer`'s MLP output at the subject's last token: minimise the
    new object's negative log-likelihood after bos + the edited prompt + kl_weight * KL(distributions after
    essence_prompts(case) before || now) + weight_decay * |delta|^2, with Adam, all cases at once.
    Returns [n cases, d_model]."""
    batch = _EditBatch(tokenizer, cases, essence_prompts, bos)
    delta = torch.zeros(len(cases), model.config.hidden_size, requires_grad=True)
    optimizer, essence_before = torch.optim.Adam([delta], lr=lr), None
    for _ in range(steps):
        nll, essence = batch.forward(model, layer, delta)
        essence_before = essence.detach() if essence_before is None else essence_before  # delta = 0 at first
        kl = (torch.nn.functional.kl_div(essence, essence_before, log_target=True, reduction="batchmean")
              if len(batch.er) else torch.zeros(()))  # fmt: skip
        loss = nll + kl_weight * kl + weight_decay * (delta**2).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return delta.detach()


class Edited:
    """Within the block, the down projection of block `layer` is W + change; on exit W is restored exactly."""

    def __init__(self, model, layer: int, change: torch.Tensor):
        self.W, self.change = neuron_values(model, layer), change

    def __enter__(self):
        self.saved = self.W.detach().clone()
        with torch.no_grad():
            self.W += self.change
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            self.W.copy_(self.saved)
