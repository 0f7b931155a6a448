"""Music support: the MeasureVAE token representation and everything done with token measures.

``tokens`` (vocabulary, grid), ``attributes`` (the four attributes of Appendix A), ``extract``
(notes and bars -> measures), ``abc`` (ABC text), ``file_import`` (an upload -> measures),
``export`` (measures -> MIDI, MusicXML), ``audio``, ``notation`` and ``pianoroll`` (what the app
plays and shows). music21, pretty_midi, FluidSynth and verovio are imported lazily.
"""
