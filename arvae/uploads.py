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
