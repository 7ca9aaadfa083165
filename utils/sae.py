"""Train a sparse autoencoder with sae-lens on activations already in memory (a TinyWorld model's residual stream)."""

from __future__ import annotations

import torch


def train_topk_sae(activations: torch.Tensor, d_sae: int, k: int, steps: int = 1000, batch_size: int = 1024,
                   lr: float = 1e-3, seed: int = 0):  # fmt: skip
    """Train a TopK SAE (sae-lens) on activations [n, d_in]; return it in eval mode.

    Batches are drawn at random from `activations`, so `steps` may exceed n / batch_size.
    """
    from sae_lens import SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    def batches():
        while True:
            yield activations[torch.randint(len(activations), (batch_size,), generator=generator)]

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=activations.shape[1], d_sae=d_sae, k=k, device="cpu"))
    config = SAETrainerConfig(total_training_samples=steps * batch_size, train_batch_size_samples=batch_size, lr=lr,
                              lr_end=lr / 10, lr_scheduler_name="cosineannealing", dead_feature_window=200,
                              n_batches_for_norm_estimate=10)  # fmt: skip
    return SAETrainer(cfg=config, sae=sae, data_provider=batches()).fit().eval()
