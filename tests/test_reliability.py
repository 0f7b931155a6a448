"""Reliability and safety: bad input of every kind gets a clear message and the app keeps serving;
faults (a slow or unreachable Hub, no soundfont, a training run killed while it saves) degrade
gracefully; nothing uploaded can run code, no file outside the app's folders is served, a Hub token
is never printed; and the load script runs. Every input is a real file written by the test.

Complements tests/test_app_api.py (non-image/empty uploads, malformed latent codes, a broken
checkpoint folder, the Hub offline), tests/test_render.py and tests/test_music_io.py.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import wave
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from PIL import Image
from safetensors.torch import load_file

from arvae import checkpoint, hub, image_input, registry, uploads
from arvae.music import export, file_import
from arvae.music import tokens as T
from benchmarks.load import rss_mb

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
LIMITS = (r"40 megapixels", r"20 MB")


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def still_serving(client):
    """The next request after a bad one is answered normally."""
    _, z, _ = client.predict(handle_file(client.predict(3, api_name="/mnist_example")), "arvae",
                             api_name="/mnist_encode")
    assert len(json.loads(z)) == registry.get("mnist").model_kwargs["latent_dim"]


def app_error(client, args, api_name, *patterns) -> str:
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    message = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, message, re.I), f"{pattern!r} not in {message!r}"
    assert "Traceback" not in message
    return message


# ======================================================================================= images

def digit(height=120, width=90, fg=20, bg=235) -> np.ndarray:
    """A dark vertical stroke (a "1") on a light background, uint8."""
    image = np.full((height, width), bg, np.uint8)
    image[height // 5: 4 * height // 5, width // 2 - 6: width // 2 + 6] = fg
    return image


def stroke_mask(height=100, width=100) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[20:80, 45:55] = True
    return mask


def save_palette_transparent(path):
    index = stroke_mask().astype(np.uint8)  # 0: transparent background, 1: black
    image = Image.fromarray(index, mode="P")
    image.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    image.save(path, transparency=0)


def save_rgba(path, colour):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[stroke_mask()] = (*colour, 255)
    Image.fromarray(rgba, mode="RGBA").save(path)


def save_animated_gif(path):
    first = Image.fromarray(digit())
    blank = Image.fromarray(np.full((120, 90), 235, np.uint8))  # the second frame is empty: not used
    first.save(path, save_all=True, append_images=[blank, blank], duration=100, loop=0)


IMAGE_FILES = {  # name -> writer(path); every picture holds one vertical stroke
    "gray.png": lambda p: Image.fromarray(digit()).save(p),
    "rgb.jpg": lambda p: Image.fromarray(np.stack([digit()] * 3, -1)).save(p, quality=90),
    "rgb.webp": lambda p: Image.fromarray(np.stack([digit()] * 3, -1)).save(p),
    "gray.bmp": lambda p: Image.fromarray(digit()).save(p),
    "gray.tif": lambda p: Image.fromarray(digit()).save(p),
    "rgb-lzw.tiff": lambda p: Image.fromarray(np.stack([digit()] * 3, -1)).save(p, compression="tiff_lzw"),
    "16bit.png": lambda p: Image.fromarray(digit().astype(np.uint16) * 257).save(p),  # mode I;16
    "16bit-dark.tif": lambda p: Image.fromarray((255 - digit()).astype(np.uint16) * 100).save(p),
    "palette.png": lambda p: Image.fromarray(np.stack([digit()] * 3, -1)).convert("P", palette=Image.ADAPTIVE,
                                                                                 colors=4).save(p),
    "palette-transparent.png": save_palette_transparent,
    "palette-transparent.gif": save_palette_transparent,
    "black-on-transparent.png": lambda p: save_rgba(p, (0, 0, 0)),
    "white-on-transparent.png": lambda p: save_rgba(p, (255, 255, 255)),
    "animated.gif": save_animated_gif,
    "dark-background.png": lambda p: Image.fromarray(255 - digit()).save(p),
    "cmyk.jpg": lambda p: Image.fromarray(np.stack([digit()] * 3, -1)).convert("CMYK").save(p),
    "large-24mp.png": lambda p: save_large(p),
}


def save_large(path):
    """A 6000 x 4000 photo-sized picture (24 megapixels) with a broad stroke."""
    image = np.full((4000, 6000), 235, np.uint8)
    image[800:3200, 2800:3200] = 20
    Image.fromarray(image).save(path)


def write_image(directory: Path, name: str) -> Path:
    path = directory / name
    IMAGE_FILES[name](path)
    return path


def assert_a_vertical_stroke(out: np.ndarray, size: int):
    assert out.shape == (size, size) and out.dtype == np.float32
    assert out[0].max() == 0 and out[-1].max() == 0 and out[:, 0].max() == 0  # black background
    ys, xs = np.nonzero(out > 0.5)
    assert len(ys) > 0 and np.ptp(ys) > 2 * np.ptp(xs)  # taller than wide: the stroke survived
    assert abs(xs.mean() - (size - 1) / 2) < size / 6  # and it is near the middle


@pytest.mark.parametrize("name", sorted(IMAGE_FILES))
def test_every_image_format_and_mode_converts_sensibly(tmp_path, name):
    path = write_image(tmp_path, name)
    assert_a_vertical_stroke(image_input.prepare_image(path, 28, image_input.fit_centred), 28)
    sprite = image_input.prepare_image(path, 64, image_input.fit_in_place, binary=True)
    assert set(np.unique(sprite)) <= {0.0, 1.0}
    assert_a_vertical_stroke(sprite, 64)


def png_bomb(path: Path, width: int, height: int, bit_depth: int = 1) -> Path:
    """A real, valid grey PNG of ``width x height`` zeros: tens of kilobytes that decode to hundreds of MB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def test_oversized_images_are_refused_with_the_limits_stated(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png", 20_000, 20_000)  # 400 megapixels in ~50 kB
    assert bomb.stat().st_size < 200_000
    with pytest.raises(image_input.ImageInputError, match="decompression bomb") as caught:
        image_input.prepare_image(bomb, 28, image_input.fit_centred)
    assert all(re.search(limit, str(caught.value)) for limit in LIMITS)
    big = png_bomb(tmp_path / "big.png", 8000, 8000, 8)  # 64 megapixels: over the app's own limit
    with pytest.raises(image_input.ImageInputError, match=r"8000 x 8000 pixels.*40 megapixels and 20 MB"):
        image_input.prepare_image(big, 28, image_input.fit_centred)
    heavy = tmp_path / "heavy.bmp"
    heavy.write_bytes(b"BM" + b"\0" * (uploads.MAX_IMAGE_BYTES + 1))
    with pytest.raises(image_input.ImageInputError, match=r"too large \(20\.0 MB; the limits are 40 megapixels and 20 MB"):
        image_input.prepare_image(heavy, 28, image_input.fit_centred)
    one = tmp_path / "one.png"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(one)
    with pytest.raises(image_input.ImageInputError, match=r"only 1 x 1 pixels.*too small"):
        image_input.prepare_image(one, 64, image_input.fit_in_place, binary=True)


def test_image_uploads_of_every_kind_through_the_app(client, tmp_path):
    for name in ("16bit.png", "palette-transparent.png", "black-on-transparent.png", "animated.gif", "gray.tif",
                 "rgb.webp", "gray.bmp", "cmyk.jpg"):
        prepared = client.predict(handle_file(str(write_image(tmp_path, name))), api_name="/mnist_prepare")
        assert_a_vertical_stroke(np.asarray(Image.open(prepared).convert("L"), dtype=np.float32) / 255, 28)
    big = write_image(tmp_path, "large-24mp.png")
    _, z, _ = client.predict(handle_file(str(big)), "arvae", api_name="/sprites_encode")
    assert len(json.loads(z)) == 10


def test_bad_images_through_the_app_get_clear_messages(client, tmp_path):
    app_error(client, (handle_file(str(png_bomb(tmp_path / "bomb.png", 20_000, 20_000))),), "/mnist_prepare",
              "decompression bomb", *LIMITS)
    still_serving(client)
    app_error(client, (handle_file(str(png_bomb(tmp_path / "big.png", 8000, 8000, 8))), "arvae"), "/sprites_encode",
              "8000 x 8000", *LIMITS)
    still_serving(client)
    one = tmp_path / "dot.gif"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(one)
    app_error(client, (handle_file(str(one)),), "/sprites_prepare", "1 x 1 pixels", "too small")
    still_serving(client)
    renamed = tmp_path / "tune.png"  # a MIDI file renamed .png
    renamed.write_bytes((FIXTURES / "music" / "poly.mid").read_bytes())
    app_error(client, (handle_file(str(renamed)),), "/mnist_prepare", "tune.png", "not an image")
    still_serving(client)


def test_upload_limit_is_set_in_gradio(app_server):
    config = json.loads(_get(app_server.url + "config"))
    assert config["max_file_size"] == 20 * 1024 * 1024 == uploads.MAX_IMAGE_BYTES


# ======================================================================================= music

def write_midi(path, pitches, *, drums=False, numerator=4, instruments=1):
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(numerator, 4, 0.0))
    for k in range(instruments):
        inst = pretty_midi.Instrument(program=0, is_drum=drums)
        inst.notes = [pretty_midi.Note(90, p - 12 * k, 0.5 * i, 0.5 * (i + 1)) for i, p in enumerate(pitches)]
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def write_mxl(path: Path, xml: str, padding: int = 0) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml",
                         '<?xml version="1.0"?><container><rootfiles><rootfile full-path="score.musicxml"/>'
                         "</rootfiles></container>")
        archive.writestr("score.musicxml", xml + " " * padding)
    return path


def test_music_files_beyond_the_limits_are_refused(tmp_path):
    big = tmp_path / "huge.abc"
    big.write_text("X:1\nM:4/4\nL:1/8\nK:G\n" + "GABc dedB|" * 250_000)
    with pytest.raises(file_import.MusicImportError, match=r"too large .* limited to 2 MB"):
        file_import.import_file(big)
    xml = export.musicxml_string(np.array([[T.midi_to_token(60)] + [0] * 23]))
    small = file_import.import_file(write_mxl(tmp_path / "ok.mxl", xml))
    assert len(small.tokens) == 1
    bomb = write_mxl(tmp_path / "bomb.mxl", xml, padding=40 * 2**20)  # 40 MB of spaces in ~40 kB
    assert bomb.stat().st_size < 2**20
    with pytest.raises(file_import.MusicImportError, match=r"unpacks to 40 MB; the limit is 16 MB"):
        file_import.import_file(bomb)
    fake = tmp_path / "fake.mxl"
    fake.write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(file_import.MusicImportError, match="not a readable compressed MusicXML"):
        file_import.import_file(fake)


def test_structural_limits_are_checked_before_parsing(tmp_path):
    """Each refusal names the limit; the files need not even be valid: nothing parses them."""
    import mido

    cases = {}
    many = mido.MidiFile(ticks_per_beat=4)
    many.tracks.append(mido.MidiTrack([mido.Message(kind, note=60, velocity=64, time=1)
                                       for _ in range(uploads.MAX_MIDI_NOTES + 1) for kind in ("note_on", "note_off")]))
    many.save(tmp_path / "many.mid")
    cases["many.mid"] = r"20,001 notes; the limit is 20,000"
    (tmp_path / "long.musicxml").write_text("<score-partwise>" + "<note></note>" * 4001)
    cases["long.musicxml"] = r"4,001 notes; the limit is 4,000"
    (tmp_path / "bars.abc").write_text("X:1\nM:4/4\nK:G\n" + "A|" * 1001)
    cases["bars.abc"] = r"1,001 bar lines in its first tune; the limit is 1,000"
    (tmp_path / "notes.abc").write_text("X:1\nM:4/4\nK:G\n" + "ABcd\n" * 2001)
    cases["notes.abc"] = r"8,004 notes and rests in its first tune; the limit is 8,000"
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + b"\0" * uploads.MAX_MIDI_BYTES)
    cases["big.mid"] = r"too large .*MIDI files are limited to 1 MB"
    for name, pattern in cases.items():
        with pytest.raises(file_import.MusicImportError, match=pattern):
            file_import.import_file(tmp_path / name)


def test_abc_syntax_errors_and_drum_tracks_are_explained(tmp_path):
    broken = tmp_path / "broken.abc"
    broken.write_text("X:1\nT:Broken\nM:4/4\nL:1/8\nK:G\n[[[[ GAB| zzz ^^^^^ |\n")
    with pytest.raises(file_import.MusicImportError, match=r"'broken.abc' could not be read as ABC: a syntax error"):
        file_import.import_file(broken)
    drums = write_midi(tmp_path / "drums.mid", [36, 38, 42, 36], drums=True)
    with pytest.raises(file_import.MusicImportError, match="no pitched notes.*drum"):
        file_import.import_file(drums)


def test_music_uploads_through_the_app_say_what_was_done(client, tmp_path):
    # polyphonic MIDI with 3/4 bars: the top line of the 4/4 bars, the skipped bars counted
    messages, measures, _ = client.predict(handle_file(str(FIXTURES / "music" / "poly.mid")), api_name="/bach_import")
    assert "took the top line" in messages and "Skipped 2 bars not in 4/4 (2 in 3/4)" in messages
    assert len(json.loads(measures)) == 2
    # MusicXML with two parts: the top line, said
    messages, measures, _ = client.predict(handle_file(str(FIXTURES / "music" / "chorale.musicxml")),
                                           api_name="/folk_import")
    assert "2 parts; took the top line" in messages and "off the model's rhythm grid" in messages
    # notes above the model's range: transposed, said
    high = write_midi(tmp_path / "high.mid", [96, 98, 100, 101, 103, 101, 100, 98])
    messages, measures, _ = client.predict(handle_file(str(high)), api_name="/folk_import")
    assert "Transposed down 2 octaves" in messages
    pitches = np.array(json.loads(measures))
    assert T.token_to_midi(pitches[pitches >= T.FIRST_PITCH_TOKEN]).max() <= T.PITCH_HIGH
    # a 3/4-only piece, drums only, ABC with a syntax error, a corrupt MIDI: clear errors
    waltz = write_midi(tmp_path / "waltz.mid", [60, 62, 64] * 4, numerator=3)
    app_error(client, (handle_file(str(waltz)),), "/bach_import", "No usable 4/4 bar", "not in 4/4", "3/4")
    still_serving(client)
    app_error(client, (handle_file(str(write_midi(tmp_path / "drums.mid", [36, 38], drums=True))),),
              "/folk_import", "drums.mid", "no pitched notes")
    still_serving(client)
    broken = tmp_path / "broken.abc"
    broken.write_text("X:1\nT:Broken\nM:4/4\nL:1/8\nK:G\n[[[[ GAB| zzz ^^^^^ |\n")
    app_error(client, (handle_file(str(broken)),), "/folk_import", "broken.abc", "syntax error")
    still_serving(client)
    corrupt = tmp_path / "corrupt.mid"  # a real MIDI file cut in half
    midi = (FIXTURES / "music" / "poly.mid").read_bytes()
    corrupt.write_bytes(midi[: len(midi) // 2])
    app_error(client, (handle_file(str(corrupt)),), "/bach_import", "corrupt.mid", "not a readable MIDI")
    still_serving(client)


# ============================================================================= API values

def raw_call(url: str, api_name: str, body: str) -> tuple[str, str]:
    """POST ``body`` (raw JSON text: NaN and Infinity included, which gradio_client cannot send) to
    ``/gradio_api/call/<api_name>`` and read the event stream: (event, data)."""
    request = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=120) as response:
        text = response.read().decode()
    events = re.findall(r"event: (\w+)\ndata: (.*)", text)
    final = [e for e in events if e[0] in ("complete", "error")]
    assert final, text
    return final[-1]


Z10 = json.dumps([0.0] * 10)


@pytest.mark.parametrize("api_name, body, pattern", [
    ("sprites_traverse", f'["arvae", {json.dumps(Z10)}, NaN]', "steps must be a whole number"),
    ("sprites_surface", f'["arvae", {json.dumps(Z10)}, "scale", NaN, 8]', "other dim must be a whole number"),
    ("sprites_surface", f'["arvae", {json.dumps(Z10)}, "scale", 5, NaN]', "resolution must be a whole number"),
    ("sprites_surface", f'["arvae", {json.dumps(Z10)}, "scale", 5, Infinity]', "greater than maximum value 32"),
    ("sprites_decode", '["arvae", "[NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]', "10 finite numbers"),
    ("sprites_decode", '["arvae", "[Infinity, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]', "10 finite numbers"),
    ("sprites_example", "[NaN]", "Held-out item # must be a number, got nan"),
    ("folk_prior", '["arvae", Infinity]', "Seed .* must be a number, got inf"),
    ("folk_prior", '["arvae", NaN]', "Seed .* must be a number, got nan"),
    ("bach_encode", f'[{json.dumps(json.dumps([float("nan")] * 24))}, "arvae"]', "tokens must be integers"),
])
def test_nan_and_infinite_values_get_clear_errors(app_server, client, api_name, body, pattern):
    event, data = raw_call(app_server.url, api_name, '{"data": ' + body + "}")
    assert event == "error", data
    message = json.loads(data)["error"]
    assert re.search(pattern, message, re.I) and "Traceback" not in message, message
    still_serving(client)


def test_wrong_types_and_out_of_range_values_are_clamped_or_refused(client, app_server):
    log_before = len(app_server.logs())
    z16 = json.dumps([0.0] * 16)
    app_error(client, ("arvae", z16, "thickness", "seven", 8), "/mnist_surface", "other dim must be a whole number")
    app_error(client, ("arvae", z16, "thickness", 7.5, 8), "/mnist_surface", r"whole number, got 7\.5")
    app_error(client, ("arvae", z16, "thickness", 99, 8), "/mnist_surface", "between 0 and 15, got 99")
    app_error(client, ("arvae", z16, "thickness", None, 8), "/mnist_surface", "other dim is missing")
    app_error(client, ("arvae", Z10, "abc"), "/sprites_traverse", "Steps per row must be a number, got 'abc'")
    app_error(client, ("arvae", Z10, 1000), "/sprites_traverse", "greater than maximum value 17")
    app_error(client, ("arvae", json.dumps(["a"] * 10)), "/sprites_decode", "JSON list of 10 numbers")
    app_error(client, ("arvae", 5), "/sprites_decode", "10 finite numbers")
    app_error(client, (json.dumps([999] * 24), "arvae"), "/bach_encode", "outside the vocabulary")
    app_error(client, (None,), "/sprites_example", "held-out item is missing")
    app_error(client, (10**6,), "/bach_example", "not in the list of choices")
    # huge latent values are clamped (to ±50), not refused
    image, table = client.predict("arvae", json.dumps([1e30] * 10), api_name="/sprites_decode")
    assert Image.open(image).size == (64, 64) and "decoded (measured)" in table
    tokens, *_ = client.predict("arvae", json.dumps([-1e6] * 32), api_name="/bach_decode")
    assert len(json.loads(tokens)) == 24
    assert Image.open(client.predict("arvae", 2**70, api_name="/sprites_prior")).size == (64, 64)  # any seed
    still_serving(client)
    assert app_server.alive()
    assert "unexpected error" not in app_server.logs()[log_before:]  # every error above was a foreseen one


def test_huge_integers_and_tokens_sent_as_text_get_clear_messages_and_no_traceback(client, app_server):
    log_before = len(app_server.logs())
    z16 = json.dumps([0.0] * 16)
    app_error(client, ("arvae", z16, "thickness", 10**400, 8), "/mnist_surface", r"other dim must be between 0 and 15")
    app_error(client, ("arvae", z16, "thickness", "9" * 400, 8), "/mnist_surface", r"other dim must be a whole number")
    app_error(client, (json.dumps(["60"] * 24), "arvae"), "/bach_encode", r"tokens must be integers .*not text")
    app_error(client, (json.dumps([10**400] * 24), "arvae"), "/bach_encode", r"tokens must be integers")
    assert Image.open(client.predict("arvae", 10**400, api_name="/sprites_prior")).size == (64, 64)  # any seed
    still_serving(client)
    new_log = app_server.logs()[log_before:]
    assert "Traceback" not in new_log and "unexpected" not in new_log, new_log[-3000:]


# ===================================================================== hostile uploads, stuck handlers

def degenerate_meter_midi(path: Path) -> Path:
    """A 43-byte MIDI file whose time signature has a denominator of 2**60: the bar loop of the
    import used to run forever (memory +250 MB/s)."""
    write_midi(path, [60, 62])
    data = bytearray(path.read_bytes())
    meter = data.find(b"\xff\x58\x04")
    data[meter + 4] = 60  # the denominator is stored as a power of two
    path.write_bytes(bytes(data))
    return path


def far_future_midi(path: Path) -> Path:
    """One note 9,000,000 quarter notes in: 2.25 million empty bars."""
    import mido

    midi = mido.MidiFile(ticks_per_beat=1)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=9_000_000),
                            mido.Message("note_off", note=60, velocity=0, time=1)])
    midi.tracks.append(track)
    midi.save(path)
    return path


def abc_at_the_size_limit(path: Path) -> Path:
    """One tune filling the 2 MB limit (music21 would read it for many minutes at 3-4 GB)."""
    header = "X:1\nT:Endless reel\nM:4/4\nL:1/8\nK:G\n"
    bars = "GABc dedB|dBGB d2 ef|\n" * ((uploads.MAX_MUSIC_BYTES - len(header)) // 22)
    path.write_text(header + bars)
    assert uploads.MAX_MUSIC_BYTES - 22 < path.stat().st_size <= uploads.MAX_MUSIC_BYTES
    return path


def test_hostile_uploads_are_refused_within_seconds_while_sliders_keep_answering(app_server, client, tmp_path):
    hostile = {degenerate_meter_midi(tmp_path / "meter.mid"): r"invalid time signature 4/1\.15e\+18",
               far_future_midi(tmp_path / "far.mid"): r"lasts 2,250,000 bars .* limit is 2,000 bars",
               abc_at_the_size_limit(tmp_path / "reel.abc"): r"characters in its first tune; the limit is 20,000"}
    slider = Client(app_server.url, verbose=False)
    stop, slider_times, slider_errors, memory = threading.Event(), [], [], []

    def move_sliders():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            started = time.monotonic()
            try:
                slider.predict("arvae", json.dumps(rng.normal(size=16).round(3).tolist()), api_name="/mnist_decode")
                slider_times.append(time.monotonic() - started)
            except Exception as error:  # noqa: BLE001 -- any failure of a light request is what we look for
                slider_errors.append(error)
            memory.append(rss_mb(app_server.process.pid))  # the app and its worker processes

    mover = threading.Thread(target=move_sliders)
    mover.start()
    try:
        for path, pattern in hostile.items():
            started = time.monotonic()
            app_error(client, (handle_file(str(path)),), "/folk_import", path.name, pattern)
            assert time.monotonic() - started < 10, path.name
    finally:
        stop.set()
        mover.join(60)
    assert not slider_errors and len(slider_times) >= 3, (slider_errors, slider_times)
    assert max(memory) < 2048, f"the app and its workers used {max(memory):.0f} MB"
    still_serving(client)


STUCK_IMPORT_APP = """
import time
import app
from arvae.explorer import Explorer
Explorer.prepare_upload = lambda self, path: time.sleep(600)  # an import that never ends
app.main()
"""


def test_sigterm_stops_the_app_within_seconds_while_an_import_is_stuck(app_checkpoints, tmp_path):
    """Heavy actions in the app's own threads (no worker pool): a handler that never returns must
    not keep SIGTERM from stopping the app."""
    from conftest import _free_port

    port = _free_port()
    env = {**app_checkpoints["env"], "ARVAE_CHECKPOINTS": str(ROOT / "checkpoints"), "ARVAE_WORKERS": "0",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    log = tmp_path / "stuck.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", STUCK_IMPORT_APP], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        stuck = Client(url, verbose=False).submit(handle_file(str(FIXTURES / "music" / "poly.mid")),
                                                  api_name="/folk_import")
        time.sleep(2.0)
        assert not stuck.done()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
            pytest.fail(f"app.py did not stop within 10 s of SIGTERM:\n{log.read_text()[-3000:]}")


# ======================================================================================= faults

def test_missing_soundfont_falls_back_to_sine_waves_with_a_note(damaged_app_server):
    fault = Client(damaged_app_server.url, verbose=False)
    tokens = fault.predict(0, api_name="/bach_example")
    z, _, audio = fault.predict(tokens, "arvae", api_name="/bach_encode")
    _, *audios, note, _ = fault.predict("arvae", z, 3, api_name="/bach_traverse")
    assert "sine-wave" in note and "soundfont" in note
    for path in [audio, *audios]:
        with wave.open(path) as w:
            assert w.getnframes() > 0 and w.getframerate() == 22050


def _hub_subprocess(endpoint: str, tmp_path: Path) -> dict:
    code = """if True:
        import json, time
        from pathlib import Path
        from arvae import hub, registry
        started = time.monotonic()
        root = hub.fetch_from_hub("someone/arvae-models", "sprites", "arvae")
        fetch_s = time.monotonic() - started
        loaded = hub.ModelStore(Path("checkpoints")).get(registry.get("mnist"), "arvae")
        print(json.dumps({"root": root and str(root), "fetch_s": fetch_s, "origin": loaded.origin,
                          "timeout": hub.HUB_TIMEOUT_S}))
    """
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "ARVAE_HUB_REPO": "someone/arvae-models", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "using the bundled files" in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_slow_or_unreachable_hub_falls_back_to_the_bundled_checkpoints(tmp_path):
    """huggingface_hub retries timeouts and refused connections for about a minute; the app gives
    the Hub HUB_TIMEOUT_S in all (a deadline, not a speed figure) and then loads the bundled files."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept_and_never_answer():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_never_answer, daemon=True).start()
    try:
        slow = _hub_subprocess(f"http://127.0.0.1:{server.getsockname()[1]}", tmp_path)
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert held, "the Hub request never reached the test server"
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = _hub_subprocess(f"http://127.0.0.1:{closed_port}", tmp_path)
    for result in (slow, unreachable):
        assert result["root"] is None and result["origin"].startswith("bundled")
        assert result["fetch_s"] < result["timeout"] + 5  # without the deadline: 25-60 s of retries


@pytest.fixture(scope="module")
def train_env(tmp_path_factory):
    return {**os.environ, "ARVAE_CACHE": str(tmp_path_factory.mktemp("cache")), "PYTHONPATH": str(ROOT)}


def test_training_killed_while_saving_leaves_only_complete_files_and_resumes(tmp_path, train_env):
    env = train_env
    out, runs = tmp_path / "out", tmp_path / "runs"
    model_dir = runs / "sprites" / "arvae"  # the run folder, where periodic checkpoints are written
    common = [sys.executable, str(ROOT / "train.py"), "--dataset", "sprites", "--model", "arvae", "--device", "cpu",
              "--max-items", "256", "--batch-size", "16", "--output-dir", str(out), "--run-dir", str(runs),
              "--lr-schedule", "constant", "--no-select-best"]  # the last step is what is published
    # a checkpoint after every step, so that SIGKILL lands in the middle of writing one
    process = subprocess.Popen([*common, "--max-steps", "100000", "--checkpoint-every", "1"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    caught_mid_write = False
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            names = os.listdir(model_dir) if model_dir.is_dir() else []
            if "metadata.json" in names and any(checkpoint.is_temporary(Path(n)) for n in names):
                caught_mid_write = True
                break
            time.sleep(0.0005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # no handler runs: the hard case
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, stderr[-2000:]
    assert caught_mid_write, "the run never got to write a checkpoint"

    # every file of the folder is complete and loadable; only hidden temporaries may be partial
    complete = [p for p in model_dir.iterdir() if not checkpoint.is_temporary(p)]
    assert {p.name for p in complete} >= {"config.json", "model.safetensors", "metadata.json",
                                          checkpoint.STATE_TENSORS, checkpoint.STATE_JSON}
    for path in complete:
        if path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path
        else:
            assert load_file(path), path
    hub.check_model_dir(model_dir)
    model, metadata = checkpoint.load_trained(registry.get("sprites"), "arvae", runs)
    assert metadata["steps"] >= 1 and not metadata["complete"]
    assert not (out / "sprites").exists()  # nothing unfinished was published
    saved = checkpoint.read_training_state(model_dir)
    assert saved["step"] >= 1

    resumed = subprocess.run([*common, "--max-steps", str(saved["step"] + 3), "--resume"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at step {saved['step']}" in resumed.stdout
    metadata = checkpoint.read_metadata(model_dir)
    assert metadata["steps"] == saved["step"] + 3 and metadata["complete"]
    assert not [p for p in model_dir.iterdir() if checkpoint.is_temporary(p)]  # the partial files are gone
    assert checkpoint.read_metadata(out / "sprites" / "arvae") == metadata  # the finished run was published


def test_checkpoint_files_are_replaced_atomically_and_synced(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    checkpoint.write_json(path, {"version": 1})

    def fail_halfway(tmp):
        Path(tmp).write_text('{"version": 2, "trunc')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint._replace_atomically(tmp_path, "config.json", fail_halfway)
    assert json.loads(path.read_text()) == {"version": 1}  # the old complete file, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # and no temporary left
    synced = []
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: synced.append(fd))
    checkpoint.write_json(path, {"version": 3})
    assert len(synced) == 2  # the file, then its folder
    assert json.loads(path.read_text()) == {"version": 3}


def test_training_state_keeps_step_and_tensors_together(tmp_path):
    import torch

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    checkpoint.save_training_state(tmp_path, model, optimizer, {"step": 7, "history": []})
    (tmp_path / checkpoint.STATE_JSON).write_text('{"step": 3')  # a stale or damaged readable copy
    state = checkpoint.load_training_state(tmp_path, torch.nn.Linear(3, 2),
                                           torch.optim.Adam(torch.nn.Linear(3, 2).parameters()))
    assert state["step"] == 7  # from the tensors file's own header


# ======================================================================================= safety

SOURCES = [ROOT / "app.py", ROOT / "train.py", *sorted((ROOT / "arvae").rglob("*.py")),
           *sorted((ROOT / "benchmarks").glob("*.py"))]


def test_no_code_path_can_unpickle_or_run_remote_code():
    forbidden = {
        r"\btorch\.load\(": "torch.load (pickle)", r"\bpickle\.loads?\(": "pickle", r"\bdill\b": "dill",
        r"trust_remote_code\s*=\s*True": "trust_remote_code", r"allow_pickle\s*=\s*True": "np.load with pickles",
        r"\bjoblib\.load\(": "joblib", r"(?<![.\w])eval\(": "eval", r"(?<![.\w])exec\(": "exec",
        r"shell\s*=\s*True": "shell=True",
    }
    found = []
    for path in SOURCES:
        text = path.read_text()
        for pattern, what in forbidden.items():
            for match in re.finditer(pattern, text):
                line = text[: match.start()].count("\n") + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, found
    weights = {p.suffix for p in (ROOT / "checkpoints").rglob("*") if p.is_file()}
    assert not weights & {".bin", ".pt", ".pth", ".pkl", ".ckpt"}, weights


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _status(url) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_no_file_outside_the_apps_folders_is_served(app_server, client):
    assert "allowed_paths" not in (ROOT / "app.py").read_text()  # nothing added to Gradio's own rules
    base = app_server.url + "gradio_api/file="
    refused = ["/etc/passwd", "/proc/self/environ", "app.py", str(ROOT / "app.py"), str(ROOT / "README.md"),
               str(ROOT / "checkpoints" / "mnist" / "arvae" / "model.safetensors"), "checkpoints/mnist/samples.npz",
               "/tmp/gradio/../../etc/passwd", "/tmp/gradio/%2e%2e/%2e%2e/etc/passwd", "..%2fapp.py",
               "%2Fetc%2Fpasswd", str(Path.home() / ".cache" / "huggingface" / "token")]
    for path in refused:
        assert _status(base + path) in (403, 404), path
    for path in ("/etc/passwd", "/app.py", "/../app.py", "/static/../app.py", "/gradio_api/../app.py"):
        status = _status(app_server.url.rstrip("/") + path)
        body = _get(app_server.url.rstrip("/") + path) if status == 200 else ""
        assert "root:x:0:0" not in body and "def build_demo" not in body, path
    # what the app produced is served (so the refusals above are not a broken route)
    example = client.predict(0, api_name="/mnist_example")
    assert _status(base + example) == 200


def test_the_hub_token_is_never_printed(tmp_path, train_env, monkeypatch, caplog, capsys):
    token = "hf_FakeTokenForTestsOnly0123456789abcdef"
    env = {**train_env, "HF_TOKEN": token, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    pushed = subprocess.run([sys.executable, str(ROOT / "train.py"), "--dataset", "sprites", "--model", "arvae",
                             "--device", "cpu", "--max-items", "256", "--batch-size", "16", "--max-steps", "1",
                             "--output-dir", str(tmp_path / "out"), "--push-to-hub", "someone/ar-vae"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert "not pushed to someone/ar-vae" in pushed.stdout  # the network is off: said, files kept
    assert token not in pushed.stdout + pushed.stderr
    assert token[3:] not in pushed.stdout + pushed.stderr

    # the app's Hub path: even an error that quotes the token (e.g. a proxy echoing headers) is redacted
    import huggingface_hub

    def leaky_download(*args, **kwargs):
        raise OSError(f"401 for request with 'Authorization: Bearer {token}'")

    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("ARVAE_HUB_REPO", "someone/private-models")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", leaky_download)
    monkeypatch.setattr(hub, "_hub_failed_at", {})
    monkeypatch.setattr(hub, "_hub_roots", {})
    with caplog.at_level("DEBUG"):
        assert hub.fetch_from_hub("someone/private-models", "sprites", "arvae") is None
        with pytest.raises(hub.CheckpointError) as caught:
            hub.ModelStore(tmp_path / "nothing-bundled").get(registry.get("sprites"), "arvae")
    output = capsys.readouterr()
    everything = caplog.text + output.out + output.err + str(caught.value)
    assert "hf_***" in caplog.text and token not in everything


# ========================================================================================= load

def test_load_script_runs_against_the_app(app_server, tmp_path):
    """The load script end to end, small (the real run's figures are in README "Reliability")."""
    report_path = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--url", app_server.url,
                           "--pid", str(app_server.process.pid), "--clients", "3", "--requests", "3",
                           "--no-warm-up", "--settle", "0", "--json", str(report_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["requests"] == 9 and report["errors"] == []
    assert sum(row["requests"] for row in report["actions"].values()) == 9
    assert report["rss_mb"]["after"] > 0
    assert "| slider |" in done.stdout and "RSS of the app" in done.stdout
    assert app_server.alive()
