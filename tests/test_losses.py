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


def test_a_delta_per_attribute_scales_each_attributes_pairs_with_its_own():
    torch.manual_seed(0)
    z, attributes = torch.randn(12, 6), torch.randn(12, 3)
    per_attribute = attribute_regularization(z, attributes, (4, 0, 2), (3.0, 0.5, 1.0))
    expected = torch.stack([naive_regularization(z, attributes[:, [l]], (dim,), delta)[0]
                            for l, (dim, delta) in enumerate(zip((4, 0, 2), (3.0, 0.5, 1.0)))])
    assert torch.allclose(per_attribute, expected, atol=1e-6)


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


def test_per_attribute_gamma_and_reconstruction_weight_weigh_their_terms():
    torch.manual_seed(0)
    model = SpritesVAE().eval()  # eval: z is the posterior mean, so every call sees the same z
    images = (torch.rand(8, 1, 64, 64) > 0.5).to(torch.uint8) * 255
    attributes = torch.rand(8, 5)
    dims = (0, 1, 2, 3, 4)
    gammas = (1.0, 0.0, 3.0, 0.0, 2.0)
    terms = arvae_objective(model, images, attributes, dims, beta=4.0, gamma=gammas, delta=1.0)
    z = model.encode(model.preprocess(images))[0]
    per_attribute = attribute_regularization(z, attributes, dims, 1.0)
    expected = terms.reconstruction + 4.0 * terms.kld + (torch.tensor(gammas) * per_attribute).sum()
    assert torch.allclose(terms.total, expected)
    assert torch.allclose(terms.regularization, per_attribute.sum())
    warm = arvae_objective(model, images, attributes, dims, beta=4.0, gamma=gammas, delta=1.0,
                           reconstruction_weight=0.0)
    assert torch.allclose(warm.total, expected - terms.reconstruction)


def test_free_bits_leave_dims_under_the_floor_unpenalized_and_kld_reports_the_plain_kl():
    mu = torch.tensor([[0.1, 2.0], [-0.1, 2.0]], requires_grad=True)  # dim 0: ~0.005 nats, dim 1: 2 nats
    logvar = torch.zeros(2, 2)
    plain = kl_divergence(mu, logvar)
    floored = kl_divergence(mu, logvar, free_bits=0.5)
    assert plain.item() == pytest.approx(0.005 + 2.0)
    assert floored.item() == pytest.approx(0.5 + 2.0)  # dim 0 counts as 0.5 nats
    floored.backward()
    assert mu.grad[:, 0].abs().sum() == 0 and mu.grad[:, 1].abs().sum() > 0  # only dim 1 is penalized

    model = SpritesVAE().eval()
    images = (torch.rand(4, 1, 64, 64) > 0.5).to(torch.uint8) * 255
    attributes = torch.rand(4, 5)
    paper = arvae_objective(model, images, attributes, (0, 1, 2, 3, 4), beta=4.0, gamma=10.0, delta=1.0)
    free = arvae_objective(model, images, attributes, (0, 1, 2, 3, 4), beta=4.0, gamma=10.0, delta=1.0,
                           free_bits=100.0)
    assert free.kld.item() == pytest.approx(paper.kld.item())
    assert free.total.item() == pytest.approx(paper.total.item() + 4.0 * (100.0 * 10 - paper.kld.item()), rel=1e-5)
