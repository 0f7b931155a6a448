import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from arvae.models import FoldConvTranspose2d, MeasureVAE, MnistVAE, SpritesVAE
from arvae.music.tokens import CONTINUATION, REST, canonicalize

CASES = [
    (SpritesVAE, lambda n: (torch.rand(n, 1, 64, 64) * 255).to(torch.uint8), (1, 64, 64), 10),
    (MnistVAE, lambda n: (torch.rand(n, 1, 28, 28) * 255).to(torch.uint8), (1, 28, 28), 16),
    (MeasureVAE, lambda n: torch.randint(0, 32, (n, 24)), (24,), 32),
]


@pytest.mark.parametrize("model_class,make_inputs,data_shape,latent_dim", CASES)
def test_forward_backward_shapes(model_class, make_inputs, data_shape, latent_dim):
    torch.manual_seed(0)
    model = model_class().train()
    x = model.preprocess(make_inputs(5))
    logits, mu, logvar, z = model(x)
    assert mu.shape == logvar.shape == z.shape == (5, latent_dim)
    assert logits.shape[:1 + len(data_shape)] == (5, *data_shape)
    loss = model.reconstruction_loss(logits, x)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    generated = model.generate(torch.randn(3, latent_dim))
    assert generated.shape == (3, *data_shape)


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, size", [
    (64, 1, 4, 1, 0, 25),   # MNIST's last layer
    (32, 1, 4, 2, 1, 32),   # the sprites decoder's last layer
    (8, 3, 3, 2, 0, 5),     # several output channels, odd kernel
])
def test_fold_transposed_convolution_equals_torch_and_trains_alike(cin, cout, kernel, stride, padding, size):
    torch.manual_seed(0)
    layer = FoldConvTranspose2d(cin, cout, kernel, stride, padding)
    x = torch.randn(5, cin, size, size, requires_grad=True)
    expected = torch.nn.functional.conv_transpose2d(x, layer.weight, layer.bias, stride, padding)
    out = layer(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x.detach().contiguous(memory_format=torch.channels_last)), expected.detach(),
                               atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), (x, layer.weight, layer.bias))
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, layer.weight, layer.bias))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-3)  # sums over ~3k products
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):   # how the app decodes
        torch.testing.assert_close(layer(x).float(), expected.detach(), atol=0.05, rtol=0.02)
    with pytest.raises(ValueError, match="dilation=1"):
        FoldConvTranspose2d(cin, cout, kernel, dilation=2)


def test_eval_mode_is_deterministic_and_uses_the_mean():
    model = MnistVAE().eval()
    x = torch.rand(2, 1, 28, 28)
    _, mu, _, z = model(x)
    assert torch.equal(mu, z)
    assert torch.equal(model(x)[0], model(x)[0])


def test_batch_norm_sprites_model_saves_its_statistics_and_codes_each_image_alone_in_eval(tmp_path):
    torch.manual_seed(0)
    model = SpritesVAE(batch_norm=True).train()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    images = (torch.rand(16, 1, 64, 64) > 0.9).to(torch.uint8) * 255
    model(model.preprocess(images))  # a training step's forward updates the running statistics
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["batch_norm"] is True
    loaded = SpritesVAE.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    x = loaded.preprocess(images)
    _, mu_batch, _, _ = loaded(x)
    _, mu_alone, _, _ = loaded(x[:1])  # eval mode: running statistics, not the batch's
    torch.testing.assert_close(mu_alone, mu_batch[:1], rtol=1e-4, atol=1e-5)


def test_decoder_channels_widen_the_decoder_alone_and_older_configs_load_as_before(tmp_path):
    narrow, wide = SpritesVAE(batch_norm=True), SpritesVAE(batch_norm=True, decoder_channels=64)
    encoder = [n for n in narrow.state_dict() if n.startswith(("encoder", "mu", "logvar"))]
    assert all(narrow.state_dict()[n].shape == wide.state_dict()[n].shape for n in encoder)
    assert wide.decoder_conv[0][0].in_channels == 64 and narrow.decoder_conv[0][0].in_channels == 32
    assert wide.eval().generate(torch.randn(3, 10)).shape == (3, 1, 64, 64)
    wide.save_pretrained(tmp_path / "wide")
    assert SpritesVAE.from_pretrained(tmp_path / "wide").decoder_conv[0][0].in_channels == 64
    narrow.save_pretrained(tmp_path / "older")  # written before the option existed: no such key
    config = json.loads((tmp_path / "older" / "config.json").read_text())
    config.pop("decoder_channels", None)
    (tmp_path / "older" / "config.json").write_text(json.dumps(config))
    assert SpritesVAE.from_pretrained(tmp_path / "older").decoder_conv[0][0].in_channels == 32


def test_measure_vae_generation_is_greedy_autoregressive_in_canonical_form():
    torch.manual_seed(0)
    model = MeasureVAE().eval()
    z = torch.randn(4, 32)
    with torch.no_grad():
        greedy = model.decode_logits(z).argmax(-1)
        # teacher forcing on the greedy tokens reproduces the same argmax at every tick
        assert torch.equal(model.decode_logits(z, greedy).argmax(-1), greedy)
    tokens = model.generate(z)
    assert tokens.dtype == torch.long and tokens.min() >= 0 and tokens.max() < 32
    assert np.array_equal(tokens.numpy(), canonicalize(greedy.numpy()))


def test_a_decoded_rest_after_a_rest_is_a_continuation():
    model = MeasureVAE().eval()
    with torch.no_grad():  # a decoder that answers "rest" at every tick
        model.output.bias.fill_(-1e4)
        model.output.bias[REST] = 1e4
        assert (model.decode_logits(torch.randn(3, 32)).argmax(-1) == REST).all()
    tokens = model.generate(torch.randn(3, 32))
    assert (tokens[:, 0] == REST).all() and (tokens[:, 1:] == CONTINUATION).all()


@pytest.mark.parametrize("model_class", [SpritesVAE, MnistVAE, MeasureVAE])
def test_save_and_load_round_trip(tmp_path, model_class):
    model = model_class()
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    loaded = model_class.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not loaded.training


def test_config_records_constructor_arguments(tmp_path):
    MeasureVAE(vocab_size=20, latent_dim=8).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["vocab_size"] == 20 and config["latent_dim"] == 8
    loaded = MeasureVAE.from_pretrained(tmp_path)
    assert loaded.vocab_size == 20 and loaded.latent_dim == 8


def test_loading_never_falls_back_to_pickle(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError):
        SpritesVAE.from_pretrained(tmp_path)


def test_loading_is_strict(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    save_file({"unexpected": torch.zeros(1)}, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError):
        SpritesVAE.from_pretrained(tmp_path)
