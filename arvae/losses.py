"""The AR-VAE objective (Eq. 6-9): reconstruction + beta * KLD + gamma * sum_l L_{r_l, a_l}."""
from __future__ import annotations

from dataclasses import dataclass

import torch


def attribute_regularization(z: torch.Tensor, attributes: torch.Tensor, dims, delta) -> torch.Tensor:
    """Per-attribute loss ``MAE(tanh(delta * D_r) - sgn(D_a))`` (Eq. 6-8), shape ``(L,)``.

    ``z``: latent codes ``(B, D)``; ``attributes``: ``(B, L)``; ``dims``: the latent dim
    regularized for each attribute. All B x B pairs and all L attributes at once. ``delta`` is one
    value, as in the paper, or one per attribute ``(L,)`` (a smaller one spreads that dim wider).
    """
    z_reg = z[:, list(dims)]                                  # (B, L)
    latent_diff = z_reg.unsqueeze(1) - z_reg.unsqueeze(0)     # D_r: (B, B, L)
    attribute_diff = attributes.unsqueeze(1) - attributes.unsqueeze(0)
    delta = torch.as_tensor(delta, dtype=z.dtype, device=z.device)  # () or (L,), broadcast over pairs
    return (torch.tanh(delta * latent_diff) - torch.sign(attribute_diff)).abs().mean(dim=(0, 1))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), summed over latent dims and averaged over the batch.

    With ``free_bits`` > 0 each dim's batch-mean KL counts as at least that many nats ("free bits",
    Kingma et al. 2016, not in the AR-VAE paper): a dim carries that much information unpenalized."""
    per_dim = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(dim=0)   # (D,)
    return per_dim.clamp(min=free_bits).sum() if free_bits else per_dim.sum()


@dataclass
class LossTerms:
    total: torch.Tensor
    reconstruction: torch.Tensor
    kld: torch.Tensor
    regularization: torch.Tensor  # sum over attributes, before gamma
    accuracy: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in
                ("total", "reconstruction", "kld", "regularization", "accuracy")}


def arvae_objective(model, inputs, attributes, dims, beta: float, gamma, delta,
                    reconstruction_weight: float = 1.0, free_bits: float = 0.0) -> LossTerms:
    """Eq. 9 on one mini-batch; ``gamma = 0`` gives the beta-VAE baseline (Eq. 5).

    ``gamma`` and ``delta`` are one value for every attribute, as in the paper, or one per attribute ``(L,)``.
    ``reconstruction_weight`` scales the reconstruction term (a warm-up; 1 is the paper's objective);
    ``free_bits`` is passed to :func:`kl_divergence` (0 is the paper's); ``kld`` reports the plain KL.

    ``model`` may be wrapped in DistributedDataParallel: its forward runs through the wrapper.
    """
    core = getattr(model, "module", model)
    x = core.preprocess(inputs)
    logits, mu, logvar, z = model(x)
    logits, mu, logvar, z = logits.float(), mu.float(), logvar.float(), z.float()  # bf16 autocast: losses in fp32
    reconstruction = core.reconstruction_loss(logits, x)
    kld = kl_divergence(mu, logvar)
    per_attribute = attribute_regularization(z, attributes.to(z.dtype), dims, delta)      # (L,)
    weighted_regularization = (torch.as_tensor(gamma, dtype=z.dtype, device=z.device) * per_attribute).sum()
    penalized_kld = kl_divergence(mu, logvar, free_bits) if free_bits else kld
    total = reconstruction_weight * reconstruction + beta * penalized_kld + weighted_regularization
    regularization = per_attribute.sum()
    with torch.no_grad():
        accuracy = core.reconstruction_accuracy(logits, x)
    return LossTerms(total, reconstruction, kld, regularization, accuracy)
