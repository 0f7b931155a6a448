"""A MIDI, MusicXML or ABC upload -> measures of tokens, with messages that say what was done
(:func:`import_file`); the conversion rules are :mod:`arvae.music.extract`'s."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arvae import uploads
from arvae.music.abc import abc_size, abc_title, parse_abc, split_abc_tunes
from arvae.music.extract import ExtractedMeasures, check_meter, fit_pitch_range, grid_to_tokens, \
    measures_from_pretty_midi, measures_from_stream
from arvae.music.tokens import PITCH_HIGH, PITCH_LOW, midi_name
MIDI_EXTENSIONS = (".mid", ".midi")
MUSICXML_EXTENSIONS = (".xml", ".musicxml", ".mxl")
ABC_EXTENSIONS = (".abc",)
SUPPORTED_EXTENSIONS = MIDI_EXTENSIONS + MUSICXML_EXTENSIONS + ABC_EXTENSIONS


class MusicImportError(ValueError):
    """A file could not be turned into measures; the message says why, in plain words."""


@dataclass
class ImportResult:
    tokens: np.ndarray  # int64 (M, 24)
    messages: list[str]
    bar_numbers: list = field(default_factory=list)  # the source bar of each measure


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _describe_skips(ex: ExtractedMeasures) -> list[str]:
    messages = []
    if ex.skipped_meters:
        meters = ", ".join(f"{n} in {m}" for m, n in ex.skipped_meters.most_common())
        messages.append(f"Skipped {_plural(sum(ex.skipped_meters.values()), 'bar')} not in 4/4 ({meters}); "
                        "the model only knows bars of 4/4.")
    if ex.skipped.get("off_grid"):
        messages.append(f"Skipped {_plural(ex.skipped['off_grid'], 'bar')} with notes off the model's rhythm grid "
                        "(it only has sixteenths and eighth-note triplets).")
    if ex.skipped.get("incomplete"):
        messages.append(f"Skipped {_plural(ex.skipped['incomplete'], 'incomplete bar')}.")
    if ex.skipped.get("empty"):
        messages.append(f"Skipped {_plural(ex.skipped['empty'], 'bar')} without notes.")
    return messages


def _reason(error: Exception) -> str:
    """What a parser's exception says, for a visitor: its message, else what its type means."""
    text = str(error).strip()
    if text:
        return text
    return "the file ends before its data does" if isinstance(error, EOFError) else type(error).__name__


def _midi_measures(path: Path) -> ExtractedMeasures:
    import pretty_midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido/pretty_midi raise many types for broken files
        raise MusicImportError(f"'{path.name}' is not a readable MIDI file ({_reason(error)}).") from None
    _check_midi_structure(pm, path.name)
    if not any(inst.notes for inst in pm.instruments):
        raise MusicImportError(f"'{path.name}' contains no notes.")
    if all(inst.is_drum for inst in pm.instruments if inst.notes):
        raise MusicImportError(f"'{path.name}' has no pitched notes: it contains only drum (percussion) notes, "
                               "and a melody is needed.")
    return measures_from_pretty_midi(pm)


def _over_limit(name: str, what: str, count: int, limit: int) -> MusicImportError:
    return MusicImportError(f"'{name}' has {count:,} {what}; the limit is {limit:,}, so that an import takes "
                            "seconds (a melody needs far fewer).")


def _check_midi_structure(pm, name: str) -> None:
    """Refuse, before any bar is built, MIDI files whose bars or notes would take minutes: too many
    notes or time signatures, a time signature no music has (an absurd denominator loops the bar
    conversion), or music lasting too long (one note far in the future means millions of bars)."""
    notes = sum(len(inst.notes) for inst in pm.instruments)
    if notes > uploads.MAX_MIDI_NOTES:
        raise _over_limit(name, "notes", notes, uploads.MAX_MIDI_NOTES)
    meters = pm.time_signature_changes
    if len(meters) > uploads.MAX_TIME_SIGNATURES:
        raise _over_limit(name, "time signatures", len(meters), uploads.MAX_TIME_SIGNATURES)
    for ts in meters:
        try:
            check_meter(ts.numerator, ts.denominator)
        except ValueError as error:
            raise MusicImportError(f"'{name}' has an {error}.") from None
    bars = pm.time_to_tick(pm.get_end_time()) / float(pm.resolution) / 4.0
    if bars > uploads.MAX_MUSIC_BARS:
        raise MusicImportError(f"'{name}' lasts {bars:,.0f} bars of 4/4 (up to its last note or event); the limit "
                               f"is {uploads.MAX_MUSIC_BARS:,} bars per upload.")


def _musicxml_bytes(path: Path) -> bytes:
    """The score of a MusicXML file; of a compressed one (.mxl, a zip file) after checking it is one
    and does not unpack to more than :data:`uploads.MAX_MXL_UNPACKED_BYTES` (a zip bomb)."""
    import zipfile

    if path.suffix.lower() != ".mxl":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            unpacked = sum(info.file_size for info in members)
            if unpacked > uploads.MAX_MXL_UNPACKED_BYTES:
                raise MusicImportError(f"'{path.name}' unpacks to {unpacked / 2**20:.0f} MB; the limit is "
                                       f"{uploads.MAX_MXL_UNPACKED_BYTES / 2**20:.0f} MB unpacked.")
            return b"".join(archive.read(info) for info in members if not info.filename.startswith("META-INF"))
    except (zipfile.BadZipFile, OSError) as error:
        raise MusicImportError(f"'{path.name}' is not a readable compressed MusicXML (.mxl) file "
                               f"({_reason(error)}).") from None


def _check_musicxml_structure(path: Path) -> None:
    """Refuse MusicXML with more notes or measures than music21 reads in a few seconds, counted in
    the text before it is parsed."""
    import re

    score = _musicxml_bytes(path)
    for what, pattern, limit in (("notes", rb"<note[\s>]", uploads.MAX_MUSICXML_NOTES),
                                 ("measures", rb"<measure[\s>]", uploads.MAX_MUSICXML_MEASURES)):
        count = len(re.findall(pattern, score))
        if count > limit:
            raise _over_limit(path.name, what, count, limit)


def _music21_measures(path: Path, kind: str) -> ExtractedMeasures:
    from music21 import converter

    _check_musicxml_structure(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = converter.parse(str(path), format="musicxml")
    except Exception as error:
        raise MusicImportError(f"'{path.name}' could not be read as {kind} ({type(error).__name__}: {error}).") from None
    return measures_from_stream(obj)


def _abc_measures(path: Path, messages: list[str]) -> ExtractedMeasures:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    tunes = split_abc_tunes(text)
    if not tunes:
        raise MusicImportError(f"'{path.name}' holds no ABC tune (no K: field found).")
    if len(tunes) > 1:
        title = abc_title(tunes[0])
        messages.append(f"The file holds {len(tunes)} tunes; imported the first" + (f" ('{title}')." if title else "."))
    if len(tunes[0]) > uploads.MAX_ABC_TUNE_CHARS:
        raise _over_limit(path.name, "characters in its first tune", len(tunes[0]), uploads.MAX_ABC_TUNE_CHARS)
    bar_lines, notes = abc_size(tunes[0])
    if bar_lines > uploads.MAX_ABC_BAR_LINES:
        raise _over_limit(path.name, "bar lines in its first tune", bar_lines, uploads.MAX_ABC_BAR_LINES)
    if notes > uploads.MAX_ABC_NOTES:
        raise _over_limit(path.name, "notes and rests in its first tune", notes, uploads.MAX_ABC_NOTES)
    try:
        obj = parse_abc(tunes[0])
    except Exception as error:
        raise MusicImportError(f"'{path.name}' could not be read as ABC: a syntax error or notation the ABC reader "
                               f"does not support ({type(error).__name__}: {error}).") from None
    return measures_from_stream(obj)


def import_file(path) -> ImportResult:
    """Read a ``.mid``/``.midi``, ``.xml``/``.musicxml``/``.mxl`` or ``.abc`` file into measures.

    Returns :class:`ImportResult` (tokens int64 ``(M, 24)`` and messages saying what was done);
    raises :class:`MusicImportError` with a readable message when nothing usable is in the file.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise MusicImportError(f"Unsupported file type '{ext or path.name}'; use MIDI (.mid), MusicXML (.xml, .musicxml, .mxl) or ABC (.abc).")
    if ext in MIDI_EXTENSIONS:
        uploads.check_file(path, uploads.MAX_MIDI_BYTES, uploads.MIDI_LIMITS_TEXT, MusicImportError)
    else:
        uploads.check_file(path, uploads.MAX_MUSIC_BYTES, uploads.MUSIC_LIMITS_TEXT, MusicImportError)
    messages: list[str] = []
    try:
        if ext in MIDI_EXTENSIONS:
            extracted = _midi_measures(path)
        elif ext in MUSICXML_EXTENSIONS:
            extracted = _music21_measures(path, "MusicXML")
        else:
            extracted = _abc_measures(path, messages)
    except MusicImportError:
        raise
    except Exception as error:  # anything unexpected inside the converters
        raise MusicImportError(f"'{path.name}' could not be converted ({type(error).__name__}: {error}).") from None

    if extracted.pitched_notes == 0:
        if extracted.unpitched_notes:
            raise MusicImportError(f"'{path.name}' has no pitched notes: it contains only percussion (unpitched) "
                                   "notes, and a melody is needed.")
        raise MusicImportError(f"'{path.name}' contains no notes.")
    if extracted.parts_used > 1:
        messages.append(f"The music has {extracted.parts_used} parts; took the top line (highest note at each moment).")
    messages.extend(_describe_skips(extracted))
    if len(extracted.grid) == 0:
        reasons = " ".join(_describe_skips(extracted))
        raise MusicImportError(f"No usable 4/4 bar in '{path.name}'. {reasons}".strip())

    fit = fit_pitch_range(extracted.grid)
    if fit.piece_shift:
        direction = "up" if fit.piece_shift > 0 else "down"
        messages.append(f"Transposed {direction} {_plural(abs(fit.piece_shift), 'octave')} to fit the model's range "
                        f"{midi_name(PITCH_LOW)}-{midi_name(PITCH_HIGH)}.")
    if fit.bars_shifted:
        messages.append(f"Moved {_plural(fit.bars_shifted, 'bar')} by octaves to fit the range "
                        f"{midi_name(PITCH_LOW)}-{midi_name(PITCH_HIGH)}.")
    if fit.notes_folded:
        messages.append(f"Moved {_plural(fit.notes_folded, 'note')} by octaves into the range "
                        f"{midi_name(PITCH_LOW)}-{midi_name(PITCH_HIGH)}.")
    tokens = grid_to_tokens(fit.grid)
    numbers = [n for n, keep in zip(extracted.bar_numbers, fit.kept) if keep]
    messages.insert(0, f"Read {_plural(len(tokens), 'measure')} from '{path.name}' "
                       f"({extracted.total_bars} bars in the file).")
    return ImportResult(tokens=tokens, messages=messages, bar_numbers=numbers)
