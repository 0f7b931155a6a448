"""The fast decoding paths give what the plain ones give: channels-last image models (the app's
model store prepares every model so) and bfloat16 surface decodes (where the CPU has it natively).
Agreement, not speed: ``python benchmarks/bench.py`` measures the speed."""
from pathlib import Path

import numpy as np
import pytest
import torch

from arvae import checkpoint, hub, models, registry, traversal

ROOT = Path(__file__).resolve().parents[1]


def shipped(key, kind="arvae"):
    try:
        model, _ = checkpoint.load_trained(registry.get(key), kind, ROOT / "checkpoints")
    except FileNotFoundError:
        pytest.skip(f"no shipped {key} checkpoint")
    return model


@pytest.mark.parametrize("key", ["sprites", "mnist"])
def test_channels_last_models_decode_and_encode_the_same(key):
    plain = shipped(key)
    fast = models.prepare_for_inference(shipped(key))
    assert not fast.training
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((40, plain.latent_dim)).astype(np.float32))
    np.testing.assert_allclose(traversal.decode(fast, z), traversal.decode(plain, z), atol=1e-5)
    images = torch.from_numpy((traversal.decode(plain, z[:8]) * 255).astype(np.uint8)[:, None])
    np.testing.assert_allclose(traversal.encode(fast, images), traversal.encode(plain, images), atol=1e-4)
    # a prepared model still saves (save_pretrained packs the channels-last weights)
    with torch.no_grad():
        state = {k: v.contiguous() for k, v in fast.state_dict().items()}
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(state[name], value)


def test_model_store_prepares_models(tmp_path):
    store = hub.ModelStore(ROOT / "checkpoints")
    spec = registry.get("mnist")
    if not store.status(spec.key, "arvae")[0]:
        pytest.skip("no shipped MNIST checkpoint")
    model = store.get(spec, "arvae").model
    assert not model.training
    conv = model.decoder_conv[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_music_decoding_keeps_integer_tokens():
    model = shipped("folk")
    z = torch.zeros(3, model.latent_dim)
    tokens = traversal.decode(model, z)
    assert tokens.shape == (3, 24) and np.issubdtype(tokens.dtype, np.integer)
    assert traversal.surface_precision(model) == "fp32"  # greedy tokens stay in float32


def test_bf16_surface_agrees_with_fp32(monkeypatch):
    """What the app's MNIST surface shows: morphometrics measured on bfloat16 decodes match the
    float32 ones on 8 planes (nearly all pixels equal after thresholding; median Pearson r >= 0.98
    per attribute, 0.95 for length). Skeleton length moves by a whole medial-axis spur when one pixel
    flips (0.05 % of them do), so on single planes its r falls to ~0.82, for the γ-10 model shipped
    before too (its median over these planes: 0.987; the shipped model's: 0.976)."""
    spec = registry.get("mnist")
    model = models.prepare_for_inference(shipped("mnist"))
    correlations = []
    for seed in range(1, 5):
        z = torch.from_numpy(np.random.default_rng(seed).standard_normal(16).astype(np.float32))
        for dim_x in (0, 1):
            latents = traversal.surface_latents(z, dim_x, 7, 12)
            exact = traversal.decode(model, latents, precision="fp32")
            low = traversal.decode(model, latents, precision="bf16")
            assert low.dtype == np.float32 and low.shape == exact.shape
            assert np.abs(low - exact).max() < 0.05 and np.abs(low - exact).mean() < 0.005
            assert np.mean((low >= 0.5) != (exact >= 0.5)) < 0.005
            a, b = spec.measure(low), spec.measure(exact)
            ok = np.isfinite(a) & np.isfinite(b)
            assert ok.mean() > 0.95
            correlations.append([np.corrcoef(a[ok[:, j], j], b[ok[:, j], j])[0, 1] for j in range(a.shape[1])])
    medians = np.median(np.array(correlations), axis=0)
    bars = np.array([0.95 if name == "length" else 0.98 for name in spec.attribute_names])
    assert (medians >= bars).all(), dict(zip(spec.attribute_names, medians.round(3)))
    # the switch
    monkeypatch.setenv(traversal.SURFACE_BF16_ENV, "0")
    assert traversal.surface_precision(model) == "fp32"
    monkeypatch.setenv(traversal.SURFACE_BF16_ENV, "1")
    assert traversal.surface_precision(model) == ("bf16" if traversal.native_bf16() else "fp32")
    with pytest.raises(ValueError):
        traversal.decode(model, latents[:2], precision="fp16")


def test_attribute_surface_decodes_and_measures_in_overlapping_chunks(monkeypatch):
    """The surface is decoded chunk by chunk while a helper thread measures the previous chunk,
    asking the measure for the shown attribute only: the same values as decoding and measuring
    everything at once."""
    spec = registry.get("mnist")
    model = models.prepare_for_inference(shipped("mnist"))
    monkeypatch.setattr(traversal, "SURFACE_CHUNK", 64)
    z = torch.from_numpy(np.random.default_rng(2).standard_normal(16).astype(np.float32))
    latents = traversal.surface_latents(z, 0, 7, 12)  # 144 codes: three chunks
    decoded = traversal.decode(model, latents, precision=traversal.surface_precision(model))
    everything = spec.measure(decoded)
    for attribute in (0, 2, 4):
        surface = traversal.attribute_surface(model, spec.measure, z, 0, 7, attribute, 12)
        assert surface.shape == (12, 12)
        expected = everything[:, attribute].reshape(12, 12)
        assert np.mean(np.isclose(surface, expected, rtol=1e-3, atol=1e-3, equal_nan=True)) > 0.97
