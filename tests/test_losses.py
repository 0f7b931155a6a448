import pytest
import torch

from arvae.losses import arvae_objective, attribute_regularization, kl_divergence
from arvae.models import SpritesVAE


def naive_regularization(z, attributes, dims, delta):
    """Eq. 8 written pair by pair, as in the paper."""
    batch = len(z)
    losses = []
    for column, dim in enumerate(dims):
        total = 0.0
        for i in range(batch):
            for j in range(batch):
                d_r = z[i, dim] - z[j, dim]
                d_a = attributes[i, column] - attributes[j, column]
                total += abs(torch.tanh(delta * d_r) - torch.sign(d_a))
        losses.append(total / batch**2)
    return torch.stack(losses)


def test_matches_pairwise_definition():
    torch.manual_seed(0)
    z, attributes = torch.randn(12, 6), torch.randn(12, 3)
    expected = naive_regularization(z, attributes, (4, 0, 2), delta=3.0)
    assert torch.allclose(attribute_regularization(z, attributes, (4, 0, 2), 3.0), expected, atol=1e-6)


def test_near_zero_when_latent_order_matches_attribute_order():
    attributes = torch.linspace(0, 1, 64).unsqueeze(1)
    z = torch.zeros(64, 4)
    z[:, 2] = torch.linspace(-3, 3, 64)  # same order, different scale
    assert attribute_regularization(z, attributes, (2,), delta=100.0).item() < 1e-3


def test_larger_for_random_and_maximal_for_reversed_order():
    torch.manual_seed(1)
    attributes = torch.linspace(0, 1, 64).unsqueeze(1)
    z_random = torch.randn(64, 1)
    z_reversed = -torch.linspace(-3, 3, 64).unsqueeze(1)
    random_loss = attribute_regularization(z_random, attributes, (0,), 100.0).item()
    reversed_loss = attribute_regularization(z_reversed, attributes, (0,), 100.0).item()
    assert 0.7 < random_loss < 1.3
    assert reversed_loss > 1.9


def test_small_delta_gives_larger_loss_for_the_same_order():
    attributes = torch.linspace(0, 1, 32).unsqueeze(1)
    z = torch.linspace(-1, 1, 32).unsqueeze(1)
    assert attribute_regularization(z, attributes, (0,), 0.5) > attribute_regularization(z, attributes, (0,), 10.0)


def test_unchanged_by_rescaling_the_attribute():
    torch.manual_seed(2)
    z, attributes = torch.randn(32, 5), torch.randn(32, 2)
    base = attribute_regularization(z, attributes, (1, 3), 1.0)
    rescaled = attribute_regularization(z, attributes * torch.tensor([7.5, 0.01]) + 100.0, (1, 3), 1.0)
    assert torch.allclose(base, rescaled)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3)).item() == pytest.approx(0.0)
    assert kl_divergence(torch.ones(4, 3), torch.zeros(4, 3)).item() == pytest.approx(1.5)


def test_regularization_gradient_reaches_the_encoder_and_gamma_zero_is_beta_vae():
    torch.manual_seed(3)
    model = SpritesVAE()
    images = (torch.rand(16, 1, 64, 64) > 0.5).to(torch.uint8) * 255
    attributes = torch.randn(16, 5)
    terms = arvae_objective(model, images, attributes, (0, 1, 2, 3, 4), beta=4.0, gamma=10.0, delta=1.0)
    (10.0 * terms.regularization).backward()
    encoder_grad = model.encoder_conv[0][0].weight.grad
    assert encoder_grad is not None and encoder_grad.abs().sum() > 0
    assert model.decoder_conv[-1].weight.grad is None  # the regularizer only touches the encoder

    torch.manual_seed(4)
    baseline = arvae_objective(model, images, attributes, (0, 1, 2, 3, 4), beta=4.0, gamma=0.0, delta=1.0)
    assert baseline.total.item() == pytest.approx((baseline.reconstruction + 4.0 * baseline.kld).item(), rel=1e-5)
