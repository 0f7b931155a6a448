"""Images, figures, image uploads, audio and notation (arvae.images, arvae.figures, arvae.image_input, arvae.music.*), without Gradio or models."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from arvae import figures, image_input, images
from arvae.music import audio, notation, pianoroll
from arvae.music.tokens import CONTINUATION, REST, midi_to_token
C4, E4, G4, C5 = (midi_to_token(p) for p in (60, 64, 67, 72))


def arpeggio(n_measures=2):
    """C4 quarter, E4 eighth, G4 eighth, quarter rest, C5 quarter -- repeated."""
    m = np.zeros(24, dtype=np.int64)
    m[0], m[6], m[9], m[12], m[18] = C4, E4, G4, REST, C5
    return np.stack([m] * n_measures)


def png(tmp_path, array, name="x.png", mode=None):
    path = tmp_path / name
    Image.fromarray(array, mode=mode).save(path)
    return path


# ----------------------------------------------------------------------------------------- images

def test_image_to_pil_and_png_round_trip():
    image = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    pil = images.image_to_pil(image, scale=3)
    assert pil.size == (84, 84) and pil.mode == "L"
    back = np.asarray(Image.open(io.BytesIO(images.png_bytes(image))))
    assert back.shape == (28, 28) and back[0, 0] == 0 and back[-1, -1] == 255


def test_prepare_mnist_from_a_large_dark_on_light_colour_photo(tmp_path):
    canvas = np.full((300, 200, 3), 235, dtype=np.uint8)  # light background, RGB, not square
    canvas[60:240, 90:115] = (20, 30, 40)  # a dark vertical stroke: a "1"
    path = png(tmp_path, canvas, "one.jpg")
    out = image_input.prepare_image(path, 28, image_input.fit_centred)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out[0].max() == 0 and out[:, 0].max() == 0  # background is black (inverted)
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    assert 18 <= rows[-1] - rows[0] + 1 <= 21  # fitted to the 20-pixel box
    cy, cx = np.argwhere(out > 0.5).mean(axis=0)
    assert abs(cy - 13.5) < 1.5 and abs(cx - 13.5) < 1.5  # centred


def test_prepare_sprites_keeps_position_binarizes_and_takes_transparency(tmp_path):
    rgba = np.zeros((128, 128, 4), dtype=np.uint8)  # black square on a transparent background
    rgba[20:40, 80:100] = (0, 0, 0, 255)
    out = image_input.prepare_image(png(tmp_path, rgba, "square.png", "RGBA"), 64, image_input.fit_in_place, binary=True)
    assert out.shape == (64, 64) and set(np.unique(out)) <= {0.0, 1.0}
    ys, xs = np.nonzero(out)
    assert ys.mean() < 20 and xs.mean() > 40  # still top right
    assert 80 <= out.sum() <= 120  # 20x20 px at half size -> 10x10


def test_prepare_is_exact_for_model_ready_images():
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    out = image_input.prepare_image(digit, 28, image_input.fit_centred)
    assert out.shape == (28, 28) and np.abs(out - digit / 255.0).max() < 1e-6


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"definitely not an image", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
])
def test_bad_images_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(image_input.ImageInputError, match=message):
        image_input.prepare_image(path, 28, image_input.fit_centred)


def test_blank_image_is_refused(tmp_path):
    with pytest.raises(image_input.ImageInputError, match="empty"):
        image_input.prepare_image(png(tmp_path, np.full((50, 50), 255, np.uint8)), 64, image_input.fit_in_place, binary=True)


def test_traversal_grid_size_and_labels():
    stack = np.random.default_rng(0).random((5, 9, 64, 64))
    grid = images.traversal_grid(stack, row_labels=[f"a{i}" for i in range(5)],
                                 column_labels=[str(v) for v in range(9)], scale=1, gap=2, title="t")
    assert grid.height == 30 + 20 + 5 * 64 + 6 * 2
    assert grid.width > 9 * 64 + 10 * 2  # plus the row-label column


# ---------------------------------------------------------------------------------------- figures

def test_attribute_lines_figure_one_trace_per_attribute_with_axes():
    values = np.linspace(-4, 4, 9)
    measured = np.random.default_rng(0).random((3, 9))
    measured[1, 4] = np.nan
    fig = figures.attribute_lines_figure(values, measured, ["area", "length", "thickness"], [0, 1, 2])
    assert len(fig.data) == 3 and all(len(t.x) == 9 for t in fig.data)
    assert fig.layout.xaxis.title.text == "z[0]" and fig.layout.xaxis3.title.text == "z[2]"
    assert fig.layout.yaxis.title.text == "measured"
    json.loads(fig.to_json())  # NaN serializes


def test_attribute_lines_figure_overlays_models():
    values = np.linspace(-4, 4, 5)
    fig = figures.attribute_lines_figure(values, {"AR-VAE": np.zeros((2, 5)), "β-VAE": np.ones((2, 5))},
                                        ["a", "b"], {"AR-VAE": [0, 1], "β-VAE": [3, 3]})
    assert len(fig.data) == 4 and {t.line.dash for t in fig.data} == {"solid", "dash"}


def test_surface_figure_heatmap_with_hover():
    grid = np.linspace(-4, 4, 8)
    surface = np.arange(64, dtype=float).reshape(8, 8)
    fig = figures.surface_figure(surface, grid, "note_density", 2, 7, current=(0.5, -1.0))
    heatmap = fig.data[0]
    assert heatmap.type == "heatmap" and np.asarray(heatmap.z).shape == (8, 8)
    assert "z[2]" in heatmap.hovertemplate and "z[7]" in heatmap.hovertemplate and "%{z" in heatmap.hovertemplate
    assert fig.layout.xaxis.title.text.startswith("z[2]") and fig.layout.yaxis.title.text == "z[7]"
    assert fig.data[1].x == (0.5,)


def test_piano_roll_has_a_bar_per_note_with_note_names_and_grid():
    fig = pianoroll.piano_roll_figure(arpeggio(2))
    bars = fig.data[0]
    assert bars.type == "bar" and bars.orientation == "h"
    assert list(bars.y) == [60, 64, 67, 72] * 2
    assert list(bars.base) == [0, 1, 1.5, 3, 4, 5, 5.5, 7] and list(bars.x) == [1, 0.5, 0.5, 1] * 2
    assert "C4" in fig.layout.yaxis.ticktext and "C5" in fig.layout.yaxis.ticktext
    assert fig.layout.xaxis.minor.dtick == 0.5  # eighth-note grid lines
    separators = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.x0 for s in separators) == [0, 4, 8]
    assert fig.layout.yaxis.title.text == "pitch"


def test_piano_roll_of_a_silent_measure_still_has_its_trace():
    fig = pianoroll.piano_roll_figure(np.array([REST] + [CONTINUATION] * 23))
    assert fig.data[0].type == "bar" and len(fig.data[0].x) == 0


def test_music_traversal_figure_rows_of_rolls_and_measured_attributes():
    tokens = np.stack([arpeggio(5)] * 4)  # (L=4, S=5, 24)
    fig = pianoroll.music_traversal_figure(tokens, np.linspace(-4, 4, 5), np.random.default_rng(0).random((4, 5)),
                                        ["rhythmic_complexity", "pitch_range", "note_density", "contour"], [0, 1, 2, 3])
    assert [t.type for t in fig.data] == ["bar", "scatter"] * 4
    assert all(len(t.x) == 20 for t in fig.data[::2]) and all(len(t.x) == 5 for t in fig.data[1::2])
    assert fig.layout.xaxis.ticktext[0] == "-4.0"


# ------------------------------------------------------------------------------------------ audio

def test_synthesize_with_fluidsynth_is_non_silent_and_of_the_right_length():
    if audio.find_soundfont() is None or not audio.fluidsynth_available():
        pytest.skip("FluidSynth or a soundfont is not installed (tests/run.sh installs them)")
    (rate, samples), note = audio.synthesize(arpeggio(2), tempo=120, sample_rate=22050)
    assert note == "" and rate == 22050 and samples.dtype == np.int16
    assert len(samples) == round((2 * 2.0 + audio.RELEASE_S) * 22050)
    assert np.abs(samples).max() > 10_000
    # sound where the notes are, near silence well after the release
    assert np.abs(samples[: 22050 // 2]).max() > 1000


def test_the_kept_synthesizer_plays_a_measure_the_same_whatever_it_played_before():
    if audio.find_soundfont() is None or not audio.fluidsynth_available():
        pytest.skip("FluidSynth or a GM soundfont is not installed")
    (_, first), _ = audio.synthesize(arpeggio(1), sample_rate=22050)
    audio.synthesize(arpeggio(3), tempo=97, sample_rate=22050)  # an odd length: not whole 64-frame blocks
    (_, again), _ = audio.synthesize(arpeggio(1), sample_rate=22050)
    # without finishing FluidSynth's partial block the second copy starts up to 63 frames late (correlation
    # about -0.1); what stays is the faint chorus tail of the previous measure
    assert np.corrcoef(first.astype(float), again.astype(float))[0, 1] > 0.99


def test_synthesize_falls_back_to_sine_waves_with_a_note(monkeypatch):
    monkeypatch.setattr(audio, "fluidsynth_available", lambda: False)
    (rate, samples), note = audio.synthesize(arpeggio(3), tempo=60, sample_rate=16000)
    assert "FluidSynth" in note and "sine" in note
    assert len(samples) == round((3 * 4.0 + audio.RELEASE_S) * 16000)
    assert np.abs(samples).max() > 10_000


def test_synthesize_falls_back_when_the_soundfont_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("ARVAE_SOUNDFONT", str(tmp_path / "missing.sf2"))
    assert audio.find_soundfont() is None
    (_, samples), note = audio.synthesize(arpeggio(1))
    assert note and np.abs(samples).max() > 0


def test_synthesize_silence_and_bad_tempo():
    (_, samples), _ = audio.synthesize(np.array([REST] + [CONTINUATION] * 23))
    assert not samples.any()
    with pytest.raises(ValueError):
        audio.synthesize(arpeggio(1), tempo=0)


# --------------------------------------------------------------------------------------- notation

def test_notation_svg_contains_the_notes():
    svg = notation.notation_svg(arpeggio(2))
    assert svg.lstrip().startswith("<svg") or "<svg" in svg[:200]
    assert svg.count('class="note"') == 8
    assert svg.count('class="rest"') >= 2


def test_grid_titles_draw_greek_letters_not_boxes():
    """The comparison's "β-VAE" title: the font has the glyph (the built-in one drew □)."""
    font = images._font(15)
    beta, missing = (np.asarray(font.getmask(c)) for c in ("β", "\U000f0000"))  # a glyph no font has
    assert beta.any() and (beta.shape != missing.shape or not np.array_equal(beta, missing))


def test_piano_roll_keeps_one_pitch_axis_and_labels_a_single_measure_by_beats():
    low, high = pianoroll.PITCH_LOW, pianoroll.PITCH_HIGH
    rolls = [pianoroll.piano_roll_figure(m, pitch_range=(low, high)) for m in (arpeggio(1), arpeggio(1) + 5)]
    assert [tuple(r.layout.yaxis.range) for r in rolls] == [(low - 0.5, high + 0.5)] * 2  # before/after compare
    assert list(rolls[0].layout.xaxis.ticktext) == ["beat 1", "beat 2", "beat 3", "beat 4"]  # not "measure 1"
    assert list(pianoroll.piano_roll_figure(arpeggio(2)).layout.xaxis.ticktext) == ["measure 1", "measure 2"]


def test_wav_bytes_is_a_wav_of_the_synthesized_samples():
    import wave

    pair = audio.synthesize(arpeggio(1))[0]
    with wave.open(io.BytesIO(audio.wav_bytes(pair))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (pair[0], 1, 2)
        assert np.array_equal(np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), pair[1])
