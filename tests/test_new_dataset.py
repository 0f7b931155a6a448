"""A fifth dataset of each domain is one registry entry and one data module -- here both written in
this test, registered at run time, with no change to any project file: ``train.py`` trains it,
``arvae.evaluate`` evaluates it, the explorer core serves it and the app shows a working tab for it."""
import json
import socket

import numpy as np
import pytest
import torch

from arvae import image_input, models, registry
from arvae.data import music
from arvae.data.base import AttributeDataset, check_split
from arvae.music import attributes as music_attributes
from arvae.music.tokens import FIRST_PITCH_TOKEN, REST, VOCAB_SIZE

SIZE = 28


# ----------------------------------------------------------------------------- an image data module: bars

def bars_measure(images) -> np.ndarray:
    """(N, H, W) in [0, 1] -> (N, 2): the bar's horizontal position (centre of mass) and its width."""
    images = np.asarray(images, dtype=np.float64)
    columns = images.sum(axis=1)  # (N, W)
    mass = columns.sum(axis=1)
    with np.errstate(all="ignore"):
        position = (columns * np.arange(SIZE)).sum(axis=1) / mass / SIZE
    width = (columns > 0.5 * SIZE / 2).sum(axis=1) / SIZE
    return np.stack([np.where(mass > 0, position, np.nan), width], axis=1)


def bars_load_split(split: str, data_dir=None, max_items=None) -> AttributeDataset:
    """Vertical bars: every (position, width) once, split by a seeded permutation."""
    check_split(split)
    grid = [(x, w) for w in range(1, 7) for x in range(2, SIZE - 2 - w)]
    order = np.random.default_rng(0).permutation(len(grid))
    chosen = {"train": order[:-32], "val": order[-32:-16], "test": order[-16:]}[split][:max_items]
    images = np.zeros((len(chosen), 1, SIZE, SIZE), np.uint8)
    for i, k in enumerate(chosen):
        x, w = grid[k]
        images[i, 0, 4:-4, x:x + w] = 255
    return AttributeDataset(torch.from_numpy(images), torch.from_numpy(bars_measure(images[:, 0] / 255).astype(np.float32)),
                            ("position", "width"), "synthetic bars (tests/test_new_dataset.py)")


# ----------------------------------------------------------------------------- a music data module: tiny tunes

def tiny_corpus() -> music.MusicCorpus:
    rng = np.random.default_rng(0)
    tokens = np.zeros((120, 24), np.int64)
    for row in tokens:
        onsets = np.sort(rng.choice(24, rng.integers(2, 8), replace=False))
        onsets[0] = 0
        row[onsets] = rng.integers(FIRST_PITCH_TOKEN + 5, VOCAB_SIZE - 5, len(onsets))
        row[onsets[-1]] = REST if rng.random() < 0.3 else row[onsets[-1]]
    piece_ids = np.repeat(np.arange(20), 6)
    return music.MusicCorpus("tinytunes", "random measures (tests/test_new_dataset.py)", tokens, piece_ids,
                             [f"tunes/tune{i}" for i in range(20)], {})


def tunes_load_split(split: str, data_dir=None, max_items=None) -> AttributeDataset:
    return music.make_split(tiny_corpus(), split, augment=False)


def tunes_load_pieces(split: str, data_dir=None, max_items=None) -> list[str]:
    return music.piece_names(tiny_corpus(), split)


# ----------------------------------------------------------------------------- the two registry entries

BARS = registry.DatasetSpec(
    key="bars", display_name="Bars", domain="image", load_split=bars_load_split,
    attribute_names=("position", "width"), regularized_dims=(0, 1), model_class=models.MnistVAE,
    model_kwargs={"latent_dim": 4, "channels": 8, "bottleneck_channels": 2, "hidden": 16}, measure=bars_measure,
    input=registry.ImageInput(size=SIZE, fit=image_input.fit_in_place, binary=True), batch_size=16, epochs=1,
    benchmark={"surface": ("width", 3)})
TUNES = registry.DatasetSpec(
    key="tinytunes", display_name="Tiny tunes", domain="music", load_split=tunes_load_split,
    load_pieces=tunes_load_pieces, attribute_names=music_attributes.ATTRIBUTE_NAMES, regularized_dims=(0, 1, 2, 3),
    model_class=models.MeasureVAE, model_kwargs={"latent_dim": 6, "vocab_size": VOCAB_SIZE, "hidden": 16},
    measure=music_attributes.measure, input=registry.MusicInput(), beta=0.001, gamma=1.0, delta=10.0,
    batch_size=16, epochs=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, monkeypatch_module):
    """Both datasets registered, both models of each trained by train.py for a few steps, their
    held-out samples exported and both evaluated by arvae.evaluate."""
    import train
    from arvae import evaluate, samples

    for spec in (BARS, TUNES):
        registry.register(spec)
    root = tmp_path_factory.mktemp("fifth") / "checkpoints"
    monkeypatch_module.setenv("ARVAE_CACHE", str(root.parent / "cache"))
    for spec in (BARS, TUNES):
        train.main(["--dataset", spec.key, "--model", "both", "--max-steps", "3", "--device", "cpu",
                    "--output-dir", str(root), "--overwrite"])
        samples.export(spec.key, output_dir=root, num_samples=12)
        evaluate.main(["--dataset", spec.key, "--checkpoints", str(root), "--num-samples", "0",
                       "--mi-estimator", "histogram"])
    yield root
    for spec in (BARS, TUNES):
        registry.DATASETS.pop(spec.key)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_register_refuses_a_taken_key():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("mnist"))


@pytest.mark.parametrize("spec", [BARS, TUNES], ids=lambda s: s.key)
def test_trained_and_evaluated(trained, spec):
    for kind in registry.MODEL_KINDS:
        config = json.loads((trained / spec.key / kind / "config.json").read_text())
        assert config["model_class"] == spec.model_class.__name__ and config["latent_dim"] == spec.latent_dim
    results = json.loads((trained / spec.key / "metrics.json").read_text())
    for kind in registry.MODEL_KINDS:
        assert 0.0 <= results[kind]["reconstruction_accuracy"] <= 1.0
        assert set(results[kind]["attribute_dims"]) == set(spec.attribute_names)
    assert "pieces" in np.load(trained / spec.key / "samples.npz").files or spec is BARS


@pytest.mark.parametrize("spec", [BARS, TUNES], ids=lambda s: s.key)
def test_the_explorer_core_serves_it(trained, spec):
    from arvae.explorer import explorers

    explorer = explorers(trained)[spec.key]
    item = explorer.example(0)
    for kind in registry.MODEL_KINDS:
        z = explorer.encode(kind, item)
        assert z.shape == (spec.latent_dim,)
        decoded = explorer.decode(kind, z)
        assert decoded.shape == (1, *spec.input.shape[-2:]) if spec is BARS else decoded.shape == (1, 24)
        tr = explorer.traverse(kind, z, 3)
        assert tr.measured.shape == (len(spec.attribute_names), 3) and len(tr.dims) == len(spec.attribute_names)
        dim_x = tr.dims[1]
        other = next(d for d in range(spec.latent_dim) if d != dim_x)
        surface, x, y = explorer.surface(kind, z, spec.attribute_names[1], other, 8)
        assert surface.shape == (8, 8) and (x, y) == (dim_x, other)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_app_shows_a_working_tab_for_each(trained, tmp_path):
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file

    import app

    demo = app.build_demo(trained)
    demo.queue().launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True,
                        quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        names = {n.lstrip("/") for n in client.view_api(return_format="dict", print_info=False)["named_endpoints"]}
        assert {"bars_prepare", "bars_compare", "tinytunes_import", "tinytunes_surface"} <= names
        image = client.predict(0, api_name="/bars_example")
        reconstruction, z_text, table = client.predict(handle_file(image), "arvae", api_name="/bars_encode")
        assert len(json.loads(z_text)) == 4 and "| position | z[0] |" in table
        grid, lines = client.predict("arvae", z_text, 3, api_name="/bars_traverse")
        assert grid.endswith(".png")
        heatmap = client.predict("arvae", z_text, "width", 3, 8, api_name="/bars_surface")
        assert heatmap["type"] == "plotly"
        tokens = client.predict(0, api_name="/tinytunes_example")
        z_text, roll, audio = client.predict(tokens, "beta-vae", api_name="/tinytunes_encode")
        assert len(json.loads(z_text)) == 6
        figure, *audios, info, traversed_z = client.predict("arvae", z_text, 3, api_name="/tinytunes_traverse")
        assert figure["type"] == "plotly" and len(audios) == 4
        files, notation = client.predict("arvae", traversed_z, 3, api_name="/tinytunes_traversal_scores")
        assert len(files) == 8 and "<svg" in notation
        with pytest.raises(Exception, match="latent code"):  # bad input: a clear message, the app serves on
            client.predict("arvae", "[1, 2]", 3, api_name="/tinytunes_traverse")
        assert client.predict("arvae", z_text, api_name="/tinytunes_decode")[0].startswith("[")
    finally:
        demo.close()
