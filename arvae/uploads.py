"""What an upload may be: the size limits, and the file checks shared by image and music uploads.

Every refusal is a ``ValueError`` subclass of the caller's (:class:`arvae.image_input.ImageInputError`,
:class:`arvae.music.file_import.MusicImportError`) whose message names the file and the limit.
"""
from __future__ import annotations

from pathlib import Path

MAX_IMAGE_PIXELS = 40_000_000  # larger pictures are refused (decompression bombs, huge photos)
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # the same as the app's upload limit (Gradio max_file_size "20mb")
MIN_IMAGE_SIDE = 4  # smaller pictures cannot hold a shape or a stroke
WORK_SIDE = 1024  # larger pictures are reduced to this (longer side) before anything else: bounded memory
IMAGE_LIMITS_TEXT = (f"the limits are {MAX_IMAGE_PIXELS // 1_000_000} megapixels and {MAX_IMAGE_BYTES // 2**20} MB "
                     "per file")
MAX_MUSIC_BYTES = 2 * 1024 * 1024  # larger files are refused: parsing them would hold a worker for minutes
MAX_MXL_UNPACKED_BYTES = 16 * 1024 * 1024  # compressed MusicXML: refuse zip bombs before unpacking
MUSIC_LIMITS_TEXT = f"music files are limited to {MAX_MUSIC_BYTES // 2**20} MB (a melody needs far less)"
MAX_MIDI_BYTES = 1024 * 1024  # pretty_midi reads ~50k notes/s: 1 MB (~125k notes) in ~2.5 s
MIDI_LIMITS_TEXT = f"MIDI files are limited to {MAX_MIDI_BYTES // 2**20} MB (a melody needs far less)"

# Structural limits of a music upload, checked before it is parsed. The parsers' times grow with
# these counts, and music21's faster than linearly (README "Reliability" has the measured times);
# each limit keeps one import within a few seconds of CPU, far under the worker's import budget.
MAX_MUSIC_BARS = 2_000  # bars of 4/4 a MIDI file may last (its last event); a long symphony movement has ~500
MAX_MIDI_NOTES = 20_000
MAX_TIME_SIGNATURES = 1_000  # time signature changes of a MIDI file
MAX_MIDI_TICKS = 10_000_000  # pretty_midi's own limit: it keeps an array of one float per tick
MAX_MUSICXML_NOTES = 4_000  # music21: ~0.5 ms of CPU per note, more in large files
MAX_MUSICXML_MEASURES = 2_000  # summed over the parts
MAX_ABC_TUNE_CHARS = 20_000  # the tune that is imported (a file may hold many more tunes)
MAX_ABC_BAR_LINES = 1_000  # music21's ABC reader re-bars in quadratic time: 800 bars ~1.4 s, 1,600 bars ~8 s
MAX_ABC_NOTES = 8_000  # ~3.4 s without bar lines, 16,000: 16 s


def check_file(path, max_bytes: int, limits_text: str, error: type[ValueError]) -> int:
    """The size of the uploaded file ``path``, or ``error`` when it is missing, empty or larger
    than ``max_bytes`` (the message quotes ``limits_text``)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"The file '{path.name}' was not found.")
    size = path.stat().st_size
    if size == 0:
        raise error(f"The uploaded file '{path.name}' is empty (0 bytes).")
    if size > max_bytes:
        raise error(f"The uploaded file '{path.name}' is too large ({size / 2**20:.1f} MB; {limits_text}).")
    return size
