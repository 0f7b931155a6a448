"""Issue 14's features through the launched app (`python app.py` on the shipped checkpoints, see
conftest.py), called with gradio_client and an MCP client: the attribute pad, set-attribute,
whole melodies, the controllability panel, the MCP tool list and shareable links; bad input is
answered with a message naming what was wrong."""
import asyncio
import json
import re
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from arvae import checkpoint, evaluate, registry, traversal  # noqa: E402
from arvae.metrics import spearman_rows  # noqa: E402
from arvae.music.file_import import import_file  # noqa: E402
from arvae.samples import load_samples  # noqa: E402
from conftest import SHIPPED_CHECKPOINTS  # noqa: E402

KEYS = list(registry.DATASETS)
MCP_TOOLS = ("encode", "decode", "traverse", "measure", "set_attribute")


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def encoded_z(client, key, index=3):
    if registry.DATASETS[key].domain == "image":
        example = client.predict(index, api_name=f"/{key}_example")
        return client.predict(handle_file(example), "arvae", api_name=f"/{key}_encode")[1]
    tokens = client.predict(index, api_name=f"/{key}_example")
    return client.predict(tokens, "arvae", api_name=f"/{key}_encode")[0]


def pixels(path):
    return np.asarray(Image.open(path).convert("L"), dtype=np.int16)


@pytest.mark.parametrize("key", KEYS)
def test_pad_decodes_the_clicked_code(client, key):
    spec = registry.DATASETS[key]
    names = spec.attribute_names
    z = encoded_z(client, key)
    picture, heatmaps, *shown, table, code, x, y = client.predict(
        "arvae", z, names[0], names[1], 1.5, -2.0, 5, api_name=f"/{key}_pad")
    code, base = np.array(json.loads(code)), np.array(json.loads(z))
    dx, dy = spec.regularized_dims[:2]
    assert (code[dx], code[dy], x, y) == (1.5, -2.0, 1.5, -2.0)
    np.testing.assert_allclose(np.delete(code, [dx, dy]), np.delete(base, [dx, dy]))
    marker = [t for t in json.loads(heatmaps["plot"])["data"] if t.get("name") == "current code"]
    assert marker and marker[0]["x"] == [1.5] and marker[0]["y"] == [-2.0]
    decoded = client.predict("arvae", json.dumps(code.tolist()), api_name=f"/{key}_decode")
    if spec.domain == "image":  # what the pad shows is the decoding of that code
        np.testing.assert_array_equal(pixels(shown[0]), pixels(decoded[0]))
    else:  # the same notes as the decoding of that code, and audio to play
        notes = [{k: t.get(k) for k in ("x", "y", "base")} for t in json.loads(shown[0]["plot"])["data"]]
        assert notes == [{k: t.get(k) for k in ("x", "y", "base")} for t in json.loads(decoded[1]["plot"])["data"]]
        assert shown[1].endswith(".wav")
    assert Image.open(picture).width > 5 * spec.input.shape[-1]


def test_pad_uses_the_beta_vae_dims(client):
    names = registry.DATASETS["folk"].attribute_names
    z = encoded_z(client, "folk")
    dims = {}
    for name in names:  # a refused far target reports the attribute's dim
        dims[name] = client.predict("beta-vae", z, name, 1e6, None, api_name="/folk_set_attribute")[1]["dim"]
    a, b = next((a, b) for a in names for b in names if dims[a] != dims[b])
    code = json.loads(client.predict("beta-vae", z, a, b, 2.5, -3.5, 3, api_name="/folk_pad")[-3])
    changed = {d for d, (u, v) in enumerate(zip(code, json.loads(z))) if u != v}
    assert changed <= {dims[a], dims[b]} and code[dims[a]] == 2.5 and code[dims[b]] == -3.5


@pytest.mark.parametrize("key", ["mnist", "bach"])
def test_set_attribute_reaches_targets_in_range_and_refuses_others(client, key):
    name = registry.DATASETS[key].attribute_names[2]
    z = encoded_z(client, key)
    report, refused, *_ = client.predict("arvae", z, name, 1e6, None, api_name=f"/{key}_set_attribute")
    assert not refused["reached"] and "outside what the model reaches" in report
    code = json.loads(z)
    code[refused["dim"]] = 1.0  # a value the model does decode to from this code, a little off
    target = client.predict("arvae", json.dumps(code), api_name=f"/{key}_measure")[name] + 0.4 * refused["tolerance"]
    report, found, code, *_ = client.predict("arvae", z, name, target, None, api_name=f"/{key}_set_attribute")
    assert found["reached"], report
    assert abs(found["value"] - target) <= found["tolerance"] and found["decodes"] >= 2
    assert client.predict("arvae", code, api_name=f"/{key}_measure")[name] == pytest.approx(found["value"], abs=1e-4)


@pytest.mark.parametrize("key", [k for k in KEYS if registry.DATASETS[k].domain == "music"])
def test_a_16_measure_melody_round_trips_to_midi_following_its_curve(client, key, tmp_path):
    tokens = client.predict(0, 16, api_name=f"/{key}_melody_example")
    assert np.array(json.loads(tokens)).shape == (16, 24)
    report, roll, audio, files, curves_plot, edited = client.predict(
        "arvae", tokens, '{"note_density": [-3, 3]}', api_name=f"/{key}_melody")
    edited = np.array(json.loads(edited))
    midi = next(f for f in files if f.endswith(".mid"))
    assert any(f.endswith(".musicxml") for f in files)
    back = import_file(midi).tokens
    np.testing.assert_array_equal(back, edited)  # the MIDI file holds exactly the edited melody
    density = registry.DATASETS[key].measure(back)[:, registry.DATASETS[key].attribute_names.index("note_density")]
    assert spearman_rows(np.arange(16), density)[0] > 0.5, density
    import wave

    with wave.open(audio) as w:  # one audio file of all 16 measures (2 s each at 120 bpm)
        assert w.getnframes() / w.getframerate() >= 16 * 2
    titles = [a["text"] for a in json.loads(roll["plot"])["layout"]["annotations"]]
    assert titles[:2] == ["before", "after"]


@pytest.mark.parametrize("key", ["mnist", "folk"])
def test_controllability_agrees_with_evaluate(client, key):
    spec = registry.DATASETS[key]
    table, summary, figure = client.predict(32, 9, api_name=f"/{key}_controllability")
    samples = load_samples(key, SHIPPED_CHECKPOINTS)
    titles = " ".join(a["text"] for a in json.loads(figure["plot"])["layout"]["annotations"])
    shown = [float(v) for v in re.findall(r"ρ = ([+-][0-9.]+)", titles)]
    assert len(shown) == len(spec.attribute_names) * len(summary)
    for label, kind in (("AR-VAE", "arvae"), ("β-VAE", "beta-vae")):
        model, _ = checkpoint.load_trained(spec, kind, SHIPPED_CHECKPOINTS)
        latents = traversal.encode(model, samples.model_inputs(np.arange(32)))
        dims = [summary[label][name]["dim"] for name in spec.attribute_names]
        if kind == "arvae":
            assert dims == list(spec.regularized_dims)
        expected = evaluate.traversal_monotonicity(model, spec, latents, dims,
                                                   attributes=samples.attributes[:32])["per_attribute"]
        for name in spec.attribute_names:
            assert abs(summary[label][name]["spearman"] - expected[name]) <= 0.05
            assert 0 <= summary[label][name]["monotonic_share"] <= 1
        column = list(summary).index(label)
        for l, name in enumerate(spec.attribute_names):  # the figure's small multiples say the same
            assert abs(shown[l * len(summary) + column] - expected[name]) <= 0.05


def test_mcp_tool_list_includes_the_five_tools(app_server):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def list_tools():
        async with streamable_http_client(app_server.url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in asyncio.run(list_tools())}
    for key in KEYS:
        for action in MCP_TOOLS:
            tool = tools[f"{key}_{action}"]
            assert tool.description and tool.inputSchema["properties"], tool
    assert "target" in tools["mnist_set_attribute"].inputSchema["properties"]


@pytest.mark.parametrize("key", ["mnist", "folk"])
def test_a_shared_link_carries_the_code(client, key):
    z = encoded_z(client, key)
    link = client.predict("beta-vae", z, api_name=f"/{key}_link")
    query = dict(parse_qsl(urlsplit(link).query))
    assert query["tab"] == key and query["model"] == "beta-vae"
    np.testing.assert_allclose(json.loads(query["z"]), json.loads(z), atol=1e-4)


@pytest.mark.parametrize("api_name, args, message", [
    ("/mnist_pad", ("arvae", None, "area", "area", 0, 0, 5), "no latent code yet"),
    ("/mnist_set_attribute", ("arvae", "[1, 2]", "thickness", 2.0, None), "16 finite numbers"),
    ("/folk_melody", ("arvae", json.dumps([[2] * 24] * 33), ""), "at most 32 measures"),
    ("/folk_melody", ("arvae", json.dumps([[2] * 24] * 4), "{oops"), "JSON object"),
    ("/folk_link", ("gan", "[0]"), "not in the list of choices"),
])
def test_bad_input_gets_a_clear_message(client, api_name, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=api_name)


def test_pad_refuses_two_attributes_on_one_dim(client):
    z = encoded_z(client, "mnist")
    with pytest.raises(AppError, match="share the latent dim"):
        client.predict("arvae", z, "area", "area", 0, 0, 5, api_name="/mnist_pad")
