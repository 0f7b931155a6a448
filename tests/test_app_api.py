"""The app as a scripting API: `python app.py` serving the shipped checkpoints (see conftest.py),
every api_name called through gradio_client, bad input answered with clear errors."""
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from arvae import registry  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGE_KEYS = [k for k, s in registry.DATASETS.items() if s.domain == "image"]
MUSIC_KEYS = [k for k, s in registry.DATASETS.items() if s.domain == "music"]
IMAGE_ACTIONS = ("prepare", "example", "prior", "encode", "decode", "traverse", "compare", "surface")
MUSIC_ACTIONS = ("example", "prior", "import", "encode", "decode", "traverse", "traversal_scores", "surface")
FEATURE_ACTIONS = ("pad", "set_attribute", "measure", "controllability", "link")  # issue 14, every dataset
MELODY_ACTIONS = ("melody", "melody_example", "melody_import")  # issue 14, music datasets
EXPECTED = {f"{k}_{a}" for k in IMAGE_KEYS for a in IMAGE_ACTIONS} | \
    {f"{k}_{a}" for k in MUSIC_KEYS for a in MUSIC_ACTIONS + MELODY_ACTIONS} | \
    {f"{k}_{a}" for k in IMAGE_KEYS + MUSIC_KEYS for a in FEATURE_ACTIONS} | {"about_metrics"}


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def plot_of(value) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def arr(value) -> np.ndarray:
    """A figure array as numpy: plain JSON lists or Plotly's base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return data.reshape([int(n) for n in str(shape).split(",")]) if shape else data
    return np.array(value if value is not None else [], dtype=float)


def read_wav(path):
    with wave.open(str(path)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
        samples = np.frombuffer(frames, dtype=np.int16).reshape(-1, w.getnchannels())
    return rate, samples


def z_of(text, dim):
    z = json.loads(text)
    assert len(z) == dim and all(isinstance(v, float) for v in z)
    return z


def spec(key):
    return registry.get(key)


def latent_dim(key):
    return spec(key).model_kwargs["latent_dim"]


# ------------------------------------------------------------------------------------ the endpoints

def test_every_action_has_a_documented_api_name(client):
    names = {name.lstrip("/") for name in client.view_api(return_format="dict", print_info=False)["named_endpoints"]}
    assert names == EXPECTED
    readme = (ROOT / "README.md").read_text()
    api_section = readme.split("## API", 1)[1]
    for name in sorted(EXPECTED):
        assert f"/{name}" in api_section, f"{name} is not documented in README ## API"


def test_startup_loads_no_model(app_server):
    assert app_server.startup_s < 90
    startup_log = app_server.startup_log
    assert "loaded sprites/" not in startup_log and "Running on" in startup_log


@pytest.mark.parametrize("key", IMAGE_KEYS)
def test_image_endpoints(client, key, tmp_path):
    size = 64 if key == "sprites" else 28
    dim, n_attr = latent_dim(key), len(spec(key).attribute_names)

    example = client.predict(0, api_name=f"/{key}_example")
    assert Image.open(example).size == (size, size)

    # any picture: large, RGB, light background -> the model's input format
    photo = np.full((240, 180, 3), 230, np.uint8)
    photo[60:180, 70:110] = (10, 10, 60)
    Image.fromarray(photo).save(tmp_path / "photo.jpg")
    prepared = Image.open(client.predict(handle_file(str(tmp_path / "photo.jpg")), api_name=f"/{key}_prepare"))
    assert prepared.size == (size, size) and np.asarray(prepared.convert("L"))[0, 0] < 10  # inverted

    reconstruction, z_text, table = client.predict(handle_file(example), "arvae", api_name=f"/{key}_encode")
    z = z_of(z_text, dim)
    assert Image.open(reconstruction).size == (size, size)
    assert table.count("\n") >= n_attr and "z[0]" in table

    # moving an attribute's slider (its regularized dim) changes the decoded image
    first_dim = spec(key).regularized_dims[0]
    low, high = list(z), list(z)
    low[first_dim], high[first_dim] = -4.0, 4.0
    image_low, _ = client.predict("arvae", json.dumps(low), api_name=f"/{key}_decode")
    image_high, measured = client.predict("arvae", json.dumps(high), api_name=f"/{key}_decode")
    a = np.asarray(Image.open(image_low).convert("L"), dtype=float)
    b = np.asarray(Image.open(image_high).convert("L"), dtype=float)
    assert a.shape == (size, size) and np.abs(a - b).max() > 0
    assert "decoded (measured)" in measured

    grid, lines = client.predict("arvae", z_text, 5, api_name=f"/{key}_traverse")
    grid = Image.open(grid)
    assert grid.width > 5 * size and grid.height > n_attr * size
    lines = plot_of(lines)
    assert len(lines["data"]) == n_attr and all(len(arr(t["x"])) == 5 for t in lines["data"])

    heatmap = plot_of(client.predict("arvae", z_text, spec(key).attribute_names[1], dim - 1, 8,
                                     api_name=f"/{key}_surface"))
    values = arr(heatmap["data"][0]["z"])
    assert heatmap["data"][0]["type"] == "heatmap" and values.shape == (8, 8)
    assert len(arr(heatmap["data"][0]["x"])) == 8

    both, overlay = client.predict(handle_file(example), 3, api_name=f"/{key}_compare")
    assert Image.open(both).width > 2 * 3 * size
    assert len(plot_of(overlay)["data"]) == 2 * n_attr

    prior_a = client.predict("beta-vae", 7, api_name=f"/{key}_prior")
    prior_b = client.predict("beta-vae", 7, api_name=f"/{key}_prior")
    assert np.array_equal(np.asarray(Image.open(prior_a)), np.asarray(Image.open(prior_b)))
    _, beta_z, beta_table = client.predict(handle_file(prior_a), "beta-vae", api_name=f"/{key}_encode")
    z_of(beta_z, dim)
    grid_beta, _ = client.predict("beta-vae", beta_z, 3, api_name=f"/{key}_traverse")
    assert Image.open(grid_beta).size[1] == grid.size[1]


@pytest.mark.parametrize("key", MUSIC_KEYS)
def test_music_endpoints(client, key, tmp_path):
    from arvae.music import export

    dim = latent_dim(key)
    tokens_text = client.predict(0, api_name=f"/{key}_example")
    tokens = json.loads(tokens_text)
    assert len(tokens) == 24

    z_text, roll, audio = client.predict(tokens_text, "arvae", api_name=f"/{key}_encode")
    z = z_of(z_text, dim)
    bars = [t for t in plot_of(roll)["data"] if t["type"] == "bar"]
    assert bars and len(arr(bars[0]["x"])) > 0  # the held-out measure has notes
    rate, samples = read_wav(audio)
    assert len(samples) == round(2.5 * rate) and np.abs(samples).max() > 1000  # 1 measure at 120 bpm + release

    decoded, roll, audio, notation, files, table = client.predict("arvae", z_text, api_name=f"/{key}_decode")
    assert len(json.loads(decoded)) == 24
    assert plot_of(roll)["data"][0]["type"] == "bar"
    rate, samples = read_wav(audio)
    assert len(samples) == round(2.5 * rate)
    assert "<svg" in notation
    assert sorted(Path(f).suffix for f in files) == [".mid", ".musicxml"]
    assert "measured" in table

    steps = 5
    figure, *audios, note, traversed_z = client.predict("arvae", z_text, steps, api_name=f"/{key}_traverse")
    assert z_of(traversed_z, dim) == z
    data = plot_of(figure)["data"]
    assert [t["type"] for t in data] == ["bar", "scatter"] * 4
    assert all(len(arr(t["x"])) == steps for t in data[1::2])
    any_notes = False
    for path in audios:
        rate, samples = read_wav(path)
        assert len(samples) == round((steps * 2.0 + 0.5) * rate)
        any_notes |= bool(np.abs(samples).max() > 0)
    traversal_notes = sum(len(arr(t["x"])) for t in data[0::2])
    assert any_notes == (traversal_notes > 0)  # audio is silent exactly when nothing was decoded
    # the notation and files of the traversals, made when their panel opens
    files, notation = client.predict("arvae", traversed_z, steps, api_name=f"/{key}_traversal_scores")
    assert len(files) == 8 and {Path(f).suffix for f in files} == {".mid", ".musicxml"}
    assert notation.count("<h4>") == 4 and notation.count('class="definition-scale"') == 4
    midi = [f for f in files if f.endswith(".mid")][0]
    import pretty_midi

    assert pretty_midi.PrettyMIDI(midi).get_end_time() <= steps * 2.0 + 1e-6

    heatmap = plot_of(client.predict("arvae", z_text, "note_density", dim - 1, 8, api_name=f"/{key}_surface"))
    assert arr(heatmap["data"][0]["z"]).shape == (8, 8)

    prior_tokens = json.loads(client.predict("beta-vae", 1, api_name=f"/{key}_prior"))
    assert len(prior_tokens) == 24
    client.predict(json.dumps(prior_tokens), "beta-vae", api_name=f"/{key}_encode")

    # upload: a MIDI file of two held-out measures, and an ABC tune
    midi_path = export.write_midi(np.array([tokens, tokens]), tmp_path / "two.mid")
    messages, measures, choice = client.predict(handle_file(str(midi_path)), api_name=f"/{key}_import")
    assert "Read 2 measures" in messages and np.array(json.loads(measures)).shape == (2, 24)
    assert choice["value"] == 0 and len(choice["choices"]) == 2  # the measure menu
    abc = tmp_path / "tune.abc"
    abc.write_text("X:1\nT:Test tune\nM:4/4\nL:1/8\nK:G\nGABc d2 e2|d2 B2 G4|]\n")
    messages, measures, _ = client.predict(handle_file(str(abc)), api_name=f"/{key}_import")
    assert "Read 2 measures" in messages and len(json.loads(measures)) == 2


def test_about_metrics_shows_the_shipped_metrics_beside_the_paper(client):
    text = client.predict(api_name="/about_metrics")
    assert "not evaluated yet" not in text.lower()
    assert "0.85" in text and "99.75" in text and "Interpretability" in text
    for key in registry.DATASETS:  # every committed metrics.json is shown as evaluated
        shipped = json.loads((ROOT / "checkpoints" / key / "metrics.json").read_text())
        section = text.split(f"#### {spec(key).display_name}", 1)[1].split("####", 1)[0]
        assert f"{shipped['arvae']['interpretability']:.3f}" in section


# -------------------------------------------------------------------------------------- bad input

def check_error(client, args, api_name, *patterns):
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    message = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, message, re.I), message
    # the app keeps serving
    assert Image.open(client.predict(1, api_name="/sprites_example")).size == (64, 64)


def test_bad_uploads_give_clear_errors_and_the_app_keeps_serving(client, app_server, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("this is text, not a picture")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    broken_midi = tmp_path / "song.mid"
    broken_midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01" + b"\xff" * 50)
    check_error(client, (handle_file(str(fake)),), "/sprites_prepare", "photo.png", "not an image")
    check_error(client, (handle_file(str(fake)), "arvae"), "/mnist_encode", "not an image")
    check_error(client, (handle_file(str(empty)),), "/mnist_prepare", "empty")
    check_error(client, (handle_file(str(broken_midi)),), "/bach_import", "song.mid", "not a readable MIDI")
    empty_abc = tmp_path / "tune.abc"
    empty_abc.write_bytes(b"")
    check_error(client, (handle_file(str(empty_abc)),), "/folk_import", "tune.abc", "empty")
    check_error(client, (handle_file(str(fake)),), "/folk_import", "invalid file type", r"\.mid")
    check_error(client, ("arvae", "[1, 2, 3]"), "/sprites_decode", "10 finite numbers")
    check_error(client, ("arvae", "not json"), "/bach_traverse", "latent code")
    check_error(client, ("[1, 2]", "arvae"), "/folk_encode", "24")
    check_error(client, ("arvae", json.dumps([0.0] * 16), "area", 0, 8), "/mnist_surface", "differ")
    check_error(client, ("arvae", json.dumps([0.0] * 10), "scale", 5, 99), "/sprites_surface", "maximum value 32")
    check_error(client, (10_000,), "/sprites_example", r"greater than maximum value \d+")
    check_error(client, ("gan", json.dumps([0.0] * 10)), "/sprites_decode", "gan", "arvae", "beta-vae")
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\0" * (21 * 1024 * 1024))
    with pytest.raises(Exception, match="maximum file size"):
        client.predict(handle_file(str(huge)), api_name="/sprites_prepare")
    assert app_server.alive()


# ----------------------------------------------------------------------- a damaged checkpoint folder

def test_a_broken_checkpoint_disables_only_its_own_tab(damaged_app_server):
    client = Client(damaged_app_server.url, verbose=False)
    names = {n.lstrip("/") for n in client.view_api(return_format="dict", print_info=False)["named_endpoints"]}
    assert not any(n.startswith("folk_") for n in names)
    assert {"sprites_encode", "mnist_encode", "bach_traverse", "about_metrics"} <= names
    config = json.loads(_get(damaged_app_server.url + "config"))
    texts = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])
    assert "Folk Music is not available" in texts and "not a valid safetensors file" in texts
    assert "β-VAE checkpoint is not available" in texts  # MNIST: AR-VAE only, with a notice
    # the rest works
    example = client.predict(0, api_name="/mnist_example")
    _, z_text, _ = client.predict(handle_file(example), "arvae", api_name="/mnist_encode")
    with pytest.raises(AppError, match="β-VAE"):
        client.predict(handle_file(example), "beta-vae", api_name="/mnist_encode")
    tokens = client.predict(0, api_name="/bach_example")
    client.predict(tokens, "arvae", api_name="/bach_encode")
    assert damaged_app_server.alive()


def test_metrics_json_fills_the_table_and_gives_the_beta_vae_dims(damaged_app_server):
    client = Client(damaged_app_server.url, verbose=False)
    text = client.predict(api_name="/about_metrics")
    sprites, rest = text.split("#### Morpho-MNIST")
    assert "0.777" in sprites and "99.12" in sprites and "0.660" in sprites and "not evaluated yet" not in sprites
    assert "not evaluated yet" in rest
    example = client.predict(0, api_name="/sprites_example")
    _, _, table = client.predict(handle_file(example), "beta-vae", api_name="/sprites_encode")
    assert "| shape | z[7] |" in table and "| orientation | z[3] |" in table and "| pos y | z[9] |" in table


def _get(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


# ------------------------------------------------------------------------- model loading (in-process)

def test_hub_unreachable_falls_back_to_the_bundled_files(app_checkpoints, monkeypatch):
    import time

    from arvae import hub

    monkeypatch.setenv("ARVAE_HUB_REPO", "nobody/no-such-arvae-models")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "_hub_failed_at", {})
    monkeypatch.setattr(hub, "_hub_roots", {})
    store = hub.ModelStore(app_checkpoints["root"])
    assert store.status("sprites", "arvae") == (True, "")
    started = time.monotonic()
    loaded = store.get(registry.get("sprites"), "arvae")
    assert time.monotonic() - started < 10
    assert loaded.origin.startswith("bundled") and loaded.metadata["steps"] == 2
    assert store.get(registry.get("sprites"), "arvae") is loaded  # cached, not reloaded
    assert "nobody/no-such-arvae-models" in hub._hub_failed_at  # not retried on every request


def test_hub_files_are_used_when_the_hub_answers(app_checkpoints, monkeypatch, tmp_path):
    import shutil

    import huggingface_hub

    from arvae import hub

    snapshot = tmp_path / "hub-cache" / "snapshots" / "abc123"
    requested = []

    def fake_download(repo_id, filename, revision=None, etag_timeout=None, **kwargs):
        requested.append((repo_id, filename, revision, etag_timeout))
        target = snapshot / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(app_checkpoints["root"] / filename, target)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("ARVAE_HUB_REPO", "someone/arvae-models")
    monkeypatch.setenv("ARVAE_HUB_REVISION", "v1")
    monkeypatch.setattr(hub, "_hub_failed_at", {})
    monkeypatch.setattr(hub, "_hub_roots", {})
    store = hub.ModelStore(tmp_path / "no-bundled-files")
    assert store.status("mnist", "beta-vae")[0]  # usable: will come from the Hub
    loaded = store.get(registry.get("mnist"), "beta-vae")
    assert loaded.origin == "Hugging Face Hub: someone/arvae-models"
    assert ("someone/arvae-models", "mnist/beta-vae/model.safetensors", "v1", hub.HUB_TIMEOUT_S) in requested


def test_damaged_checkpoints_are_detected_without_loading(app_checkpoints, tmp_path):
    import shutil

    from arvae import hub

    folder = tmp_path / "sprites" / "arvae"
    shutil.copytree(app_checkpoints["root"] / "sprites" / "arvae", folder)
    hub.check_model_dir(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(hub.CheckpointError, match="truncated"):
        hub.check_model_dir(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(hub.CheckpointError, match="config.json is not valid JSON"):
        hub.check_model_dir(folder)
    (folder / "config.json").unlink()
    with pytest.raises(hub.CheckpointError, match="missing config.json"):
        hub.check_model_dir(folder)
