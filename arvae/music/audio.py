"""Audio of token measures: FluidSynth with a General MIDI soundfont, else pretty_midi's sine
synthesis (and a note saying so)."""
from __future__ import annotations

import io
import os
import threading
import warnings
import wave
from pathlib import Path

import numpy as np

from arvae.music.export import tokens_to_pretty_midi
from arvae.music.tokens import as_measures


SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/soundfonts", "/usr/share/sounds/sf3")
PREFERRED_SOUNDFONTS = ("FluidR3_GM.sf2", "default-GM.sf2", "TimGM6mb.sf2", "GeneralUser GS.sf2")
RELEASE_S = 0.5  # audio runs this long past the last measure, for the notes' release
FALLBACK_NOTE = ("FluidSynth or a General MIDI soundfont is not available here, so this is a plain "
                 "sine-wave rendering (pretty_midi.synthesize). Install `fluidsynth` and `fluid-soundfont-gm` "
                 "(or set ARVAE_SOUNDFONT to an .sf2 file) for piano sound.")


def find_soundfont() -> Path | None:
    """``$ARVAE_SOUNDFONT`` if it names a file, else a General MIDI soundfont in the usual places."""
    override = os.environ.get("ARVAE_SOUNDFONT", "").strip()
    if override:
        path = Path(override).expanduser()
        return path if path.is_file() else None
    for folder in SOUNDFONT_DIRS:
        for name in PREFERRED_SOUNDFONTS:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    for folder in SOUNDFONT_DIRS:
        found = sorted(Path(folder).glob("*.sf2")) if Path(folder).is_dir() else []
        if found:
            return found[0]
    return None


def fluidsynth_available() -> bool:
    """Whether pyfluidsynth and its shared library load."""
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; raises ImportError/OSError without libfluidsynth)

        return hasattr(fluidsynth, "Synth")
    except Exception:
        return False


_SYNTH_LOCK = threading.Lock()
_SYNTHS: dict = {}


FLUID_BLOCK = 64  # frames FluidSynth renders at a time (its FLUID_BUFSIZE)


def _render_aligned(pm, synth, sfid, sample_rate: int) -> np.ndarray:
    """``pm.fluidsynth`` on the kept ``synth``, then its reset. FluidSynth renders in blocks of 64
    frames and keeps the rest of a block for the next call, so a render starts where the previous
    one stopped inside a block: the frames pretty_midi asks for (in many pieces) are counted and
    the block is finished, so every render starts on a boundary and sounds the same whatever came
    before, but for the previous render's faint chorus tail. (pretty_midi wants a real
    ``fluidsynth.Synth``, hence the counting method on it.)"""
    frames, get_samples = 0, synth.get_samples

    def counted(count=1024):
        nonlocal frames
        frames += int(count)
        return get_samples(count)

    synth.get_samples = counted
    try:
        audio = pm.fluidsynth(fs=sample_rate, synthesizer=synth, sfid=sfid)
    finally:
        del synth.get_samples
    synth.system_reset()
    if frames % FLUID_BLOCK:
        synth.get_samples(FLUID_BLOCK - frames % FLUID_BLOCK)
    return audio


def _synthesizer(sf2: Path, sample_rate: int):
    """A cached ``fluidsynth.Synth`` with the soundfont loaded (loading an sf2 takes a while). Its
    reverb is off: it took a third of the rendering time (a music traversal renders 74 s of audio),
    and a dry piano shows the decoded notes as clearly."""
    key = (str(sf2), int(sample_rate))
    if key not in _SYNTHS:
        import fluidsynth

        synth = fluidsynth.Synth(samplerate=float(sample_rate))
        synth.setting("synth.reverb.active", 0)
        sfid = synth.sfload(str(sf2))
        if sfid < 0:
            raise RuntimeError(f"FluidSynth could not load the soundfont {sf2}")
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key]


def _fit_length(audio: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)[:length]
    if len(audio) < length:
        audio = np.pad(audio, (0, length - len(audio)))
    fade = min(length, int(0.05 * sample_rate))
    if fade:
        audio[length - fade:] *= np.linspace(1.0, 0.0, fade)
    return audio


def audio_length(n_measures: int, tempo: float, sample_rate: int) -> int:
    """Samples of the audio of ``n_measures`` measures of 4/4 at ``tempo``, plus the release."""
    return int(round((n_measures * 4 * 60.0 / float(tempo) + RELEASE_S) * sample_rate))


def synthesize(tokens, tempo: float = 120, sample_rate: int = 22050, program: int = 0):
    """Measures ``(M, 24)`` -> ``((sample_rate, int16 samples), note)``.

    FluidSynth with a General MIDI soundfont (:func:`find_soundfont`) when both are available;
    otherwise pretty_midi's sine synthesis, with ``note`` saying so (``note`` is ``""`` otherwise).
    The audio lasts the measures (4 beats each) plus :data:`RELEASE_S`, peak-normalized.
    """
    arr = as_measures(tokens)
    if not 20 <= float(tempo) <= 400:
        raise ValueError(f"tempo {tempo} is outside 20..400 bpm")
    pm = tokens_to_pretty_midi(arr, tempo=float(tempo), program=program)
    length = audio_length(len(arr), tempo, sample_rate)
    note = ""
    audio = None
    sf2 = find_soundfont()
    if sf2 is not None and fluidsynth_available():
        try:
            with _SYNTH_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                synth, sfid = _synthesizer(sf2, sample_rate)
                audio = _render_aligned(pm, synth, sfid, sample_rate)
        except Exception as error:  # a broken library or soundfont: fall back, and say so
            audio = None
            note = f"FluidSynth failed ({error}); " + FALLBACK_NOTE[0].lower() + FALLBACK_NOTE[1:]
    if audio is None:
        note = note or FALLBACK_NOTE
        audio = pm.synthesize(fs=sample_rate) if any(i.notes for i in pm.instruments) else np.zeros(0)
    audio = _fit_length(audio, length, sample_rate)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak * 0.89
    return (int(sample_rate), (audio * 32767).astype(np.int16)), note


def wav_bytes(audio) -> bytes:
    """A ``(sample_rate, int16 samples)`` pair of :func:`synthesize` as a mono 16-bit WAV file."""
    sample_rate, samples = audio
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buffer.getvalue()
